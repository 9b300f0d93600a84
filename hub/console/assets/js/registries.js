// Registries: a workspace's upstream credentials. The secret goes out in
// the create and rotate requests only; no answer holds it, and the
// password field is emptied as soon as the request is sent.
import { api, seg } from './api.js';
import { h, table, field, button, fmtTime } from './dom.js';

export async function registries(ctx) {
  if (!ctx.ws) return h('p', { class: 'empty' }, 'No workspace yet.');
  const base = '/workspaces/' + seg(ctx.ws) + '/registries';
  const list = (await api('GET', base)).registries;
  const out = h('section', { 'aria-labelledby': 'h-reg' }, h('h1', { id: 'h-reg' }, 'Registries'));
  const detail = h('div', { class: 'detail', 'aria-live': 'polite' });

  const rows = list.map((r) => {
    const n = (r.installs || []).length;
    const affects = n === 1 ? '1 install' : n + ' installs';
    const toggle = h('button', {
      type: 'button', class: 'toggle', role: 'switch', 'aria-checked': String(r.enabled),
      'aria-label': (r.enabled ? 'Disable ' : 'Enable ') + r.name + ' (affects ' + affects + ')',
      disabled: !ctx.canWrite,
      on: { click: async () => {
        const verb = r.enabled ? 'disable' : 'enable';
        if (r.enabled && !confirm('Disable registry ' + r.name + '? Pulls through it stop at once for ' + affects + '.')) return;
        try {
          await api('POST', base + '/' + seg(r.name) + '/' + verb);
          ctx.say('Registry ' + r.name + ' ' + verb + 'd (' + affects + ').');
          ctx.refresh();
        } catch (e) { ctx.fail(e); }
      } },
    }, r.enabled ? 'Enabled' : 'Disabled');
    const actions = ctx.canWrite ? [
      button('Test', () => testForm(ctx, base, r, detail)),
      button('Rotate', () => rotateForm(ctx, base, r, detail)),
      button('Delete', async () => {
        if (!confirm('Delete registry ' + r.name + '? ' + affects + ' lose access to ' + r.host + '.')) return;
        try { await api('DELETE', base + '/' + seg(r.name)); ctx.say('Registry ' + r.name + ' deleted.'); ctx.refresh(); } catch (e) { ctx.fail(e); }
      }, 'danger'),
    ] : []; // viewers: the API refuses tests and changes
    return [r.name, r.host, r.kind, r.username, 'v' + r.version,
      h('span', { class: 'affects' }, toggle, ' ', h('small', {}, affects)),
      fmtTime(r.updated_at), h('span', { class: 'actions' }, actions)];
  });
  out.appendChild(table('Registry credentials of ' + ctx.ws, ['Name', 'Host', 'Kind', 'Username', 'Secret', 'State', 'Updated', 'Actions'], rows,
    'No registry credentials yet.'));
  out.appendChild(detail);
  if (ctx.canWrite) out.appendChild(addForm(ctx, base));
  return out;
}

function addForm(ctx, base) {
  const name = field('Name', { name: 'name', required: true, pattern: '[a-z0-9][a-z0-9._-]{0,63}', autocomplete: 'off' });
  const host = field('Host', { name: 'host', required: true, placeholder: 'ghcr.io or registry.example.com/team', autocomplete: 'off' },
    'The kind (basic, token, ecr, gcp, acr) follows from the host unless you choose one.');
  const kind = field('Kind', { tag: 'select', name: 'kind', options: [['', 'from the host'], ['basic', 'basic'], ['token', 'token'], ['gcp', 'gcp'], ['ecr', 'ecr (pasted token)'], ['acr', 'acr']] });
  const user = field('Username', { name: 'username', autocomplete: 'off' });
  const pass = field('Password or token', { type: 'password', name: 'password', required: true, autocomplete: 'new-password' },
    'Stored encrypted; never shown again.');
  const endpoint = field('Endpoint (optional)', { name: 'endpoint', placeholder: 'https://registry.internal:5000', autocomplete: 'off' });
  const priv = h('input', { type: 'checkbox', id: 'reg-private', name: 'allow_private_network' });
  const insecure = h('input', { type: 'checkbox', id: 'reg-insecure', name: 'insecure' });
  const form = h('form', { class: 'card', 'aria-labelledby': 'h-add-reg', on: { submit: async (ev) => {
    ev.preventDefault();
    const body = { name: name.input.value.trim(), host: host.input.value.trim(), username: user.input.value, password: pass.input.value };
    pass.input.value = '';
    if (kind.input.value) body.kind = kind.input.value;
    if (endpoint.input.value.trim()) body.endpoint = endpoint.input.value.trim();
    if (priv.checked) body.allow_private_network = true;
    if (insecure.checked) body.insecure = true;
    try {
      const r = await api('POST', base, body);
      ctx.say('Registry ' + r.name + ' added (kind ' + r.kind + ').' + (r.warnings && r.warnings.length ? ' ' + r.warnings.join(' ') : ''));
      ctx.refresh();
    } catch (e) { ctx.fail(e); }
  } } },
  h('h2', { id: 'h-add-reg' }, 'Add a registry'), h('div', { class: 'grid' }, name, host, kind, user, pass, endpoint),
  h('div', { class: 'checks' },
    h('label', { for: 'reg-private' }, priv, ' The upstream is on a private network (loopback, RFC 1918)'),
    h('label', { for: 'reg-insecure' }, insecure, ' Plain HTTP / unverified TLS')),
  h('button', { type: 'submit', class: 'primary' }, 'Add registry'));
  return form;
}

function testForm(ctx, base, r, detail) {
  const repo = field('Repository to list (optional)', { name: 'repository', placeholder: 'org/app', autocomplete: 'off' });
  const result = h('div', { class: 'result' });
  const form = h('form', { class: 'card', on: { submit: async (ev) => {
    ev.preventDefault();
    result.replaceChildren(h('p', {}, 'Testing…'));
    try {
      const body = repo.input.value.trim() ? { repository: repo.input.value.trim() } : {};
      const c = await api('POST', base + '/' + seg(r.name) + '/test', body);
      const step = (label, ok, note) => h('li', { class: ok ? 'pass' : 'fail' }, (ok ? '✓ ' : '✗ ') + label, note ? ' — ' + note : '');
      const steps = [step('Reachable (' + c.upstream + ')', c.reachable), step('Authenticated' + (c.auth_scheme ? ' (' + c.auth_scheme + ')' : ''), c.authenticated)];
      if (c.repository) steps.push(step('Can pull ' + c.repository, c.can_pull));
      if (c.token_source) steps.push(step('Registry token from ' + c.token_source, c.token_obtained));
      result.replaceChildren(h('div', {}, h('ol', { class: 'steps' }, steps), c.error ? h('p', { class: 'err' }, c.error) : null,
        (c.warnings || []).map((w) => h('p', { class: 'warn' }, w))));
    } catch (e) { result.replaceChildren(); ctx.fail(e); }
  } } }, h('h2', {}, 'Test ' + r.name), repo, h('button', { type: 'submit', class: 'primary' }, 'Run test'), result);
  detail.replaceChildren(form);
  repo.input.focus();
}

function rotateForm(ctx, base, r, detail) {
  const pass = field('New password or token', { type: 'password', name: 'password', required: true, autocomplete: 'new-password' },
    'Stored as secret version ' + (r.version + 1) + '; the old one stops being used at once.');
  const form = h('form', { class: 'card', on: { submit: async (ev) => {
    ev.preventDefault();
    const password = pass.input.value;
    pass.input.value = '';
    try {
      const u = await api('PATCH', base + '/' + seg(r.name), { password });
      ctx.say('Registry ' + u.name + ' rotated: secret version ' + u.version + '.');
      ctx.refresh();
    } catch (e) { ctx.fail(e); }
  } } }, h('h2', {}, 'Rotate ' + r.name), pass, h('button', { type: 'submit', class: 'primary' }, 'Store new secret'));
  detail.replaceChildren(form);
  pass.input.focus();
}
