// API tokens: a user creates (shown once), lists and revokes its own; the
// hub admin creates a user's first token and sees everyone's.
import { api, seg } from './api.js';
import { h, table, field, button, fmtTime, secretBox } from './dom.js';

export async function tokens(ctx) {
  const list = (await api('GET', '/tokens')).tokens;
  const detail = h('div', { class: 'detail', 'aria-live': 'polite' });
  ctx.onLeave(() => detail.replaceChildren());
  const rows = list.map((t) => [h('code', {}, t.id), t.user, t.description || '', fmtTime(t.created_at), t.expires_at ? fmtTime(t.expires_at) : 'never',
    t.last_used_at ? fmtTime(t.last_used_at) : 'never', t.state,
    t.state === 'active' ? button('Revoke', async () => {
      if (!confirm('Revoke token ' + t.id + '? Sessions and scripts using it stop working.')) return;
      try { await api('DELETE', '/tokens/' + seg(t.id)); ctx.say('Token ' + t.id + ' revoked.'); ctx.refresh(); } catch (e) { ctx.fail(e); }
    }, 'danger') : '']);
  const user = ctx.admin ? field('For user', { name: 'user', required: true, autocomplete: 'off' }, 'The hub admin creates a user\'s first token.') : null;
  const desc = field('Description', { name: 'description', autocomplete: 'off', maxlength: 200 });
  const ttl = field('Expires', { tag: 'select', name: 'expires_in', options: [['720h', 'in 30 days'], ['168h', 'in 7 days'], ['24h', 'in 1 day'], ['0', 'never']] });
  const form = h('form', { class: 'card', 'aria-labelledby': 'h-add-tok', on: { submit: async (ev) => {
    ev.preventDefault();
    const body = { description: desc.input.value.trim(), expires_in: ttl.input.value };
    if (user) body.user = user.input.value.trim();
    try {
      const t = await api('POST', '/tokens', body);
      await ctx.refresh();
      const d = document.querySelector('#main .detail');
      if (d) d.replaceChildren(secretBox('API token ' + t.id + ' for ' + t.user, t.token, 'log in to the console or use it with the CLI; shown once.'));
    } catch (e) { ctx.fail(e); }
  } } }, h('h2', { id: 'h-add-tok' }, 'Create a token'), h('div', { class: 'grid' }, user, desc, ttl),
  h('button', { type: 'submit', class: 'primary' }, 'Create token'));
  return h('section', { 'aria-labelledby': 'h-tok' }, h('h1', { id: 'h-tok' }, 'API tokens'),
    table('API tokens', ['ID', 'User', 'Description', 'Created', 'Expires', 'Last used', 'State', 'Actions'], rows, 'No tokens.'), detail, form);
}
