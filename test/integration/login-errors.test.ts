/**
 * `GET /login` (CONTRACT.md "start-login"): what is refused before the redirect URI is trusted
 * (400 JSON, never a redirect), what is sent back to the app after (302 with `error`, `state`
 * and `iss`), and what a good request sends to the provider.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  go, jar, loginAtProvider, NATIVE_REDIRECT, pkce, startHarness, WEB_ORIGIN, WEB_REDIRECT, webLogin, type Harness,
} from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    configure: (doc) => {
      // A provider the broker knows but the native app may not use.
      doc.providers.op2 = { ...doc.providers.op };
      doc.clients.web.providers = ['op', 'op2', 'plain'];
      // (v2) A plain OAuth provider that knows no scope at all.
      doc.providers.plain = { authorizationEndpoint: `${doc.providers.op.issuer}/auth`, tokenEndpoint: `${doc.providers.op.issuer}/token`, clientId: 'broker', clientSecret: doc.providers.op.clientSecret, scopes: [] };
      doc.clients.app.providers = ['op', 'plain'];
    },
  });
});
afterAll(() => h.close());

const { challenge } = pkce();

/** A native /login request; `null` leaves a parameter out. */
function loginUrl(params: Record<string, string | null> = {}): string {
  const all: Record<string, string | null> = {
    client_id: 'app', redirect_uri: NATIVE_REDIRECT, state: 'app-state', code_challenge: challenge, code_challenge_method: 'S256', ...params,
  };
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(all)) if (v !== null) q.append(k, v);
  return `${h.url}/login?${q}`;
}

/** A 400 JSON refusal with no redirect to anything. */
async function expectRefused(res: Response, error = 'invalid_request'): Promise<void> {
  expect(res.status).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  expect(res.headers.getSetCookie()).toEqual([]);
  const body = await res.json();
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe('string');
}

/** A 302 back to the app's redirect URI with an OAuth error and `iss`. */
function expectAppError(res: Response, error: string, redirectUri: string, state: string | null): URL {
  expect(res.status).toBe(302);
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  const location = new URL(res.headers.get('location')!);
  expect(location.href.startsWith(redirectUri)).toBe(true);
  expect(location.searchParams.get('error')).toBe(error);
  expect(location.searchParams.get('iss')).toBe(h.url);
  expect(location.searchParams.get('state')).toBe(state);
  expect(location.searchParams.get('code')).toBeNull();
  // Nothing was started: no transaction cookie.
  expect(res.headers.getSetCookie()).toEqual([]);
  return location;
}

function expectToProvider(res: Response): URL {
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get('location')!);
  expect(`${location.origin}${location.pathname}`).toBe(`${h.op.issuer}/auth`);
  return location;
}

describe('GET /login before the redirect URI is trusted: 400 JSON, no redirect', () => {
  it('refuses an unknown client_id', async () => {
    await expectRefused(await fetch(loginUrl({ client_id: 'nobody' }), { redirect: 'manual' }));
  });

  it('refuses a missing client_id', async () => {
    await expectRefused(await fetch(loginUrl({ client_id: null }), { redirect: 'manual' }));
  });

  it('refuses a client_id that only exists on Object.prototype', async () => {
    await expectRefused(await fetch(loginUrl({ client_id: 'constructor' }), { redirect: 'manual' }));
  });

  it('refuses a repeated client_id', async () => {
    const url = `${loginUrl()}&client_id=app`;
    await expectRefused(await fetch(url, { redirect: 'manual' }));
  });

  it.each([
    ['an unregistered URI', 'com.example.evil:/oauth2redirect'],
    ['the registered URI plus a trailing slash', `${NATIVE_REDIRECT}/`],
    ['the registered URI in another case', 'com.example.app:/OAuth2Redirect'],
    ['the registered URI with an upper-case scheme', 'COM.EXAMPLE.APP:/oauth2redirect'],
    ['the registered URI plus a query', `${NATIVE_REDIRECT}?x=1`],
    ['the registered URI plus a fragment', `${NATIVE_REDIRECT}#x`],
    ['another client\'s URI', 'com.example.other:/cb'],
    ['an https look-alike', 'https://evil.example/oauth2redirect'],
  ])('refuses %s as redirect_uri (native)', async (_what, redirectUri) => {
    await expectRefused(await fetch(loginUrl({ redirect_uri: redirectUri }), { redirect: 'manual' }));
  });

  it('refuses a native login without redirect_uri', async () => {
    await expectRefused(await fetch(loginUrl({ redirect_uri: null }), { redirect: 'manual' }));
  });

  it('refuses a repeated redirect_uri', async () => {
    await expectRefused(await fetch(`${loginUrl()}&redirect_uri=${encodeURIComponent(NATIVE_REDIRECT)}`, { redirect: 'manual' }));
  });

  it.each([
    ['a trailing-slash-less path', `${WEB_ORIGIN}/app`],
    ['a query', `${WEB_REDIRECT}?next=/`],
    ['another path', `${WEB_ORIGIN}/other/`],
    ['another host', 'https://evil.example/app/'],
  ])('refuses %s as redirect_uri (web)', async (_what, redirectUri) => {
    await expectRefused(await fetch(`${h.url}/login?${new URLSearchParams({ client_id: 'web', redirect_uri: redirectUri, state: 's' })}`, { redirect: 'manual' }));
  });

  it('gives a web client no loopback port relaxation', async () => {
    const other = new URL(WEB_REDIRECT);
    other.port = String(Number(other.port) + 1);
    await expectRefused(await fetch(`${h.url}/login?${new URLSearchParams({ client_id: 'web', redirect_uri: other.href, state: 's' })}`, { redirect: 'manual' }));
    const noPort = new URL(WEB_REDIRECT);
    noPort.port = '';
    await expectRefused(await fetch(`${h.url}/login?${new URLSearchParams({ client_id: 'web', redirect_uri: noPort.href, state: 's' })}`, { redirect: 'manual' }));
  });
});

describe('GET /login: native loopback redirect URIs (RFC 8252 §7.3)', () => {
  it('accepts the registered loopback URI on any port', async () => {
    expectToProvider(await go(jar(), loginUrl({ redirect_uri: 'http://127.0.0.1:51000/cb' })));
    expectToProvider(await go(jar(), loginUrl({ redirect_uri: 'http://127.0.0.1/cb' })));
  });

  // Regression: the URL parser drops a default :80, so the port was never stripped and
  // http://127.0.0.1:80/cb was refused (RFC 8252 §7.3: any port).
  it('accepts the registered loopback URI with an explicit port 80', async () => {
    expectToProvider(await go(jar(), loginUrl({ redirect_uri: 'http://127.0.0.1:80/cb' })));
  });

  it('refuses another path, host or scheme on the loopback', async () => {
    for (const redirectUri of [
      'http://127.0.0.1:51000/other',
      'http://127.0.0.1:51000/cb/',
      'http://127.0.0.1:51000/cb?x=1',
      'http://localhost:51000/cb',
      'http://127.0.0.2:51000/cb',
      'http://[::1]:51000/cb',
      'https://127.0.0.1:51000/cb',
      'http://user@127.0.0.1:51000/cb',
    ]) {
      await expectRefused(await fetch(loginUrl({ redirect_uri: redirectUri }), { redirect: 'manual' }));
    }
  });

  it('sends errors back to the loopback URI with the port the app asked for', async () => {
    const res = await fetch(loginUrl({ redirect_uri: 'http://127.0.0.1:51000/cb', code_challenge: null }), { redirect: 'manual' });
    const location = expectAppError(res, 'invalid_request', 'http://127.0.0.1:51000/cb', 'app-state');
    expect(location.port).toBe('51000');
  });
});

describe('GET /login after the redirect URI is trusted: 302 back to the app', () => {
  it('refuses a native login without code_challenge', async () => {
    expectAppError(await fetch(loginUrl({ code_challenge: null }), { redirect: 'manual' }), 'invalid_request', NATIVE_REDIRECT, 'app-state');
  });

  it('refuses code_challenge_method=plain', async () => {
    expectAppError(await fetch(loginUrl({ code_challenge_method: 'plain' }), { redirect: 'manual' }), 'invalid_request', NATIVE_REDIRECT, 'app-state');
  });

  it('refuses a missing code_challenge_method (it means plain, RFC 7636 §4.3)', async () => {
    expectAppError(await fetch(loginUrl({ code_challenge_method: null }), { redirect: 'manual' }), 'invalid_request', NATIVE_REDIRECT, 'app-state');
  });

  it('refuses a code_challenge that is no S256 value', async () => {
    expectAppError(await fetch(loginUrl({ code_challenge: 'short' }), { redirect: 'manual' }), 'invalid_request', NATIVE_REDIRECT, 'app-state');
  });

  it('accepts a state of 512 characters and echoes it back', async () => {
    const state = 's'.repeat(512);
    const res = await fetch(loginUrl({ state, code_challenge: null }), { redirect: 'manual' });
    expectAppError(res, 'invalid_request', NATIVE_REDIRECT, state);
    expectToProvider(await go(jar(), loginUrl({ state })));
  });

  it('refuses a state longer than 512 characters, without echoing it', async () => {
    const res = await fetch(loginUrl({ state: 's'.repeat(513) }), { redirect: 'manual' });
    const location = expectAppError(res, 'invalid_request', NATIVE_REDIRECT, null);
    expect(location.searchParams.has('state')).toBe(false);
  });

  it('refuses a repeated state, without echoing either', async () => {
    const res = await fetch(`${loginUrl({ state: 'one' })}&state=two`, { redirect: 'manual' });
    const location = expectAppError(res, 'invalid_request', NATIVE_REDIRECT, null);
    expect(location.searchParams.has('state')).toBe(false);
  });

  it('refuses an unknown provider', async () => {
    expectAppError(await fetch(loginUrl({ provider: 'nope' }), { redirect: 'manual' }), 'invalid_request', NATIVE_REDIRECT, 'app-state');
  });

  it('refuses a configured provider that is not the client\'s', async () => {
    expectAppError(await fetch(loginUrl({ provider: 'op2' }), { redirect: 'manual' }), 'invalid_request', NATIVE_REDIRECT, 'app-state');
    // The web client may use it.
    expectToProvider(await go(jar(), `${h.url}/login?client_id=web&provider=op2`));
  });

  it('refuses response_type=token with unsupported_response_type', async () => {
    expectAppError(await fetch(loginUrl({ response_type: 'token' }), { redirect: 'manual' }), 'unsupported_response_type', NATIVE_REDIRECT, 'app-state');
  });

  it.each([
    ['request', 'eyJhbGciOiJub25lIn0.e30.', 'request_not_supported'],
    ['request_uri', 'https://app.example.com/request.jwt', 'request_uri_not_supported'],
    ['registration', '{}', 'registration_not_supported'],
    ['response_mode', 'fragment', 'invalid_request'],
    ['response_mode', 'form_post', 'invalid_request'],
  ])('refuses %s=%s with %s (OIDC Core §3.1.2.6, §6), not ignoring it', async (name, value, error) => {
    expectAppError(await fetch(loginUrl({ [name]: value }), { redirect: 'manual' }), error, NATIVE_REDIRECT, 'app-state');
  });

  it('accepts an explicit response_mode=query', async () => {
    expectToProvider(await go(jar(), loginUrl({ response_mode: 'query' })));
  });

  it('accepts an explicit response_type=code', async () => {
    expectToProvider(await go(jar(), loginUrl({ response_type: 'code' })));
  });

  it('sends a web client\'s errors to its first registered URI by default', async () => {
    const res = await fetch(`${h.url}/login?${new URLSearchParams({ client_id: 'web', state: 'w', provider: 'nope' })}`, { redirect: 'manual' });
    expectAppError(res, 'invalid_request', WEB_REDIRECT, 'w');
  });
});

describe('GET /login success', () => {
  it('sends the browser to the provider with a complete authorization request', async () => {
    const j = jar();
    const res = await go(j, loginUrl({ state: 'app-state-123', login_hint: 'alice@example.com', ui_locales: 'de', claims: '{"id_token":{"email":null}}', max_age: '0', prompt: 'none', acr_values: 'x' }));
    const location = expectToProvider(res);
    const q = location.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe('broker');
    expect(q.get('redirect_uri')).toBe(`${h.url}/callback`);
    expect(q.get('scope')).toBe('openid profile offline_access');
    const state = q.get('state')!;
    expect(state).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(state).not.toBe('app-state-123');
    expect(q.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43,}$/);
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    // The broker's own PKCE pair toward the provider, not the app's.
    expect(q.get('code_challenge')).not.toBe(challenge);
    expect(q.get('code_challenge_method')).toBe('S256');
    // Forwarded parameters pass; others do not; authorizationParams are not overridden.
    expect(q.get('login_hint')).toBe('alice@example.com');
    expect(q.get('ui_locales')).toBe('de');
    expect(q.has('claims')).toBe(false);
    expect(q.has('max_age')).toBe(false);
    expect(q.has('acr_values')).toBe(false);
    expect(q.getAll('prompt')).toEqual(['consent']);
    for (const key of ['state', 'nonce', 'code_challenge', 'response_type', 'client_id', 'redirect_uri', 'scope']) expect(q.getAll(key)).toHaveLength(1);

    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('access-control-allow-origin')).toBeNull();

    const cookies = res.headers.getSetCookie();
    expect(cookies).toHaveLength(1);
    const attrs = cookies[0]!.split(';').map((s) => s.trim());
    const [name, value] = attrs[0]!.split('=');
    expect(name).toBeTruthy();
    expect(value!.length).toBeGreaterThanOrEqual(22);
    expect(value).not.toBe(state);
    expect(attrs.map((a) => a.toLowerCase())).toContain('httponly');
    expect(attrs).toContain('SameSite=Lax');
    const maxAge = attrs.find((a) => /^max-age=/i.test(a));
    expect(Number(maxAge?.split('=')[1])).toBeGreaterThan(0);
    expect(Number(maxAge?.split('=')[1])).toBeLessThanOrEqual(600);
    expect(attrs.some((a) => /^domain=/i.test(a))).toBe(false);
  });

  it('uses a fresh state and nonce on every login', async () => {
    const a = expectToProvider(await go(jar(), loginUrl()));
    const b = expectToProvider(await go(jar(), loginUrl()));
    expect(a.searchParams.get('state')).not.toBe(b.searchParams.get('state'));
    expect(a.searchParams.get('nonce')).not.toBe(b.searchParams.get('nonce'));
    expect(a.searchParams.get('code_challenge')).not.toBe(b.searchParams.get('code_challenge'));
  });

  it('sends a web client without redirect_uri to its first registered URI after login', async () => {
    const { redirect } = await webLogin(h, 'web-xyz');
    expect(`${redirect.origin}${redirect.pathname}`).toBe(WEB_REDIRECT);
    expect(redirect.searchParams.get('state')).toBe('web-xyz');
    expect(redirect.searchParams.get('iss')).toBe(h.url);
    expect(redirect.searchParams.has('error')).toBe(false);
    expect(redirect.searchParams.has('code')).toBe(false);
  });
});

describe('GET /login and /callback send no CORS headers', () => {
  it('on /login, even for an allowed Origin', async () => {
    const ok = await go(jar(), loginUrl(), { headers: { origin: WEB_ORIGIN } });
    expectToProvider(ok);
    expect(ok.headers.get('access-control-allow-origin')).toBeNull();
    expect(ok.headers.get('access-control-allow-credentials')).toBeNull();

    const refused = await fetch(loginUrl({ client_id: 'nobody' }), { redirect: 'manual', headers: { origin: WEB_ORIGIN } });
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    await expectRefused(refused);

    const pre = await fetch(loginUrl(), { method: 'OPTIONS', headers: { origin: WEB_ORIGIN, 'access-control-request-method': 'GET' } });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-methods')).toBeNull();
  });

  it('on /callback, even for an allowed Origin', async () => {
    const refused = await fetch(`${h.url}/callback?state=nothing&code=x`, { redirect: 'manual', headers: { origin: WEB_ORIGIN } });
    expect(refused.status).toBe(400);
    expect((await refused.json()).error).toBe('invalid_request');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();

    const j = jar();
    const start = await go(j, loginUrl());
    const callback = await loginAtProvider(j, start.headers.get('location')!, `${h.url}/callback`);
    const done = await go(j, callback, { headers: { origin: WEB_ORIGIN } });
    expect(done.status).toBe(302);
    expect(new URL(done.headers.get('location')!).searchParams.get('code')).toBeTruthy();
    expect(done.headers.get('access-control-allow-origin')).toBeNull();
    expect(done.headers.get('access-control-allow-credentials')).toBeNull();

    const pre = await fetch(`${h.url}/callback`, { method: 'OPTIONS', headers: { origin: WEB_ORIGIN, 'access-control-request-method': 'POST' } });
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    expect(pre.headers.get('access-control-allow-methods')).toBeNull();
  });
});

describe('(v2) scope and nonce', () => {
  it('refuses a scope the broker does not know with invalid_scope, back to the app', async () => {
    const res = await fetch(loginUrl({ scope: 'openid api:read' }), { redirect: 'manual' });
    const location = expectAppError(res, 'invalid_scope', NATIVE_REDIRECT, 'app-state');
    expect(location.searchParams.get('error_description')).toMatch(/openid, profile, email, offline_access/);
  });

  it('refuses openid for a provider without an ID token, and a nonce over 512 characters', async () => {
    expectAppError(await fetch(loginUrl({ scope: 'openid', provider: 'plain' }), { redirect: 'manual' }), 'invalid_scope', NATIVE_REDIRECT, 'app-state');
    expectAppError(await fetch(loginUrl({ nonce: 'n'.repeat(513) }), { redirect: 'manual' }), 'invalid_request', NATIVE_REDIRECT, 'app-state');
    expectAppError(await fetch(`${loginUrl()}&nonce=a&nonce=b`, { redirect: 'manual' }), 'invalid_request', NATIVE_REDIRECT, 'app-state');
  });

  it('never changes what the provider is asked for: its own scopes, its own nonce', async () => {
    const res = await fetch(loginUrl({ scope: 'openid email', nonce: 'app-nonce' }), { redirect: 'manual' });
    expect(res.status).toBe(302);
    const authorize = new URL(res.headers.get('location')!);
    expect(authorize.searchParams.get('scope')).toBe('openid profile offline_access');
    expect(authorize.searchParams.get('nonce')).not.toBe('app-nonce');
    expect(authorize.searchParams.get('nonce')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });

  it('sends no scope parameter at all for a provider with "scopes": [] (RFC 6749 §3.3), nor a nonce', async () => {
    for (const url of [loginUrl({ provider: 'plain' }), `${h.url}/login?client_id=web&provider=plain`]) {
      const res = await fetch(url, { redirect: 'manual' });
      expect(res.status).toBe(302);
      const authorize = new URL(res.headers.get('location')!);
      expect(authorize.searchParams.has('scope')).toBe(false);
      expect(authorize.searchParams.has('nonce')).toBe(false);
      expect(authorize.searchParams.get('code_challenge_method')).toBe('S256');
    }
  });
});
