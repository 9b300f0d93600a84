// DOM helpers. Data from the hub (names chosen by tenants, repository
// names from pulls, node names from agents) only ever becomes text: h()
// appends strings as text nodes and sets attributes one by one; nothing
// here parses HTML, and event-handler attributes are refused.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k !== 'on' && /^on/i.test(k)) throw new Error('h: event attributes are not allowed: ' + k);
    if (k === 'style' || k === 'srcdoc') throw new Error('h: ' + k + ' is not allowed');
    if (k === 'on') {
      for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    } else if (k === 'class') {
      el.className = v;
    } else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') {
      el[k] = v;
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// clear removes every child of el.
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// table builds a table with a caption, column heads and rows of cells
// (strings, nodes or arrays of them). Each cell carries its column's name
// in data-label: on a narrow screen the stylesheet stacks a row's cells
// and shows the name before each.
export function table(caption, heads, rows, empty) {
  if (rows.length === 0) return h('p', { class: 'empty' }, empty || 'None yet.');
  return h('div', { class: 'scroll' },
    h('table', {},
      h('caption', {}, caption),
      h('thead', {}, h('tr', {}, heads.map((x) => h('th', { scope: 'col' }, x)))),
      h('tbody', {}, rows.map((r) => h('tr', {}, r.map((c, i) => h('td', { 'data-label': heads[i] }, c)))))));
}

// field is a labelled input; opts are the input's attributes.
let seq = 0;
export function field(label, opts, hint) {
  const id = 'f' + (++seq);
  const tag = opts.tag || 'input';
  const attrs = { ...opts, id };
  delete attrs.tag;
  delete attrs.options;
  const hintID = hint ? id + '-hint' : undefined;
  if (hintID) attrs['aria-describedby'] = hintID;
  const input = tag === 'select' ? h('select', attrs, (opts.options || []).map((o) => h('option', { value: o[0] }, o[1])))
    : h(tag, attrs);
  const box = h('div', { class: 'field' }, h('label', { for: id }, label), input, hint ? h('small', { id: hintID }, hint) : null);
  box.input = input;
  return box;
}

export function button(label, onclick, cls) {
  return h('button', { type: 'button', class: cls, on: { click: onclick } }, label);
}

export function fmtTime(s) {
  if (!s) return '';
  const d = new Date(s);
  if (isNaN(d)) return '';
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function fmtBytes(n) {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : String(n)) + ' ' + u[i];
}

// secretBox shows a value once (a new token): read-only text with a copy
// button. The caller drops it from the page when the view changes.
export function secretBox(label, value, note) {
  const out = h('input', { type: 'text', readonly: true, class: 'secret', 'aria-label': label, value, autocomplete: 'off', spellcheck: 'false' });
  const copy = button('Copy', async () => {
    out.select();
    try { await navigator.clipboard.writeText(value); copy.textContent = 'Copied'; } catch { copy.textContent = 'Select and copy'; }
  });
  return h('div', { class: 'once', role: 'group', 'aria-label': label },
    h('p', {}, h('strong', {}, label), ' — ', note || 'shown once; it cannot be displayed again.'), out, copy);
}
