// The console's shell: login, the workspace picker, the section router
// (#/registries, ...), and the status line.
import { api, login, logout, principal, resume, onUnauthorized } from './api.js';
import { h, clear, field } from './dom.js';
import { registries } from './registries.js';
import { installs } from './installs.js';
import { clusters } from './clusters.js';
import { audit } from './audit.js';
import { workspaces } from './workspaces.js';
import { members } from './members.js';
import { tokens } from './tokens.js';
import { akashSection } from './tenant.js';

const pages = { registries, installs, clusters, audit, workspaces, members, tokens };
const main = document.getElementById('main');
const wsSelect = document.getElementById('ws');
let stopPage = null; // a page's cleanup (timers)

// ctx is what pages get: the workspace, the role in it, and helpers.
const ctx = {
  ws: '',
  role: '',
  get admin() { return principal()?.kind === 'admin'; },
  get canWrite() { return this.admin || this.role === 'owner' || this.role === 'operator'; },
  get isOwner() { return this.admin || this.role === 'owner'; },
  say,
  fail,
  refresh: () => route(),
  // After the admin creates or deletes a workspace: the picker and the
  // page follow, the status line stays.
  async workspacesChanged() { await fillWorkspaces(); await route(); },
  onLeave(fn) { stopPage = fn; },
};

export function say(msg) {
  const s = document.getElementById('status');
  s.className = 'status ok';
  s.textContent = msg;
}

export function fail(err) {
  const s = document.getElementById('status');
  s.className = 'status err';
  s.textContent = err && err.message ? err.message : String(err);
}

function roleIn(ws) {
  const p = principal();
  if (!p) return '';
  if (p.kind === 'admin') return 'admin';
  const m = (p.workspaces || []).find((w) => w.workspace === ws);
  return m ? m.role : '';
}

async function fillWorkspaces() {
  const p = principal();
  let names = (p.workspaces || []).map((w) => w.workspace);
  if (p.kind === 'admin') {
    try {
      names = (await api('GET', '/workspaces')).workspaces.map((w) => w.name);
    } catch (e) { fail(e); }
  }
  clear(wsSelect);
  for (const n of names) wsSelect.appendChild(h('option', { value: n }, n));
  const want = sessionStorage.getItem('pullgate.ws');
  if (want && names.includes(want)) wsSelect.value = want;
  ctx.ws = wsSelect.value || '';
  ctx.role = roleIn(ctx.ws);
}

function showChrome(on) {
  document.getElementById('nav').hidden = !on;
  document.getElementById('who').hidden = !on;
  const p = principal();
  document.querySelectorAll('[data-admin]').forEach((el) => { el.hidden = !(on && p && p.kind === 'admin'); });
  const who = document.getElementById('principal');
  who.textContent = on && p ? (p.kind === 'admin' ? 'hub admin' : p.name + ' (' + (ctx.role || 'no role') + ')') : '';
}

function loginPage() {
  if (stopPage) { stopPage(); stopPage = null; } // a session that ended mid-page: its timers and shown tokens go
  showChrome(false);
  const tok = field('API token', { type: 'password', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' },
    'A token from `pullgate-hub token create` (or the hub admin token). It is exchanged for a session and not stored by the page.');
  const form = h('form', { class: 'card narrow', on: { submit: async (ev) => {
    ev.preventDefault();
    const t = tok.input.value.trim();
    tok.input.value = '';
    try {
      await enter(t);
    } catch (e) { fail(e); tok.input.focus(); }
  } } }, h('h1', {}, 'Log in'), tok, h('button', { type: 'submit', class: 'primary' }, 'Log in'));
  clear(main).append(form, akashSection(enter, fail));
  tok.input.focus();
}

// enter exchanges a token (pasted, or just minted by an Akash login) for a
// session and shows the console; the token is not kept.
async function enter(token) {
  await login(token);
  await fillWorkspaces();
  say('Logged in.');
  location.hash = '#/registries';
  route();
}

async function route() {
  if (stopPage) { stopPage(); stopPage = null; }
  if (!principal()) { loginPage(); return; }
  showChrome(true);
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'registries';
  const page = Object.hasOwn(pages, name) ? pages[name] : pages.registries;
  document.querySelectorAll('#nav a').forEach((a) => {
    if (a.getAttribute('href') === '#/' + name) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  });
  clear(main);
  main.appendChild(h('p', { class: 'loading' }, 'Loading…'));
  try {
    const view = await page(ctx);
    clear(main).appendChild(view);
  } catch (e) {
    clear(main).appendChild(h('p', { class: 'empty' }, 'This page could not be loaded.'));
    fail(e);
  }
}

wsSelect.addEventListener('change', () => {
  ctx.ws = wsSelect.value;
  ctx.role = roleIn(ctx.ws);
  sessionStorage.setItem('pullgate.ws', ctx.ws);
  route();
});
document.getElementById('logout').addEventListener('click', async () => {
  await logout();
  say('Logged out.');
  location.hash = '#/login';
  route();
});
window.addEventListener('hashchange', () => { document.getElementById('status').textContent = ''; route(); });
// A token shown once goes when the page is left for another site too
// (the back/forward cache would otherwise keep it).
window.addEventListener('pagehide', () => {
  if (stopPage) { stopPage(); stopPage = null; }
  document.querySelectorAll('.once').forEach((el) => el.remove());
});
window.addEventListener('pageshow', (ev) => { if (ev.persisted) route(); }); // restart what pagehide stopped
onUnauthorized(async () => {
  await logout();
  fail('Your session ended: log in again.');
  loginPage();
});

(async () => {
  if (await resume()) await fillWorkspaces();
  route();
})();
