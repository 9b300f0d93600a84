// Members and their roles in the workspace (owners and the hub admin
// manage them), and the workspace's operator activity (who did what).
import { api, seg } from './api.js';
import { h, table, field, button, fmtTime } from './dom.js';

const ROLES = [['viewer', 'viewer (read, audit)'], ['operator', 'operator (registries, installs, clusters, tokens)'], ['owner', 'owner (members and everything)']];

export async function members(ctx) {
  const out = h('section', { 'aria-labelledby': 'h-mem' }, h('h1', { id: 'h-mem' }, 'Members'));
  if (!ctx.ws) return out.appendChild(h('p', { class: 'empty' }, 'No workspace yet.')), out;
  if (!ctx.isOwner) {
    out.appendChild(h('p', { class: 'empty' }, 'Your role in ' + ctx.ws + ' is ' + (ctx.role || 'none') + '. Owners manage members.'));
    return out;
  }
  const base = '/workspaces/' + seg(ctx.ws) + '/members';
  const [list, activity] = await Promise.all([
    api('GET', base).then((d) => d.members),
    api('GET', '/workspaces/' + seg(ctx.ws) + '/activity?limit=50').then((d) => d.activity).catch(() => null),
  ]);
  const rows = list.map((m) => {
    const sel = h('select', { 'aria-label': 'Role of ' + m.user }, ROLES.map(([v]) => h('option', { value: v, selected: v === m.role }, v)));
    sel.value = m.role;
    sel.addEventListener('change', async () => {
      try { await api('PATCH', base + '/' + seg(m.user), { role: sel.value }); ctx.say(m.user + ' is now ' + sel.value + '.'); } catch (e) { sel.value = m.role; ctx.fail(e); }
    });
    return [m.user, sel, fmtTime(m.created_at), button('Remove', async () => {
      if (!confirm('Remove ' + m.user + ' from ' + ctx.ws + '?')) return;
      try { await api('DELETE', base + '/' + seg(m.user)); ctx.say(m.user + ' removed.'); ctx.refresh(); } catch (e) { ctx.fail(e); }
    }, 'danger')];
  });
  out.appendChild(table('Members of ' + ctx.ws, ['User', 'Role', 'Since', 'Actions'], rows, 'No members yet.'));
  const user = field('User', { name: 'user', required: true, autocomplete: 'off' }, 'A new user is created; it signs in with API tokens.');
  const role = field('Role', { tag: 'select', name: 'role', options: ROLES });
  out.appendChild(h('form', { class: 'card', 'aria-labelledby': 'h-add-mem', on: { submit: async (ev) => {
    ev.preventDefault();
    try {
      const m = await api('POST', base, { user: user.input.value.trim(), role: role.input.value });
      ctx.say(m.user + ' added as ' + m.role + '.');
      ctx.refresh();
    } catch (e) { ctx.fail(e); }
  } } }, h('h2', { id: 'h-add-mem' }, 'Add a member'), h('div', { class: 'grid' }, user, role),
  h('button', { type: 'submit', class: 'primary' }, 'Add member')));
  if (activity) {
    out.appendChild(h('h2', {}, 'Activity'));
    out.appendChild(table('Operator actions in ' + ctx.ws + ' (newest first)', ['Time', 'Who', 'Action', 'Target', 'Result', 'From'],
      activity.map((a) => [fmtTime(a.time), a.principal, a.action, (a.target_kind ? a.target_kind + ' ' : '') + (a.target || ''), a.result + ' (' + a.status + ')', a.remote_addr]),
      'No actions recorded.'));
  }
  return out;
}
