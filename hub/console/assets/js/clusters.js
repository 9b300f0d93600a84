// Clusters and their nodes: the join token is shown once, at creation or
// rotation; nodes show the agent's version and last contact and can be
// revoked one by one.
import { api, seg } from './api.js';
import { h, table, field, button, fmtTime, secretBox } from './dom.js';

export async function clusters(ctx) {
  const all = (await api('GET', '/clusters')).clusters;
  // A member sees the clusters of the workspace; the admin sees all.
  const list = ctx.admin ? all : all.filter((c) => c.workspace === ctx.ws || c.shared);
  const nodes = await Promise.all(list.map((c) => api('GET', '/clusters/' + seg(c.name) + '/nodes').then((d) => d.nodes).catch(() => [])));
  const out = h('section', { 'aria-labelledby': 'h-cl' }, h('h1', { id: 'h-cl' }, 'Clusters and nodes'));
  const detail = h('div', { class: 'detail', 'aria-live': 'polite' });
  ctx.onLeave(() => detail.replaceChildren());

  const rows = list.map((c) => [c.name, c.shared ? 'shared' : c.workspace, c.sa_keys ? 'approved' : (c.sa_keys_pending ? 'pending review' : '—'),
    c.join_token_uses_left === undefined ? 'reusable' : String(c.join_token_uses_left) + ' left', fmtTime(c.created_at),
    h('span', { class: 'actions' }, ctx.canWrite ? [
      button('New join token', async () => {
        if (!confirm('Replace the join token of ' + c.name + '? The old one stops working; enrolled nodes keep theirs.')) return;
        try {
          const r = await api('POST', '/clusters/' + seg(c.name) + '/join-token', {});
          detail.replaceChildren(secretBox('Join token for ' + c.name, r.join_token));
        } catch (e) { ctx.fail(e); }
      }),
      button('Delete', async () => {
        if (!confirm('Delete cluster ' + c.name + ' and its node identities?')) return;
        try { await api('DELETE', '/clusters/' + seg(c.name)); ctx.say('Cluster ' + c.name + ' deleted.'); ctx.refresh(); } catch (e) { ctx.fail(e); }
      }, 'danger')] : [])]);
  out.appendChild(table('Clusters', ['Name', 'Workspace', 'Service-account keys', 'Join token', 'Created', 'Actions'], rows, 'No clusters yet.'));
  out.appendChild(detail);

  const nodeRows = [];
  list.forEach((c, k) => {
    for (const n of nodes[k]) {
      nodeRows.push([c.name, n.name, h('code', {}, n.id), n.agent_version || 'unknown', n.last_seen_at ? fmtTime(n.last_seen_at) : 'never',
        n.revoked ? 'revoked ' + fmtTime(n.revoked_at) : 'active',
        ctx.canWrite && !n.revoked ? button('Revoke', async () => {
          if (!confirm('Revoke node ' + n.name + ' of ' + c.name + '? It is disconnected and its tokens stop working.')) return;
          try { await api('POST', '/clusters/' + seg(c.name) + '/nodes/' + seg(n.id) + '/revoke'); ctx.say('Node ' + n.name + ' revoked.'); ctx.refresh(); } catch (e) { ctx.fail(e); }
        }, 'danger') : '']);
    }
  });
  out.appendChild(h('h2', {}, 'Nodes'));
  out.appendChild(table('Enrolled nodes', ['Cluster', 'Node', 'ID', 'Agent version', 'Last contact', 'State', 'Actions'], nodeRows, 'No nodes have enrolled.'));
  if (ctx.canWrite) out.appendChild(createForm(ctx, detail));
  return out;
}

function createForm(ctx, detail) {
  const name = field('Name', { name: 'name', required: true, autocomplete: 'off' });
  const shared = h('input', { type: 'checkbox', id: 'cl-shared', name: 'shared' });
  const uses = field('Join token uses', { tag: 'select', name: 'uses', options: [['1', 'one node'], ['0', 'reusable']] });
  const checks = ctx.admin ? h('div', { class: 'checks' }, h('label', { for: 'cl-shared' }, shared, ' Shared by several workspaces (installs chosen by service-account token)')) : null;
  return h('form', { class: 'card', 'aria-labelledby': 'h-add-cl', on: { submit: async (ev) => {
    ev.preventDefault();
    const body = { name: name.input.value.trim(), join_token_uses: Number(uses.input.value) };
    if (!shared.checked) body.workspace = ctx.ws;
    try {
      const r = await api('POST', '/clusters', body);
      ctx.say('Cluster ' + r.cluster.name + ' created.');
      await ctx.refresh();
      // After the refresh: the token is shown in the new view, once.
      const d = document.querySelector('#main .detail');
      if (d) d.replaceChildren(secretBox('Join token for ' + r.cluster.name, r.join_token, 'give it to the node agents (--join-token); shown once.'));
    } catch (e) { ctx.fail(e); }
  } } }, h('h2', { id: 'h-add-cl' }, 'Create a cluster'), h('div', { class: 'grid' }, name, uses), checks,
  h('button', { type: 'submit', class: 'primary' }, 'Create cluster'));
}
