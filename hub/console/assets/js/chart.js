// A stacked bar chart drawn as inline SVG (no library): one bar per time
// bucket, one colour per series (install or upstream). Labels are text
// nodes; colours come from the stylesheet (classes s0..s7).
const NS = 'http://www.w3.org/2000/svg';

function el(tag, attrs, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// stacked draws rows ({start, key, [metric]}) as a chart titled title;
// fmt formats a value for the axis and the tooltips.
export function stacked(title, rows, metric, fmt) {
  const W = 640, H = 220, L = 56, B = 28, T = 10, R = 8;
  const starts = [...new Set(rows.map((r) => r.start))].sort();
  const keys = [...new Set(rows.map((r) => r.key))].sort();
  const totals = starts.map((s) => rows.filter((r) => r.start === s).reduce((a, r) => a + r[metric], 0));
  const max = Math.max(1, ...totals);
  const svg = el('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', class: 'chart', 'aria-label': title });
  svg.appendChild(el('title', {}, title));
  const plotW = W - L - R, plotH = H - T - B;
  for (let i = 0; i <= 4; i++) {
    const y = T + plotH - (plotH * i) / 4;
    svg.appendChild(el('line', { x1: L, x2: W - R, y1: y, y2: y, class: 'grid' }));
    svg.appendChild(el('text', { x: L - 4, y: y + 4, class: 'axis', 'text-anchor': 'end' }, fmt((max * i) / 4)));
  }
  const bw = starts.length ? plotW / starts.length : plotW;
  starts.forEach((s, i) => {
    let y = T + plotH;
    for (const r of rows.filter((x) => x.start === s)) {
      const hgt = (plotH * r[metric]) / max;
      if (hgt <= 0) continue;
      y -= hgt;
      const rect = el('rect', { x: L + i * bw + bw * 0.1, y, width: Math.max(1, bw * 0.8), height: hgt, class: 's' + (keys.indexOf(r.key) % 8) });
      rect.appendChild(el('title', {}, `${r.key} ${s}: ${fmt(r[metric])}`));
      svg.appendChild(rect);
    }
  });
  if (starts.length) {
    const lab = (s) => s.replace('T', ' ').replace(/:00Z$/, 'Z');
    svg.appendChild(el('text', { x: L, y: H - 8, class: 'axis' }, lab(starts[0])));
    if (starts.length > 1) svg.appendChild(el('text', { x: W - R, y: H - 8, class: 'axis', 'text-anchor': 'end' }, lab(starts[starts.length - 1])));
  }
  const legend = document.createElement('ul');
  legend.className = 'legend';
  keys.forEach((k, i) => {
    const li = document.createElement('li');
    const sw = document.createElement('span');
    sw.className = 'sw s' + (i % 8);
    sw.setAttribute('aria-hidden', 'true');
    li.appendChild(sw);
    li.appendChild(document.createTextNode(k || '(none)'));
    legend.appendChild(li);
  });
  const fig = document.createElement('figure');
  fig.className = 'fig';
  const cap = document.createElement('figcaption');
  cap.textContent = title;
  fig.append(cap, svg, legend);
  return fig;
}
