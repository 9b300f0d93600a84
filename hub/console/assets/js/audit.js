// Audit: the pull trail of the workspace, filtered and paged newest
// first, live (polling with after=), charted per install and per upstream,
// and exported as CSV. Repository, reference and node names come from
// clients and agents: they are only ever text.
import { api, download, seg } from './api.js';
import { h, table, field, button, fmtTime, fmtBytes } from './dom.js';
import { stacked, bucketFor, fmtStep } from './chart.js';

const PAGE = 50;
const count = (v) => String(Math.round(v));

export async function audit(ctx) {
  if (!ctx.ws) return h('p', { class: 'empty' }, 'No workspace yet.');
  const [ins, nodes] = await Promise.all([
    api('GET', '/workspaces/' + seg(ctx.ws) + '/installs').then((d) => d.installs).catch(() => []),
    workspaceNodes(ctx),
  ]);
  const install = field('Install', { tag: 'select', name: 'install', options: [['', 'all']].concat(ins.map((i) => [i.name, i.name])) });
  const repo = field('Repository', { name: 'repository', placeholder: 'acme/app', autocomplete: 'off' });
  const node = field('Node', { tag: 'select', name: 'node', options: [['', 'all']].concat(nodes.map((n) => [n.id, n.cluster + ' / ' + n.name])) });
  const status = field('Status', { tag: 'select', name: 'status', options: [['', 'any'], ['2xx', '2xx'], ['3xx', '3xx'], ['4xx', '4xx'], ['5xx', '5xx']] });
  const since = field('From', { type: 'datetime-local', name: 'since' });
  const until = field('Until', { type: 'datetime-local', name: 'until' });
  const live = h('input', { type: 'checkbox', id: 'audit-live', checked: true });
  const body = h('div', { class: 'audit-table' });
  const charts = h('div', { class: 'charts' });
  // The charts' range when the filters name none: the bucket width
  // follows from it (bucketFor), so a short one still has readable bars.
  const range = h('select', { id: 'chart-range', name: 'range', on: { change: () => drawCharts() } },
    [['1h', 'the last hour'], ['6h', 'the last 6 hours'], ['24h', 'the last 24 hours'], ['168h', 'the last 7 days']].map(([v, l]) => h('option', { value: v }, l)));
  const pager = h('div', { class: 'pager' });
  let events = [];
  let before = 0; // paging back: the smallest id of the page shown
  let timer = 0;

  const filters = () => {
    const p = new URLSearchParams({ workspace: ctx.ws });
    if (install.input.value) p.set('install', install.input.value);
    if (repo.input.value.trim()) p.set('repository', repo.input.value.trim());
    if (node.input.value) p.set('node', node.input.value);
    if (status.input.value) p.set('status', status.input.value);
    if (since.input.value) p.set('since', new Date(since.input.value).toISOString());
    if (until.input.value) p.set('until', new Date(until.input.value).toISOString());
    return p;
  };

  const render = () => {
    const rows = events.map((e) => [fmtTime(e.time), e.install, e.upstream, h('span', { class: 'repo' }, e.repository),
      h('span', { class: 'ref' }, e.reference), e.kind, String(e.status) + (e.reason ? ' ' + e.reason : '') + (e.count > 1 ? ' ×' + e.count : ''),
      fmtBytes(e.bytes), e.node_name || e.node, e.cache || '']);
    body.replaceChildren(table('Pulls of ' + ctx.ws + ' (newest first)', ['Time', 'Install', 'Upstream', 'Repository', 'Reference', 'Kind', 'Status', 'Bytes', 'Node', 'Cache'], rows,
      'No events match.'));
    pager.replaceChildren(button('Newest', () => { before = 0; load(); }));
    if (events.length === PAGE) pager.appendChild(button('Older', () => { before = events[events.length - 1].id; load(); }));
  };

  const load = async () => {
    const p = filters();
    p.set('order', 'desc');
    p.set('limit', String(PAGE));
    if (before) p.set('before', String(before));
    try {
      events = (await api('GET', '/audit?' + p)).events;
      render();
      drawCharts();
    } catch (e) { ctx.fail(e); }
  };

  const poll = async () => {
    if (!live.checked || before || document.hidden) return;
    const p = filters();
    p.set('after', String(events.length ? events[0].id : 0));
    p.set('order', 'desc');
    p.set('limit', String(PAGE));
    try {
      const fresh = (await api('GET', '/audit?' + p)).events;
      if (fresh.length) {
        events = fresh.concat(events).slice(0, PAGE);
        render();
        drawCharts();
      }
    } catch { /* the next poll tries again */ }
  };

  const drawCharts = async () => {
    const p = filters();
    const hours = Number(range.value.replace('h', ''));
    const until = p.has('until') ? Date.parse(p.get('until')) : Date.now();
    if (!p.has('since')) p.set('since', new Date(until - hours * 3600e3).toISOString());
    p.set('bucket', fmtStep(bucketFor(until - Date.parse(p.get('since')))));
    try {
      const [byIns, byUp] = await Promise.all([
        api('GET', '/audit/stats?by=install&' + p), api('GET', '/audit/stats?by=upstream&' + p)]);
      charts.replaceChildren(
        stacked('Pulls per install', byIns, 'pulls', count, true),
        stacked('Bytes per install', byIns, 'bytes', fmtBytes),
        stacked('Pulls per upstream', byUp, 'pulls', count, true),
        stacked('Bytes per upstream', byUp, 'bytes', fmtBytes));
    } catch (e) { ctx.fail(e); }
  };

  const exportCSV = async () => {
    try {
      const blob = await download('/audit/export?' + filters());
      const url = URL.createObjectURL(blob);
      const a = h('a', { href: url, download: 'pullgate-audit-' + ctx.ws + '.csv' });
      document.body.appendChild(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10000);
      ctx.say('Exported.');
    } catch (e) { ctx.fail(e); }
  };

  const form = h('form', { class: 'card filters', 'aria-label': 'Filter the audit trail', on: { submit: (ev) => { ev.preventDefault(); before = 0; load(); } } },
    h('div', { class: 'grid' }, install, repo, node, status, since, until),
    h('div', { class: 'checks' }, h('label', { for: 'audit-live' }, live, ' Live (new events appear as they happen)')),
    h('div', { class: 'actions' }, h('button', { type: 'submit', class: 'primary' }, 'Apply'), button('Export CSV', exportCSV)));
  timer = setInterval(poll, 2000);
  ctx.onLeave(() => clearInterval(timer));
  await load();
  return h('section', { 'aria-labelledby': 'h-audit' }, h('h1', { id: 'h-audit' }, 'Audit'), form, body, pager, h('h2', {}, 'Traffic'),
    h('p', { class: 'chart-range' }, h('label', { for: 'chart-range' }, 'Charts show'), range, h('small', {}, 'unless From/Until are set; times in UTC')), charts);
}

// workspaceNodes lists the nodes of the clusters the caller sees, for the
// node filter (the audit names nodes by id).
async function workspaceNodes(ctx) {
  try {
    const cs = (await api('GET', '/clusters')).clusters.filter((c) => ctx.admin || c.workspace === ctx.ws);
    const lists = await Promise.all(cs.map((c) => api('GET', '/clusters/' + seg(c.name) + '/nodes').then((d) => d.nodes.map((n) => ({ ...n, cluster: c.name }))).catch(() => [])));
    return lists.flat();
  } catch { return []; }
}
