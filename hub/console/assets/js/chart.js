// A stacked bar chart drawn as inline SVG (no library): one bar per time
// bucket at its place in the range, one colour per series (install or
// upstream). Labels are text nodes; colours come from the stylesheet
// (classes s0..s7).
const NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// niceMax rounds a maximum up so that four ticks are round numbers.
function niceMax(v, integer) {
  if (v <= 0) return integer ? 4 : 1;
  const step = v / 4;
  const mag = Math.pow(10, Math.floor(Math.log10(step)));
  const n = [1, 2, 2.5, 5, 10].find((m) => m * mag >= step) * mag;
  return integer ? Math.max(4, Math.ceil(n) * 4) : n * 4;
}

const MIN = 60 * 1000;
// Bucket and tick widths: round steps from a minute to a week.
const STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080].map((m) => m * MIN);

// bucketFor is the bucket width for a range of span ms: the smallest
// round step that gives at most 40 bars, so that each is wide enough to
// read (2 minutes for the last hour, 1 hour for a day).
export function bucketFor(span) {
  return STEPS.find((w) => span / w <= 40) || STEPS[STEPS.length - 1];
}

// fmtStep is a width as the API takes it (a Go duration).
export function fmtStep(ms) {
  return ms % (60 * MIN) === 0 ? (ms / (60 * MIN)) + 'h' : (ms / MIN) + 'm';
}

// tickLabel is a time on the x axis, in UTC like every time the console
// shows: the clock within a day, the date beyond.
function tickLabel(ms, span, step) {
  const iso = new Date(ms).toISOString(); // 2026-12-01T13:05:00.000Z
  if (step >= 1440 * MIN) return iso.slice(5, 10);
  if (span > 1440 * MIN) return iso.slice(5, 10) + ' ' + iso.slice(11, 16);
  return iso.slice(11, 16);
}

// stacked draws stats (the answer of /audit/stats) for one metric;
// fmt formats a value for the axis and the tooltips.
export function stacked(title, stats, metric, fmt, integer) {
  const W = 640, H = 236, L = 64, B = 44, T = 10, R = 16;
  const rows = stats.buckets;
  // The x axis covers whole buckets: the current one (the bar a short
  // run fills) is as wide as the others, not cut at "now".
  const width = stats.bucket_seconds * 1000;
  const t0 = Math.floor(Date.parse(stats.since) / width) * width, t1 = Math.ceil(Date.parse(stats.until) / width) * width;
  const span = Math.max(1, t1 - t0);
  const starts = [...new Set(rows.map((r) => r.start))].sort();
  const keys = [...new Set(rows.map((r) => r.key))].sort();
  const totals = starts.map((s) => rows.filter((r) => r.start === s).reduce((a, r) => a + r[metric], 0));
  const max = niceMax(Math.max(0, ...totals), integer);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart', 'aria-label': title });
  svg.appendChild(el('title', {}, title));
  const plotW = W - L - R, plotH = H - T - B;
  for (let i = 0; i <= 4; i++) {
    const y = T + plotH - (plotH * i) / 4;
    svg.appendChild(el('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'grid' }));
    svg.appendChild(el('text', { x: L - 4, y: y + 4, class: 'axis', 'text-anchor': 'end' }, fmt((max * i) / 4)));
  }
  const x = (ms) => L + (plotW * Math.min(Math.max(ms - t0, 0), span)) / span;
  for (const s of starts) {
    const ms = Date.parse(s);
    const x0 = x(ms), x1 = x(ms + width);
    const bw = Math.max(2, (x1 - x0) * 0.85);
    let y = T + plotH;
    for (const r of rows.filter((v) => v.start === s)) {
      const hgt = (plotH * r[metric]) / max;
      if (hgt <= 0) continue;
      y -= hgt;
      const rect = el('rect', { x: x0, y, width: bw, height: hgt, class: 's' + (keys.indexOf(r.key) % 8) });
      rect.appendChild(el('title', {}, `${r.key || '(none)'} ${tickLabel(ms, 2 * 1440 * MIN, MIN)} UTC: ${fmt(r[metric])}`));
      svg.appendChild(rect);
    }
  }
  // Time ticks at round UTC instants, at most six, labelled below the
  // axis; the axis title names the zone and the bucket width.
  const step = STEPS.find((w) => span / w <= 6) || STEPS[STEPS.length - 1];
  for (let ms = Math.ceil(t0 / step) * step; ms <= t1; ms += step) {
    const tx = x(ms);
    svg.appendChild(el('line', { x1: tx, x2: tx, y1: T + plotH, y2: T + plotH + 4, class: 'tick' }));
    svg.appendChild(el('text', { x: tx, y: T + plotH + 16, class: 'axis', 'text-anchor': 'middle' }, tickLabel(ms, span, step)));
  }
  svg.appendChild(el('text', { x: L + plotW / 2, y: H - 6, class: 'axis', 'text-anchor': 'middle' },
    'time (UTC), one bar per ' + fmtStep(width)));
  const legend = document.createElement('ul');
  legend.className = 'legend';
  keys.forEach((k, i) => {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'sw s' + (i % 8);
    sw.setAttribute('aria-hidden', 'true');
    li.append(sw, document.createTextNode(k || '(none)'));
    legend.appendChild(li);
  });
  if (!keys.length) {
    const li = document.createElement('li');
    li.textContent = 'No traffic in this range.';
    legend.appendChild(li);
  }
  const fig = document.createElement('figure');
  fig.className = 'fig';
  const cap = document.createElement('figcaption');
  cap.textContent = title;
  fig.append(cap, svg, legend);
  return fig;
}
