/**
 * `GET /callback` and `POST /callback` (CONTRACT.md "callback"): logins that cannot be identified
 * (400, nothing else happens), the RFC 9207 mix-up defence, provider errors, and a hostile
 * provider whose token endpoint or ID token is broken: every failure ends at the app with an
 * OAuth error and no session.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  form, go, jar, loginAtProvider, NATIVE_REDIRECT, pkce, redeem, refreshNative, startHarness, type Harness, type Jar,
} from '../support/harness.js';
import { startHostile, type Hostile, type TokenMode } from '../support/hostile.js';
import { countItems as countTableItems } from '../support/table.js';

let h: Harness;
let evil: Hostile;
/** POST requests the real provider's token endpoint received. */
let opTokenCalls = 0;
let opGrants = 0;

beforeAll(async () => {
  evil = await startHostile();
  h = await startHarness({
    configure: (doc) => {
      doc.providers.evil = { issuer: evil.issuer, clientId: 'broker', clientAuth: 'client_secret_post', clientSecret: { value: 'x' }, scopes: ['openid'] };
      doc.providers.opfp = { ...doc.providers.op, authorizationParams: { response_mode: 'form_post', prompt: 'consent' } };
      // Plain OAuth 2.0, static endpoints and no issuer (the hostile server's endpoints).
      doc.providers.plain = { authorizationEndpoint: `${evil.issuer}/authorize`, tokenEndpoint: `${evil.issuer}/token`, clientId: 'broker', clientAuth: 'client_secret_post', clientSecret: { value: 'x' }, scopes: [] };
      // The real provider once more, as plain OAuth 2.0 without an issuer: its responses still name its issuer.
      const op = doc.providers.op;
      doc.providers.opplain = { authorizationEndpoint: `${op.issuer}/auth`, tokenEndpoint: `${op.issuer}/token`, clientId: op.clientId, clientAuth: op.clientAuth, clientSecret: op.clientSecret, scopes: ['profile'] };
      doc.clients.app.providers = ['op', 'evil', 'opfp', 'plain', 'opplain'];
    },
  });
  h.op.server.on('request', (req) => {
    if (req.method === 'POST' && (req.url ?? '').split('?')[0] === '/token') opTokenCalls++;
  });
  h.op.provider.on('grant.success', () => opGrants++);
});
afterAll(async () => {
  await h?.close();
  await evil?.close();
});
afterEach(() => {
  h.clockOffset = 0;
  evil.mode = 'ok';
  evil.authorizeMode = 'redirect';
});

/** Items in the broker's table whose key starts with `prefix` (`session#`, `login#`). */
const countItems = (prefix: string) => countTableItems(h.runtime.table, prefix);

interface Started {
  readonly jar: Jar;
  readonly verifier: string;
  /** The provider authorization URL the broker sent the browser to. */
  readonly authorize: URL;
  /** The broker's state toward the provider. */
  readonly state: string;
  readonly setCookie: string;
}

async function startLogin(provider = 'op', appState = 'app-state'): Promise<Started> {
  const j = jar();
  const { verifier, challenge } = pkce();
  const res = await go(j, `${h.url}/login?${new URLSearchParams({
    client_id: 'app', redirect_uri: NATIVE_REDIRECT, state: appState, code_challenge: challenge, code_challenge_method: 'S256', provider,
  })}`);
  expect(res.status).toBe(302);
  const authorize = new URL(res.headers.get('location')!);
  const cookies = res.headers.getSetCookie();
  expect(cookies).toHaveLength(1);
  return { jar: j, verifier, authorize, state: authorize.searchParams.get('state')!, setCookie: cookies[0]! };
}

const callbackUrl = (params: Record<string, string>) => `${h.url}/callback?${new URLSearchParams(params)}`;

async function expect400(res: Response): Promise<void> {
  expect(res.status).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  const body = await res.json();
  expect(body.error).toBe('invalid_request');
  // Nothing set: no session cookie.
  expect(res.headers.getSetCookie().filter((c) => !/Max-Age=0/i.test(c))).toEqual([]);
}

/** A redirect to the app with an OAuth error, the app's state, `iss`, and no code. */
function expectAppError(res: Response, error: string, appState = 'app-state', status = 302): URL {
  expect(res.status).toBe(status);
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  const location = new URL(res.headers.get('location')!);
  expect(location.href.startsWith(NATIVE_REDIRECT)).toBe(true);
  expect(location.searchParams.get('error')).toBe(error);
  expect(location.searchParams.get('state')).toBe(appState);
  expect(location.searchParams.get('iss')).toBe(h.url);
  expect(location.searchParams.has('code')).toBe(false);
  return location;
}

function expectCode(res: Response, appState = 'app-state', status = 302): string {
  expect(res.status).toBe(status);
  const location = new URL(res.headers.get('location')!);
  expect(location.href.startsWith(NATIVE_REDIRECT)).toBe(true);
  expect(location.searchParams.get('error')).toBeNull();
  expect(location.searchParams.get('state')).toBe(appState);
  expect(location.searchParams.get('iss')).toBe(h.url);
  const code = location.searchParams.get('code');
  expect(code).toBeTruthy();
  // It carries a code.
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('pragma')).toBe('no-cache');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  return code!;
}

describe('callbacks that identify no login: 400, nothing redirected, no call to the provider', () => {
  it('refuses a callback without state', async () => {
    const calls = opTokenCalls;
    await expect400(await fetch(callbackUrl({ code: 'abc', iss: h.op.issuer }), { redirect: 'manual' }));
    await expect400(await fetch(`${h.url}/callback`, { redirect: 'manual' }));
    expect(opTokenCalls).toBe(calls);
  });

  it('refuses an unknown state, also from a browser that has a login in progress', async () => {
    const started = await startLogin();
    const calls = opTokenCalls;
    await expect400(await go(started.jar, callbackUrl({ code: 'abc', state: 'x'.repeat(43), iss: h.op.issuer })));
    await expect400(await fetch(callbackUrl({ code: 'abc', state: 'x'.repeat(43), iss: h.op.issuer }), { redirect: 'manual' }));
    expect(opTokenCalls).toBe(calls);
  });

  it('refuses a state replayed after the login completed, without calling the token endpoint again', async () => {
    const started = await startLogin();
    const callback = await loginAtProvider(started.jar, started.authorize.href, `${h.url}/callback`);
    const cookieHeader = started.jar.header(h.url);
    expect(cookieHeader).not.toBe('');
    expectCode(await go(started.jar, callback));

    const calls = opTokenCalls;
    const grants = opGrants;
    const sessions = await countItems('session#');
    // The same browser (its transaction cookie was cleared) ...
    await expect400(await go(started.jar, callback));
    // ... and the same browser replaying the cookie it had before.
    await expect400(await fetch(callback, { redirect: 'manual', headers: { cookie: cookieHeader } }));
    expect(opTokenCalls).toBe(calls);
    expect(opGrants).toBe(grants);
    expect(await countItems('session#')).toBe(sessions);
  });

  it('refuses a callback replayed in another browser, and the real browser can still finish', async () => {
    const started = await startLogin();
    const callback = await loginAtProvider(started.jar, started.authorize.href, `${h.url}/callback`);
    const calls = opTokenCalls;
    const sessions = await countItems('session#');

    // A browser without any transaction cookie.
    await expect400(await go(jar(), callback));
    // A browser with a transaction cookie of the right name but its own value.
    const name = started.setCookie.split('=')[0]!;
    await expect400(await fetch(callback, { redirect: 'manual', headers: { cookie: `${name}=${'A'.repeat(43)}` } }));
    // A browser that started a login of its own.
    const attacker = await startLogin();
    await expect400(await go(attacker.jar, callback));

    expect(opTokenCalls).toBe(calls);
    expect(await countItems('session#')).toBe(sessions);

    const code = expectCode(await go(started.jar, callback));
    const res = await redeem(h, { code, verifier: started.verifier, redirect: new URL(NATIVE_REDIRECT), jar: started.jar });
    expect(res.status).toBe(200);
  });

  it('refuses an expired login', async () => {
    const started = await startLogin();
    const callback = await loginAtProvider(started.jar, started.authorize.href, `${h.url}/callback`);
    const calls = opTokenCalls;
    const sessions = await countItems('session#');
    h.clockOffset = 700; // ttl.loginSeconds is 600
    await expect400(await go(started.jar, callback));
    expect(opTokenCalls).toBe(calls);
    expect(await countItems('session#')).toBe(sessions);
  });
});

describe('provider errors and the RFC 9207 mix-up defence', () => {
  it('sends the provider\'s error=access_denied to the app with its state and iss', async () => {
    const started = await startLogin('op', 'st-1');
    const calls = opTokenCalls;
    const res = await go(started.jar, callbackUrl({ error: 'access_denied', error_description: 'no', state: started.state, iss: h.op.issuer }));
    expectAppError(res, 'access_denied', 'st-1');
    expect(opTokenCalls).toBe(calls);
    // The login is used up.
    await expect400(await go(started.jar, callbackUrl({ code: 'abc', state: started.state, iss: h.op.issuer })));
  });

  it('passes another provider error code through', async () => {
    const started = await startLogin('op', 'st-2');
    const res = await go(started.jar, callbackUrl({ error: 'login_required', state: started.state, iss: h.op.issuer }));
    expectAppError(res, 'login_required', 'st-2');
  });

  it('passes on only an error code of plain characters: markup, quotes or spaces become access_denied', async () => {
    for (const error of ['<script>alert(1)</script>', 'a b', '"x"']) {
      const started = await startLogin('op', 'st-3');
      const res = await go(started.jar, callbackUrl({ error, state: started.state, iss: h.op.issuer }));
      expectAppError(res, 'access_denied', 'st-3');
    }
  });

  it('refuses an iss of another issuer before any call to the token endpoint', async () => {
    const started = await startLogin();
    const calls = opTokenCalls;
    const sessions = await countItems('session#');
    const res = await go(started.jar, callbackUrl({ code: 'abc', state: started.state, iss: 'https://evil.example' }));
    expectAppError(res, 'access_denied');
    expect(opTokenCalls).toBe(calls);
    expect(await countItems('session#')).toBe(sessions);
  });

  it('refuses, for a provider configured without an issuer, an iss naming another configured provider (a mix-up: that provider\'s code steered to this login)', async () => {
    const started = await startLogin('plain');
    const calls = evil.tokenRequests.length;
    const sessions = await countItems('session#');
    const res = await go(started.jar, callbackUrl({ code: 'code-of-op', state: started.state, iss: h.op.issuer }));
    expectAppError(res, 'access_denied');
    expect(evil.tokenRequests.length).toBe(calls);
    expect(await countItems('session#')).toBe(sessions);
    // Its own iss, which the configuration cannot name, or none: the login goes on to the token endpoint.
    for (const iss of ['https://plain.example', undefined]) {
      const own = await startLogin('plain');
      const before = evil.tokenRequests.length;
      await go(own.jar, callbackUrl({ code: 'code-of-plain', state: own.state, ...(iss ? { iss } : {}) }));
      expect(evil.tokenRequests.length).toBe(before + 1);
    }
  });

  it('takes, for a provider configured without an issuer, the iss of another entry for the same server (its token endpoint on that issuer\'s origin)', async () => {
    const started = await startLogin('opplain');
    const callback = new URL(await loginAtProvider(started.jar, started.authorize.href, `${h.url}/callback`));
    expect(callback.searchParams.get('iss')).toBe(h.op.issuer);
    const res = await go(started.jar, callback.href);
    expect(res.status).toBe(302);
    const back = new URL(res.headers.get('location')!);
    expect(back.searchParams.get('error')).toBeNull();
    expect(back.searchParams.get('code')).toBeTruthy();
  });

  it('refuses a repeated iss', async () => {
    const started = await startLogin();
    const calls = opTokenCalls;
    const res = await go(started.jar, `${callbackUrl({ code: 'abc', state: started.state, iss: h.op.issuer })}&iss=${encodeURIComponent(h.op.issuer)}`);
    expectAppError(res, 'access_denied');
    expect(opTokenCalls).toBe(calls);
  });

  it('refuses a real callback stripped of iss (the provider advertises authorization_response_iss_parameter_supported)', async () => {
    const meta = await (await fetch(`${h.op.issuer}/.well-known/openid-configuration`)).json();
    expect(meta.authorization_response_iss_parameter_supported).toBe(true);
    const started = await startLogin();
    const callback = new URL(await loginAtProvider(started.jar, started.authorize.href, `${h.url}/callback`));
    expect(callback.searchParams.get('iss')).toBe(h.op.issuer);
    callback.searchParams.delete('iss');
    const calls = opTokenCalls;
    const sessions = await countItems('session#');
    expectAppError(await go(started.jar, callback.href), 'access_denied');
    expect(opTokenCalls).toBe(calls);
    expect(await countItems('session#')).toBe(sessions);
  });

  it('refuses a provider error whose iss is wrong as access_denied', async () => {
    const started = await startLogin();
    const res = await go(started.jar, callbackUrl({ error: 'login_required', state: started.state, iss: 'https://evil.example' }));
    expectAppError(res, 'access_denied');
  });
});

describe('a hostile provider: every failure ends at the app with an error and no session', () => {
  async function hostileLogin(mode: TokenMode, appState = 'hostile-state'): Promise<{ res: Response; started: Started }> {
    evil.mode = mode;
    const started = await startLogin('evil', appState);
    expect(`${started.authorize.origin}${started.authorize.pathname}`).toBe(`${evil.issuer}/authorize`);
    const back = await go(started.jar, started.authorize.href);
    expect(back.status).toBe(302);
    const callback = back.headers.get('location')!;
    expect(callback.startsWith(`${h.url}/callback?`)).toBe(true);
    return { res: await go(started.jar, callback), started };
  }

  it('completes a login against the hostile server when it behaves (control)', async () => {
    const tokenRequests = evil.tokenRequests.length;
    const sessions = await countItems('session#');
    const { res, started } = await hostileLogin('ok');
    const code = expectCode(res, 'hostile-state');
    // The session count sees this session (so its "unchanged" elsewhere means something).
    expect(await countItems('session#')).toBe(sessions + 1);
    // client_secret_post, the broker's PKCE verifier, its callback URI.
    const sent = evil.tokenRequests[tokenRequests]!;
    expect(sent.get('grant_type')).toBe('authorization_code');
    expect(sent.get('client_id')).toBe('broker');
    expect(sent.get('client_secret')).toBe('x');
    expect(sent.get('redirect_uri')).toBe(`${h.url}/callback`);
    expect(sent.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
    const tokens = await redeem(h, { code, verifier: started.verifier, redirect: new URL(NATIVE_REDIRECT), jar: started.jar });
    expect(tokens.status).toBe(200);
    const body = await tokens.json();
    expect(body.refresh_token).not.toBe(evil.issuedRefreshTokens.at(-1));
  });

  it('accepts a second audience when azp is the client (control)', async () => {
    expectCode((await hostileLogin('extra-aud-with-azp')).res, 'hostile-state');
  });

  it.each([
    ['its one audience as a list (RFC 7519 §4.1.3), not as the login\'s string', 'ok', 'aud-list'],
    ['no kid while the JWKS holds two keys (a rollover): each candidate key is tried', 'no-kid', 'no-kid'],
  ] as [string, TokenMode, TokenMode][])('keeps the session when a refreshed ID token has %s', async (_what, atLogin, atRefresh) => {
    const { res, started } = await hostileLogin(atLogin);
    const code = expectCode(res, 'hostile-state');
    const tokens = await (await redeem(h, { code, verifier: started.verifier, redirect: new URL(NATIVE_REDIRECT), jar: started.jar })).json();
    evil.mode = atRefresh;
    h.clockOffset = 290;
    try {
      const refreshed = await refreshNative(h, tokens.refresh_token);
      expect(refreshed.status).toBe(200);
      expect(refreshed.headers.get('x-broker-token-source')).toBe('upstream');
      const again = await refreshNative(h, (await refreshed.json()).refresh_token);
      expect(again.status).toBe(200);
      expect(h.logs.some((l) => JSON.parse(l).event === 'refresh.id_token_unchecked')).toBe(false);
    } finally {
      h.clockOffset = 0;
    }
  });

  const failures: [TokenMode, string][] = [
    ['status-500', 'temporarily_unavailable'],
    ['reset', 'temporarily_unavailable'],
    ['huge', 'server_error'],
    ['huge-chunked', 'server_error'],
    ['html', 'server_error'],
    ['no-access-token', 'server_error'],
    ['token-type-mac', 'server_error'],
  ];
  it.each(failures)('token endpoint mode %s ends in error=%s', async (mode, error) => {
    const sessions = await countItems('session#');
    const tokenRequests = evil.tokenRequests.length;
    const { res } = await hostileLogin(mode);
    expectAppError(res, error, 'hostile-state');
    expect(evil.tokenRequests.length).toBe(tokenRequests + 1);
    expect(await countItems('session#')).toBe(sessions);
  });

  it('ends in error=temporarily_unavailable when the token endpoint never answers', { timeout: 20_000 }, async () => {
    const sessions = await countItems('session#');
    const { res } = await hostileLogin('hang');
    expectAppError(res, 'temporarily_unavailable', 'hostile-state');
    expect(await countItems('session#')).toBe(sessions);
  });

  it('keeps the new refresh token of a refresh answer refused for its form (502): a rotating provider has retired the one it was sent', async () => {
    const { res, started } = await hostileLogin('ok');
    const code = expectCode(res, 'hostile-state');
    const tokens = await (await redeem(h, { code, verifier: started.verifier, redirect: new URL(NATIVE_REDIRECT), jar: started.jar })).json();
    const loginRefreshToken = evil.issuedRefreshTokens.at(-1)!;
    evil.mode = 'dpop-with-refresh-token';
    h.clockOffset = 290;
    try {
      const refused = await refreshNative(h, tokens.refresh_token);
      expect(refused.status).toBe(502);
      expect((await refused.json()).error).toBe('server_error');
      const rotated = evil.issuedRefreshTokens.at(-1)!;
      expect(rotated).not.toBe(loginRefreshToken);
      expect(evil.tokenRequests.at(-1)!.get('refresh_token')).toBe(loginRefreshToken);
      // The app tries again with the handle it has: the provider is sent the token it rotated to.
      evil.mode = 'ok';
      const again = await refreshNative(h, tokens.refresh_token);
      expect(again.status).toBe(200);
      expect(evil.tokenRequests.at(-1)!.get('refresh_token')).toBe(rotated);
      expect(h.logs.join('\n')).not.toContain(rotated);
    } finally {
      h.clockOffset = 0;
    }
  });

  it('answers a refused login by the revocation budget when the provider\'s revocation endpoint hangs, not by its request timeout', { timeout: 20_000 }, async () => {
    evil.revocationHangs = true;
    try {
      const started = performance.now();
      const { res } = await hostileLogin('wrong-nonce');
      expectAppError(res, 'access_denied', 'hostile-state');
      // REVOCATION_BUDGET_MS is 5 s; an upstream request's own timeout is 8 s.
      expect(performance.now() - started).toBeLessThan(7_500);
      expect(evil.revocations.at(-1)!.get('token')).toBe(evil.issuedRefreshTokens.at(-1));
    } finally {
      evil.revocationHangs = false;
    }
  });

  const idTokenFailures: TokenMode[] = [
    'alg-none', 'hs256', 'wrong-nonce', 'no-nonce', 'wrong-aud', 'extra-aud-no-azp', 'wrong-iss', 'expired', 'no-iat', 'unknown-kid', 'forged', 'no-id-token',
    'sub-number', 'sub-empty', 'sub-too-long', 'sid-number',
  ];
  it.each(idTokenFailures)('ID token mode %s ends in error=access_denied, and the refresh token is revoked', async (mode) => {
    const sessions = await countItems('session#');
    const revocations = evil.revocations.length;
    const issued = evil.issuedRefreshTokens.length;
    const { res } = await hostileLogin(mode);
    expectAppError(res, 'access_denied', 'hostile-state');
    expect(await countItems('session#')).toBe(sessions);
    // The token endpoint did hand out a refresh token; the broker gave it back.
    expect(evil.issuedRefreshTokens.length).toBe(issued + 1);
    expect(evil.revocations.length).toBe(revocations + 1);
    const revocation = evil.revocations.at(-1)!;
    expect(revocation.get('token')).toBe(evil.issuedRefreshTokens.at(-1));
    expect(revocation.get('token_type_hint')).toBe('refresh_token');
    expect(revocation.get('client_id')).toBe('broker');
    // The upstream refresh token appears neither in the redirect nor in the broker's logs.
    const upstream = evil.issuedRefreshTokens.at(-1)!;
    expect(res.headers.get('location')).not.toContain(upstream);
    expect(h.logs.join('\n')).not.toContain(upstream);
  });
});

describe('POST /callback (response_mode=form_post) answers 303', () => {
  /** Walks the real provider's login and consent until it renders the auto-post form to `until`. */
  async function walkToFormPost(j: Jar, startUrl: string, until: string): Promise<{ action: string; fields: Record<string, string> }> {
    const unescape = (s: string) => s.replace(/&#39;/g, '\'').replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    let url = startUrl;
    for (let hop = 0; hop < 15; hop++) {
      const res = await go(j, url);
      if (res.status >= 300 && res.status < 400) {
        url = new URL(res.headers.get('location')!, url).href;
        continue;
      }
      const html = await res.text();
      const action = unescape(/<form[^>]*action="([^"]+)"/.exec(html)?.[1] ?? '');
      if (!action) throw new Error(`the provider answered ${res.status} at ${url}`);
      if (action.startsWith(until)) {
        const fields: Record<string, string> = {};
        for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)) fields[m[1]!] = unescape(m[2]!);
        return { action, fields };
      }
      const target = new URL(action, url).href;
      const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
      const fields: Record<string, string> = prompt === 'login' ? { prompt, login: 'alice', password: 'pw' } : { prompt: prompt ?? 'consent' };
      const posted = await go(j, target, form(fields));
      url = new URL(posted.headers.get('location')!, target).href;
    }
    throw new Error('too many hops at the provider');
  }

  it('completes a form_post login with 303; the transaction cookie is SameSite=None; Secure', async () => {
    const started = await startLogin('opfp', 'fp-state');
    expect(started.authorize.searchParams.get('response_mode')).toBe('form_post');
    const attrs = started.setCookie.split(';').map((s) => s.trim());
    expect(attrs).toContain('SameSite=None');
    expect(attrs).toContain('Secure');
    expect(attrs).toContain('HttpOnly');

    const { action, fields } = await walkToFormPost(started.jar, started.authorize.href, `${h.url}/callback`);
    expect(action).toBe(`${h.url}/callback`);
    expect(fields['state']).toBe(started.state);
    expect(fields['iss']).toBe(h.op.issuer);
    expect(fields['code']).toBeTruthy();

    // Posted from another browser: refused, and the login survives.
    await expect400(await go(jar(), action, form(fields)));
    // Not a form body: refused, and the login survives.
    await expect400(await go(started.jar, action, { method: 'POST', body: JSON.stringify(fields), headers: { 'content-type': 'application/json' } }));

    const res = await go(started.jar, action, form(fields));
    const code = expectCode(res, 'fp-state', 303);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    const tokens = await redeem(h, { code, verifier: started.verifier, redirect: new URL(NATIVE_REDIRECT), jar: started.jar });
    expect(tokens.status).toBe(200);
  });

  it('sends a provider error posted to /callback to the app with 303', async () => {
    const started = await startLogin('opfp', 'fp-err');
    const res = await go(started.jar, `${h.url}/callback`, form({ error: 'access_denied', state: started.state, iss: h.op.issuer }));
    expectAppError(res, 'access_denied', 'fp-err', 303);
  });

  it('refuses a POST callback with no state with 400', async () => {
    await expect400(await fetch(`${h.url}/callback`, { ...form({ code: 'abc' }), redirect: 'manual' }));
  });
});
