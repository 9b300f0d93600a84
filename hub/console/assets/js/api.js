// The operator API as the console calls it. Authentication is the session
// cookie set by POST /api/v1/session (HttpOnly: scripts never see it) with
// the CSRF token sent on every state change. The token pasted at login is
// sent once and not kept.

export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

const state = { csrf: '', principal: null, onUnauthorized: () => {} };

export function principal() { return state.principal; }
export function onUnauthorized(fn) { state.onUnauthorized = fn; }

function headers(method, json) {
  const hd = { Accept: 'application/json' };
  if (json) hd['Content-Type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && state.csrf) hd['X-CSRF-Token'] = state.csrf;
  return hd;
}

async function send(method, path, body) {
  return fetch('/api/v1' + path, {
    method,
    headers: headers(method, body !== undefined),
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'same-origin',
    cache: 'no-store',
    redirect: 'error',
  });
}

async function errorOf(r) {
  let msg = r.status + ' ' + r.statusText;
  try {
    const d = await r.json();
    if (d && typeof d.error === 'string') msg = d.error;
  } catch { /* not JSON */ }
  return new APIError(r.status, msg);
}

// api calls the API and returns the decoded JSON body (null for 204).
export async function api(method, path, body) {
  const r = await send(method, path, body);
  if (r.status === 401 && state.principal) {
    state.onUnauthorized();
  }
  if (!r.ok) throw await errorOf(r);
  if (r.status === 204) return null;
  return r.json();
}

// download fetches a non-JSON answer (CSV) as a Blob.
export async function download(path) {
  const r = await send('GET', path);
  if (!r.ok) throw await errorOf(r);
  return r.blob();
}

function adopt(d) {
  state.csrf = d.csrf_token || '';
  state.principal = d.principal;
  return d.principal;
}

// resume picks up an existing session (after a reload).
export async function resume() {
  try {
    const r = await send('GET', '/session');
    if (r.ok) return adopt(await r.json());
  } catch { /* offline */ }
  return null;
}

// login exchanges an API token (or the admin token) for a session.
export async function login(token) {
  const r = await fetch('/api/v1/session', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ token }),
    credentials: 'same-origin',
    cache: 'no-store',
  });
  if (r.status === 401) throw new APIError(401, 'The hub did not accept this token (unknown, revoked or expired).');
  if (!r.ok) throw await errorOf(r);
  return adopt(await r.json());
}

export async function logout() {
  try { await send('DELETE', '/session'); } catch { /* gone anyway */ }
  state.csrf = '';
  state.principal = null;
}

// seg escapes one path segment.
export function seg(s) { return encodeURIComponent(s); }
