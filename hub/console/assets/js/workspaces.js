// Workspaces (the hub admin only): create and delete tenants. A delete
// asks first and never forces: a workspace that still holds registries,
// installs, clusters or members is refused by the API, and its error
// (what is left) is shown as it is.
import { api, seg } from './api.js';
import { h, table, field, button, fmtTime } from './dom.js';

export async function workspaces(ctx) {
  if (!ctx.admin) return h('p', { class: 'empty' }, 'Only the hub admin manages workspaces.');
  const list = (await api('GET', '/workspaces')).workspaces;
  const rows = list.map((w) => [w.name, fmtTime(w.created_at), button('Delete', async () => {
    if (!confirm('Delete workspace ' + w.name + '? This cannot be undone.')) return;
    try {
      await api('DELETE', '/workspaces/' + seg(w.name));
      ctx.say('Workspace ' + w.name + ' deleted.');
      await ctx.workspacesChanged();
    } catch (e) { ctx.fail(e); }
  }, 'danger')]);
  const name = field('Name', { name: 'name', required: true, autocomplete: 'off' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'h-add-ws', on: { submit: async (ev) => {
    ev.preventDefault();
    try {
      const w = await api('POST', '/workspaces', { name: name.input.value.trim() });
      ctx.say('Workspace ' + w.name + ' created.');
      await ctx.workspacesChanged();
    } catch (e) { ctx.fail(e); }
  } } }, h('h2', { id: 'h-add-ws' }, 'Create a workspace'), name, h('button', { type: 'submit', class: 'primary' }, 'Create'));
  return h('section', { 'aria-labelledby': 'h-ws' }, h('h1', { id: 'h-ws' }, 'Workspaces'), table('Workspaces', ['Name', 'Created', 'Actions'], rows), form);
}
