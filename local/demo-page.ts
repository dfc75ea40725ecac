/**
 * The demo page of the local runner (never deployed): log in as a web app (session cookie), as a
 * web app in proxy mode (session cookie, and no token ever in the page), or as a native app (PKCE
 * + one-time code + rotating handle), see the session, the access token and the broker's own ID
 * token decoded, call the demo API through the broker's API proxy, refresh, log out
 * (`POST /logout`) or end the session everywhere (`GET /end-session`, RP-initiated logout). The native flow keeps its handle in sessionStorage,
 * which a real native app would keep in the platform's secure storage instead.
 */
import type { ServerResponse } from 'node:http';
import type { Config } from '../lib/config/parse.js';
import type { ExtraRoute } from './http-adapter.js';

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Token broker demo</title>
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:860px;margin:2rem auto;padding:0 1rem;color:#1b1f24}
h1{font-size:1.4rem}fieldset{border:1px solid #d0d7de;border-radius:6px;margin:1rem 0;padding:.75rem 1rem}
button{font:inherit;padding:.35rem .9rem;margin:.2rem .4rem .2rem 0;border-radius:6px;border:1px solid #8c959f;background:#f6f8fa;cursor:pointer}
button:disabled{opacity:.45;cursor:default}pre{background:#f6f8fa;padding:.75rem;border-radius:6px;overflow:auto;white-space:pre-wrap;word-break:break-all}
#status{font-weight:600}.err{color:#b42318}.ok{color:#116329}
</style></head><body>
<h1>OAuth token broker: demo</h1>
<p>Log in at the embedded OpenID provider as <b>alice</b> (any password). The broker keeps the provider's
refresh token; this page only ever sees access tokens and, as a native app, the broker's rotating handle. In proxy
mode it sees no token at all: it calls the demo API through the broker.</p>
<fieldset><legend>Log in</legend>
<label>Provider <select id="provider"></select></label>
<label>Client <select id="client"><option value="web">web (session cookie)</option><option value="web-proxy">web, proxy mode (no token in the page)</option><option value="native">native (PKCE, code, handle)</option></select></label>
<button id="login">Log in</button></fieldset>
<fieldset><legend>Session</legend>
<p id="status">Not logged in.</p>
<button id="refresh" disabled>Refresh</button><button id="logout" disabled>Log out</button><button id="end-session" disabled>End session everywhere</button>
<h3>Session</h3><pre id="session">—</pre>
<h3>ID token (the broker's)</h3><pre id="idtoken">—</pre>
<h3>Access token</h3><pre id="token">—</pre>
</fieldset>
<fieldset><legend>API</legend>
<p>The page calls the demo API through the broker (<code>/api/demo/hello</code>): the broker adds the session's access
token, refreshing it first when it is due. In proxy mode the page never sees a token at all.</p>
<button id="call-api" disabled>Call the demo API</button>
<pre id="api">—</pre>
</fieldset>
<script src="/demo.js" type="module"></script>
</body></html>`;

const JS = String.raw`
const $ = (id) => document.getElementById(id);
const config = await (await fetch('/demo-config.json')).json();
for (const p of config.providers) $('provider').append(new Option(p, p));
const b64url = (bytes) => btoa(String.fromCharCode(...new Uint8Array(bytes))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const random = () => b64url(crypto.getRandomValues(new Uint8Array(32)));
const form = (o) => ({ method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(o) });
const nativeRedirect = location.origin + '/';

function decode(jwt) {
  try { const [h, p] = jwt.split('.'); return { header: JSON.parse(atob(h.replace(/-/g, '+').replace(/_/g, '/'))), payload: JSON.parse(atob(p.replace(/-/g, '+').replace(/_/g, '/'))) }; }
  catch { return null; }
}
function status(text, ok = true) { $('status').textContent = text; $('status').className = ok ? 'ok' : 'err'; }
function showIdToken(idToken) {
  if (!idToken) return;
  sessionStorage.setItem('id_token', idToken);
  $('idtoken').textContent = JSON.stringify(decode(idToken), null, 2);
  $('end-session').disabled = false;
}
function showTokens(body, source) {
  if (!body.access_token) {
    // Proxy mode: /refresh keeps the session alive and says how long the stored token lives; the page gets no token.
    $('token').textContent = '(proxy mode: this page holds no token)\nthe stored access token lives ' + body.expires_in + ' s more\nsource: ' + (source || '?');
    $('refresh').disabled = false; $('logout').disabled = false;
    return;
  }
  showIdToken(body.id_token);
  const decoded = decode(body.access_token);
  const shown = { ...body, refresh_token: body.refresh_token ? '(broker handle, kept by the app)' : undefined, id_token: body.id_token ? '(shown decoded above)' : undefined };
  $('token').textContent = 'access_token: ' + body.access_token + '\nexpires_in: ' + body.expires_in + ' s\nsource: ' + (source || '?') +
    (decoded ? '\n\ndecoded: ' + JSON.stringify(decoded, null, 2) : '\n\n(an opaque access token)') + '\n\nresponse: ' + JSON.stringify(shown, null, 2);
  $('refresh').disabled = false; $('logout').disabled = false;
}
async function showSession() {
  const res = await fetch('/session', { credentials: 'include' });
  if (res.ok) { const s = await res.json(); $('session').textContent = JSON.stringify({ ...s, expires_at: new Date(s.expires_at * 1000).toISOString() }, null, 2); return true; }
  $('session').textContent = '—'; return false;
}

$('login').onclick = async () => {
  const client = $('client').value, provider = $('provider').value, state = random();
  sessionStorage.setItem('state', state); sessionStorage.setItem('client', client);
  // The broker's own OpenID scopes; what it asks the provider for is the provider's configuration.
  const q = { client_id: client, state, provider, scope: client === 'native' ? 'openid profile email offline_access' : 'openid profile email' };
  if (client === 'native') {
    const verifier = random(), nonce = random();
    sessionStorage.setItem('verifier', verifier); sessionStorage.setItem('nonce', nonce);
    q.nonce = nonce;
    Object.assign(q, { redirect_uri: nativeRedirect, code_challenge: b64url(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier))), code_challenge_method: 'S256' });
  }
  location.href = '/login?' + new URLSearchParams(q);
};

$('refresh').onclick = async () => {
  let res;
  if (sessionStorage.getItem('client') === 'native') {
    res = await fetch('/token', form({ grant_type: 'refresh_token', refresh_token: sessionStorage.getItem('handle'), client_id: 'native' }));
  } else {
    res = await fetch('/refresh', { method: 'POST', credentials: 'include', headers: { 'X-Broker-Csrf': '1' } });
  }
  const body = await res.json();
  if (!res.ok) { status('Refresh failed: ' + body.error + ' (' + body.error_description + ')', false); return; }
  if (body.refresh_token) sessionStorage.setItem('handle', body.refresh_token);
  showTokens(body, res.headers.get('x-broker-token-source'));
  status('Refreshed: ' + (res.headers.get('x-broker-token-source') === 'upstream' ? 'a new token from the provider' : 'served from the stored token'));
};

$('call-api').onclick = async () => {
  const res = await fetch('/api/demo/hello', { credentials: 'include', headers: { 'X-Broker-Csrf': '1' } });
  const text = await res.text();
  let shown = text;
  try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch {}
  $('api').textContent = 'HTTP ' + res.status + '\n' + shown;
  status(res.ok ? 'The demo API answered through the broker.' : 'The API call failed: HTTP ' + res.status, res.ok);
};

$('logout').onclick = async () => {
  let res;
  if (sessionStorage.getItem('client') === 'native') res = await fetch('/logout', form({ refresh_token: sessionStorage.getItem('handle') || '', client_id: 'native' }));
  else res = await fetch('/logout', { method: 'POST', credentials: 'include', headers: { 'X-Broker-Csrf': '1' } });
  const body = await res.json();
  sessionStorage.clear();
  $('token').textContent = '—'; $('session').textContent = '—'; $('idtoken').textContent = '—';
  $('refresh').disabled = true; $('logout').disabled = true; $('end-session').disabled = true; $('call-api').disabled = true; $('api').textContent = '—';
  status(res.ok ? 'Logged out.' + (body.end_session_url ? ' The provider session can be ended at its end-session URL.' : '') : 'Logout failed', res.ok);
};

// RP-initiated logout: the broker ends its session and the provider's, then comes back here (web;
// the native demo client's post-logout URI is another app's, so the provider shows its own page).
$('end-session').onclick = () => {
  const client = sessionStorage.getItem('client'), state = random();
  const q = { id_token_hint: sessionStorage.getItem('id_token'), client_id: client, state };
  if (client === 'web') q.post_logout_redirect_uri = location.origin + '/';
  sessionStorage.clear(); sessionStorage.setItem('logout_state', state);
  location.href = '/end-session?' + new URLSearchParams(q);
};

const params = new URLSearchParams(location.search);
if (params.has('state') && params.get('state') === sessionStorage.getItem('logout_state')) {
  sessionStorage.clear();
  status('Logged out everywhere (RP-initiated logout at the broker and the provider).');
} else if (params.has('error')) status('Login failed: ' + params.get('error') + (params.get('error_description') ? ' (' + params.get('error_description') + ')' : ''), false);
else if (params.has('state') && params.get('state') !== sessionStorage.getItem('state')) status('The state does not match this login.', false);
else if (params.has('code')) {
  const res = await fetch('/token', form({ grant_type: 'authorization_code', code: params.get('code'), code_verifier: sessionStorage.getItem('verifier'), client_id: 'native', redirect_uri: nativeRedirect }));
  const body = await res.json();
  if (res.ok && body.id_token && decode(body.id_token).payload.nonce !== sessionStorage.getItem('nonce')) status('The ID token\'s nonce does not match this login.', false);
  else if (res.ok) { sessionStorage.setItem('handle', body.refresh_token); showTokens(body, 'login'); status('Logged in as a native app.'); $('session').textContent = 'scope: ' + body.scope + ' (the broker\'s ID token is shown decoded below)'; }
  else status('Code redemption failed: ' + body.error, false);
} else if (await showSession()) {
  status(sessionStorage.getItem('client') === 'web-proxy' ? 'Logged in as a web app in proxy mode (session cookie, no token in the page).' : 'Logged in as a web app (session cookie).');
  $('refresh').disabled = false; $('logout').disabled = false; $('call-api').disabled = false;
}
if (params.size) history.replaceState(null, '', '/');
`;

function send(res: ServerResponse, type: string, body: string): true {
  res.writeHead(200, {
    'content-type': type,
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    'content-security-policy': "default-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'",
    'referrer-policy': 'no-referrer',
  });
  res.end(body);
  return true;
}

export function demoPage(config: Config): ExtraRoute {
  const demoConfig = JSON.stringify({ providers: Object.keys(config.providers) });
  return (req, res, url) => {
    if (req.method !== 'GET') return false;
    if (url.pathname === '/') return send(res, 'text/html; charset=utf-8', HTML);
    if (url.pathname === '/demo.js') return send(res, 'text/javascript; charset=utf-8', JS);
    if (url.pathname === '/demo-config.json') return send(res, 'application/json', demoConfig);
    return false;
  };
}
