// Installs: one deployment's right to pull, with its allow-list, cluster
// binding, state, tokens (shown once) and last pull.
import { api, seg } from './api.js';
import { h, table, field, button, fmtTime, secretBox } from './dom.js';

export async function installs(ctx) {
  if (!ctx.ws) return h('p', { class: 'empty' }, 'No workspace yet.');
  const base = '/workspaces/' + seg(ctx.ws) + '/installs';
  const [list, clusters] = await Promise.all([
    api('GET', base).then((d) => d.installs),
    api('GET', '/clusters').then((d) => d.clusters).catch(() => []),
  ]);
  const last = await Promise.all(list.map((i) => api('GET', '/audit?workspace=' + seg(ctx.ws) + '&install=' + seg(i.name) + '&order=desc&limit=1')
    .then((d) => d.events[0]).catch(() => undefined)));
  const out = h('section', { 'aria-labelledby': 'h-ins' }, h('h1', { id: 'h-ins' }, 'Installs'));
  const detail = h('div', { class: 'detail', 'aria-live': 'polite' });
  ctx.onLeave(() => detail.replaceChildren()); // a shown token goes with the view

  const rows = list.map((i, k) => {
    const ev = last[k];
    const lastPull = ev ? [fmtTime(ev.time), ' ', h('small', {}, ev.repository + (ev.reference ? ':' + ev.reference : '') + ' → ' + ev.status)] : 'never';
    const toggle = h('button', {
      type: 'button', class: 'toggle', role: 'switch', 'aria-checked': String(i.enabled),
      'aria-label': (i.enabled ? 'Disable install ' : 'Enable install ') + i.name, disabled: !ctx.canWrite,
      on: { click: async () => {
        const verb = i.enabled ? 'disable' : 'enable';
        try { await api('POST', base + '/' + seg(i.name) + '/' + verb); ctx.say('Install ' + i.name + ' ' + verb + 'd.'); ctx.refresh(); } catch (e) { ctx.fail(e); }
      } },
    }, i.enabled ? 'Enabled' : 'Disabled');
    const actions = ctx.canWrite ? [
      button('Mint token', () => mintForm(ctx, base, i, detail)),
      button('Delete', async () => {
        if (!confirm('Delete install ' + i.name + '? Its tokens stop working at once.')) return;
        try { await api('DELETE', base + '/' + seg(i.name)); ctx.say('Install ' + i.name + ' deleted.'); ctx.refresh(); } catch (e) { ctx.fail(e); }
      }, 'danger'),
    ] : [];
    return [i.name, i.repos.length ? h('ul', { class: 'plain' }, i.repos.map((r) => h('li', {}, r))) : h('em', {}, 'all repositories'),
      i.cluster || '—', i.namespace || '—', toggle, lastPull, h('span', { class: 'actions' }, actions)];
  });
  out.appendChild(table('Installs of ' + ctx.ws, ['Name', 'Allow-list', 'Cluster', 'Namespace', 'State', 'Last pull', 'Actions'], rows, 'No installs yet.'));
  out.appendChild(detail);
  if (ctx.canWrite) out.appendChild(createForm(ctx, base, clusters));
  return out;
}

function createForm(ctx, base, clusters) {
  const name = field('Name', { name: 'name', required: true, autocomplete: 'off' });
  const repos = field('Allow-list', { tag: 'textarea', name: 'repos', rows: 3, placeholder: 'ghcr.io/acme/*\ndocker.io/library/redis' },
    'One repository pattern per line.');
  const all = h('input', { type: 'checkbox', id: 'ins-all', name: 'all_repos' });
  const cluster = field('Cluster', { tag: 'select', name: 'cluster', options: [['', 'none (token minted here)']].concat(clusters.map((c) => [c.name, c.name + (c.shared ? ' (shared)' : '')])) });
  const ns = field('Namespace', { name: 'namespace', autocomplete: 'off', placeholder: 'default' }, 'Needed on a shared cluster.');
  return h('form', { class: 'card', 'aria-labelledby': 'h-add-ins', on: { submit: async (ev) => {
    ev.preventDefault();
    const body = { name: name.input.value.trim() };
    const pats = repos.input.value.split('\n').map((s) => s.trim()).filter(Boolean);
    if (all.checked) body.all_repos = true; else body.repos = pats;
    if (cluster.input.value) body.cluster = cluster.input.value;
    if (ns.input.value.trim()) body.namespace = ns.input.value.trim();
    try {
      const i = await api('POST', base, body);
      ctx.say('Install ' + i.name + ' created.' + (i.warnings && i.warnings.length ? ' ' + i.warnings.join(' ') : ''));
      ctx.refresh();
    } catch (e) { ctx.fail(e); }
  } } }, h('h2', { id: 'h-add-ins' }, 'Create an install'), h('div', { class: 'grid' }, name, repos, cluster, ns),
  h('div', { class: 'checks' }, h('label', { for: 'ins-all' }, all, ' May pull everything the workspace\'s registries reach')),
  h('button', { type: 'submit', class: 'primary' }, 'Create install'));
}

function mintForm(ctx, base, i, detail) {
  const ttl = field('Lifetime', { tag: 'select', name: 'ttl', options: [['10m', '10 minutes'], ['1h', '1 hour'], ['24h', '24 hours']] });
  const form = h('form', { class: 'card', on: { submit: async (ev) => {
    ev.preventDefault();
    try {
      const t = await api('POST', base + '/' + seg(i.name) + '/tokens', { ttl: ttl.input.value });
      detail.replaceChildren(secretBox('Install token for ' + i.name, t.token, 'valid until ' + fmtTime(t.expires_at) + ' at this hub only; shown once.'));
      ctx.say('Token minted for ' + i.name + '.');
    } catch (e) { ctx.fail(e); }
  } } }, h('h2', {}, 'Mint a token for ' + i.name), ttl, h('button', { type: 'submit', class: 'primary' }, 'Mint'));
  detail.replaceChildren(form);
  ttl.input.focus();
}
