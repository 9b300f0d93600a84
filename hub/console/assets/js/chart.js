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

function label(ms) {
  return new Date(ms).toISOString().slice(5, 16).replace('T', ' ');
}

// stacked draws stats (the answer of /audit/stats) for one metric;
// fmt formats a value for the axis and the tooltips.
export function stacked(title, stats, metric, fmt, integer) {
  const W = 640, H = 220, L = 64, B = 28, T = 10, R = 12;
  const rows = stats.buckets;
  const t0 = Date.parse(stats.since), t1 = Date.parse(stats.until);
  const span = Math.max(1, t1 - t0), width = stats.bucket_seconds * 1000;
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
      rect.appendChild(el('title', {}, `${r.key} ${s}: ${fmt(r[metric])}`));
      svg.appendChild(rect);
    }
  }
  svg.appendChild(el('text', { x: L, y: H - 8, class: 'axis' }, label(t0)));
  svg.appendChild(el('text', { x: W - R, y: H - 8, class: 'axis', 'text-anchor': 'end' }, label(t1) + ' UTC'));
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
