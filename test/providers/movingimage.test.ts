/**
 * movingimage VideoManager Pro (a Keycloak realm) through the broker, by configuration alone:
 * the provider block of `examples/providers/movingimage.json`, with only its URLs and secret
 * pointed at a local Keycloak-like peer (`test/support/peers/movingimage.ts`).
 */
import { readFileSync } from 'node:fs';
import { decodeJwt } from 'jose';
import { brokerSubject } from '../../lib/oidc/subject.js';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../../lib/config/parse.js';
import {
  browserHeaders, form, go, nativeLogin, NATIVE_REDIRECT, pkce, redeem, refreshNative, webLogin, WEB_ORIGIN, WEB_REDIRECT, type Harness,
} from '../support/harness.js';
import { providerSuite } from '../support/provider-suite.js';
import { startMovingimagePeer, type MovingimagePeer, type PeerRequest } from '../support/peers/movingimage.js';

const example = JSON.parse(readFileSync(new URL('../../examples/providers/movingimage.json', import.meta.url), 'utf8')) as Record<string, any>;
const CLIENT_ID = 'vmpro-token-broker';
const SECRET = 'kc-secret-8f1e2d3c4b5a';
const IDLE = 1800;

let peer: MovingimagePeer;
let h: Harness;

providerSuite({
  start: (now) => startMovingimagePeer({ clientId: CLIENT_ID, clientSecret: SECRET, sessionIdleSeconds: IDLE, now }),
  configure(doc, peer) {
    const provider = { ...example.providers.movingimage, issuer: peer.issuer, clientId: CLIENT_ID, clientSecret: { value: SECRET } };
    doc.providers.movingimage = provider;
    // Variants that each drop one quirk setting, to show that each one is needed.
    doc.providers['movingimage-basic'] = { ...provider, clientAuth: 'client_secret_basic' };
    doc.providers['movingimage-plain-refresh'] = { ...provider, refreshParams: {} };
    doc.providers['movingimage-no-pkce'] = { ...provider, pkce: false };
    doc.clients.app.providers = ['movingimage', 'movingimage-basic', 'movingimage-plain-refresh', 'movingimage-no-pkce'];
    doc.clients.web.providers = ['movingimage'];
    peer.redirectUris.push(`${doc.publicUrl}/callback`);
    peer.postLogoutRedirectUris.push('com.example.app:/loggedout', `${WEB_ORIGIN}/bye`);
  },
  ready(started, harness) {
    peer = started;
    h = harness;
  },
  reset(peer) {
    peer.hostile.changeSubOnRefresh = false;
  },
});

const refreshes = () => peer.tokenRequests.filter((r) => r.body.get('grant_type') === 'refresh_token');
const last = <T>(list: readonly T[]): T => list[list.length - 1]!;

/** A native login and code redemption; resolves the broker's token answer. */
async function loginAndRedeem(provider?: string): Promise<Record<string, any>> {
  const login = await nativeLogin(h, provider ? { extra: { provider } } : {});
  expect(login.code, login.redirect.href).not.toBe('');
  const res = await redeem(h, login);
  expect(res.status).toBe(200);
  return res.json();
}

/** Posts a form to the peer's token endpoint directly, as a misbehaving client would. */
async function peerToken(fields: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${peer.issuer}/protocol/openid-connect/token`, form(fields, headers));
  return { status: res.status, body: await res.json() };
}

/** Starts an authorization at the peer directly; resolves its redirect (or error page). */
async function peerAuthorize(overrides: Record<string, string | null> = {}): Promise<{ status: number; location: URL | undefined; verifier: string }> {
  const { verifier, challenge } = pkce();
  const params: Record<string, string | null> = {
    client_id: CLIENT_ID, redirect_uri: `${h.url}/callback`, response_type: 'code', response_mode: 'query', scope: 'openid',
    state: 'direct', nonce: 'n-1', code_challenge: challenge, code_challenge_method: 'S256', ...overrides,
  };
  const u = new URL(`${peer.issuer}/protocol/openid-connect/auth`);
  for (const [k, v] of Object.entries(params)) if (v !== null) u.searchParams.set(k, v);
  const res = await fetch(u, { redirect: 'manual' });
  const location = res.headers.get('location');
  return { status: res.status, location: location ? new URL(location) : undefined, verifier };
}

describe('movingimage: configuration', () => {
  it('the example configuration is valid for a Lambda deployment', () => {
    const config = parseConfig(example, { runtime: 'lambda' });
    const p = config.providers['movingimage']!;
    expect(p).toMatchObject({
      discovery: true, openid: true, responseMode: 'query', clientAuth: 'client_secret_post', tokenRequestFormat: 'form', pkce: true,
      scopes: ['openid'], refreshParams: { response_type: 'token', scope: 'openid' },
    });
    expect(p.issuer).toMatch(/^https:\/\/[^/]+\/auth\/realms\/platform$/);
    expect(Object.values(config.clients).map((c) => c.type).sort()).toEqual(['native', 'web']);
  });

  it('refuses response_mode=fragment: a code in a URL fragment never reaches a server', () => {
    const doc = structuredClone(example);
    doc.providers.movingimage.authorizationParams = { response_mode: 'fragment' };
    let error: unknown;
    try {
      parseConfig(doc, { runtime: 'lambda' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).issues.map((i) => i.path)).toContain('providers.movingimage.authorizationParams.response_mode');
  });
});

describe('movingimage: the peer is as strict as the Keycloak realm', () => {
  it('refuses any response_mode but query with an error redirect, and an unregistered redirect_uri with an error page', async () => {
    for (const mode of ['fragment', 'form_post']) {
      const { status, location } = await peerAuthorize({ response_mode: mode });
      expect(status).toBe(302);
      expect(location!.searchParams.get('error')).toBe('invalid_request');
      expect(location!.searchParams.get('state')).toBe('direct');
      expect(location!.searchParams.has('code')).toBe(false);
    }
    const foreign = await peerAuthorize({ redirect_uri: 'https://evil.example/cb' });
    expect(foreign.status).toBe(400);
    expect(foreign.location).toBeUndefined();
    const noPkce = await peerAuthorize({ code_challenge: null, code_challenge_method: null });
    expect(noPkce.location!.searchParams.get('error')).toBe('invalid_request');
  });

  it('takes client_secret_post only, and a code only with its code_verifier', async () => {
    const code = async () => {
      const { location, verifier } = await peerAuthorize();
      return { code: location!.searchParams.get('code')!, verifier };
    };
    const base = { grant_type: 'authorization_code', redirect_uri: `${h.url}/callback`, client_id: CLIENT_ID };
    const basic = `Basic ${Buffer.from(`${CLIENT_ID}:${SECRET}`).toString('base64')}`;
    const c1 = await code();
    const viaBasic = await peerToken({ ...base, code: c1.code, code_verifier: c1.verifier }, { authorization: basic });
    expect(viaBasic).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(viaBasic.body.error_description).toEqual(expect.any(String));
    const noSecret = await peerToken({ ...base, code: c1.code, code_verifier: c1.verifier });
    expect(noSecret).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    const wrongSecret = await peerToken({ ...base, code: c1.code, code_verifier: c1.verifier, client_secret: 'nope' });
    expect(wrongSecret).toMatchObject({ status: 401, body: { error: 'invalid_client' } });

    const c2 = await code();
    expect(await peerToken({ ...base, code: c2.code, client_secret: SECRET })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    const c3 = await code();
    expect(await peerToken({ ...base, code: c3.code, client_secret: SECRET, code_verifier: pkce().verifier })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    const c4 = await code();
    const ok = await peerToken({ ...base, code: c4.code, client_secret: SECRET, code_verifier: c4.verifier });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ token_type: 'bearer', expires_in: 300, refresh_expires_in: IDLE, 'not-before-policy': 0, scope: 'openid profile email' });
    expect(ok.body.session_state).toEqual(expect.any(String));
    // The refresh grant without movingimage's two extra fields is refused.
    const refresh = { grant_type: 'refresh_token', refresh_token: ok.body.refresh_token, client_id: CLIENT_ID, client_secret: SECRET };
    expect(await peerToken(refresh)).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect(await peerToken({ ...refresh, response_type: 'token' })).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    expect((await peerToken({ ...refresh, response_type: 'token', scope: 'openid' })).status).toBe(200);
    expect(await peerToken({ ...refresh, response_type: 'token', scope: 'openid' })).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });
});

describe('movingimage: native app through the broker', () => {
  it('runs login, code, token, refreshes upstream and logout, with every quirk on the wire', async () => {
    const login = await nativeLogin(h, { state: 'vm-native', extra: { scope: 'openid email', nonce: 'vm-app-nonce' } });
    expect(login.redirect.href.startsWith(NATIVE_REDIRECT)).toBe(true);
    expect(login.redirect.searchParams.get('state')).toBe('vm-native');
    expect(login.redirect.searchParams.get('iss')).toBe(h.url);

    // The authorization request, as the peer saw it.
    const authorize = last(peer.authorizeRequests);
    expect(Object.fromEntries(authorize)).toMatchObject({
      response_type: 'code', client_id: CLIENT_ID, redirect_uri: `${h.url}/callback`, scope: 'openid', response_mode: 'query', code_challenge_method: 'S256',
    });
    expect(authorize.get('nonce')).toBeTruthy();
    expect(authorize.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);

    // The code exchange: client_secret_post, form body, PKCE.
    const exchange = last(peer.tokenRequests);
    expect(exchange.status).toBe(200);
    expect(exchange.headers.authorization).toBeUndefined();
    expect(exchange.headers['content-type']).toMatch(/^application\/x-www-form-urlencoded/);
    expect(Object.fromEntries(exchange.body)).toMatchObject({
      grant_type: 'authorization_code', client_id: CLIENT_ID, client_secret: SECRET, redirect_uri: `${h.url}/callback`,
    });
    expect(exchange.body.get('code_verifier')).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
    expect(exchange.response).toMatchObject({ token_type: 'bearer', refresh_expires_in: IDLE, 'not-before-policy': 0 });

    const res = await redeem(h, login);
    expect(res.status).toBe(200);
    const tokens = await res.json();
    // Keycloak said "bearer"; the app gets RFC 6750's "Bearer".
    expect(tokens.token_type).toBe('Bearer');
    expect(tokens.expires_in).toBeGreaterThan(240);
    expect(tokens.expires_in).toBeLessThanOrEqual(300);
    expect(tokens.refresh_expires_in).toBeGreaterThan(IDLE - 30);
    expect(tokens.refresh_expires_in).toBeLessThanOrEqual(IDLE);
    // (v2) The app's scope and the broker's ID token; Keycloak's scope as provider_scope.
    expect(tokens.scope).toBe('openid email');
    expect(tokens.provider_scope).toBe('openid profile email');
    expect(JSON.stringify(tokens)).not.toContain(last(peer.issuedRefreshTokens));
    // Keycloak's ID token, as the broker received (and checked) it: it stays in the broker.
    const providerIdToken = exchange.response!['id_token'] as string;
    expect(JSON.stringify(tokens)).not.toContain(providerIdToken);
    const idToken = decodeJwt(providerIdToken);
    expect(idToken).toMatchObject({ iss: peer.issuer, aud: CLIENT_ID, azp: CLIENT_ID, nonce: authorize.get('nonce'), typ: 'ID' });
    for (const claim of ['sub', 'exp', 'iat', 'auth_time', 'session_state', 'sid']) expect(idToken[claim], claim).toBeDefined();
    const brokerIdToken = decodeJwt(tokens.id_token);
    expect(brokerIdToken).toMatchObject({ iss: h.url, aud: 'app', idp: 'movingimage', idp_sub: idToken.sub, sub: brokerSubject(peer.issuer, idToken.sub!), auth_time: idToken['auth_time'], nonce: 'vm-app-nonce' });

    // Still fresh: served from storage, no upstream call.
    const before = refreshes().length;
    const r0 = await refreshNative(h, tokens.refresh_token);
    expect(r0.status).toBe(200);
    expect(r0.headers.get('x-broker-token-source')).toBe('stored');
    const t0 = await r0.json();
    expect(refreshes()).toHaveLength(before);

    // At 1500 s (access token long expired, refresh token still alive): upstream, with the extra fields.
    h.clockOffset = 1500;
    const r1 = await refreshNative(h, t0.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('upstream');
    const t1 = await r1.json();
    expect(t1.token_type).toBe('Bearer');
    expect(t1.access_token).not.toBe(tokens.access_token);
    // Keycloak restarted its refresh lifetime, and so did the broker.
    expect(t1.refresh_expires_in).toBeGreaterThan(IDLE - 30);
    expect(t1.refresh_expires_in).toBeLessThanOrEqual(IDLE);
    // Keycloak's refreshed ID token (checked by the broker against the login's, OIDC Core §12.2)...
    const id1 = decodeJwt(last(peer.tokenRequests).response!['id_token'] as string);
    for (const claim of ['iss', 'sub', 'aud', 'azp', 'auth_time'] as const) expect(id1[claim], claim).toEqual(idToken[claim]);
    expect(id1.iat).toBeGreaterThan(idToken.iat!);
    // ...and the broker's, with the same subject and auth_time, a later iat and no nonce.
    const brokerId1 = decodeJwt(t1.id_token);
    for (const claim of ['iss', 'sub', 'aud', 'auth_time', 'sid'] as const) expect(brokerId1[claim], claim).toEqual(brokerIdToken[claim]);
    expect(brokerId1.iat).toBeGreaterThan(brokerIdToken.iat!);
    expect(brokerId1.nonce).toBeUndefined();

    // At 3000 s: 1500 s after the last refresh, so still alive, though 3000 s after login.
    h.clockOffset = 3000;
    const r2 = await refreshNative(h, t1.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();

    // Every refresh the peer saw carried movingimage's extra fields and client_secret_post.
    const seen = refreshes().slice(before);
    expect(seen).toHaveLength(2);
    for (const r of seen) {
      expect(r.status).toBe(200);
      expect(r.headers.authorization).toBeUndefined();
      expect(Object.fromEntries(r.body)).toMatchObject({ grant_type: 'refresh_token', response_type: 'token', scope: 'openid', client_id: CLIENT_ID, client_secret: SECRET });
    }
    // Rotation: each refresh presented the newest refresh token, and the peer refuses the old ones.
    const issuedAtLogin = exchange.response!['refresh_token'] as string;
    expect(seen[0]!.body.get('refresh_token')).toBe(issuedAtLogin);
    expect(seen[1]!.body.get('refresh_token')).toBe(seen[0]!.response!['refresh_token']);
    const replay = await peerToken({ grant_type: 'refresh_token', refresh_token: issuedAtLogin, client_id: CLIENT_ID, client_secret: SECRET, response_type: 'token', scope: 'openid' });
    expect(replay).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    // Logout: revocation with client_secret_post, and Keycloak's end-session URL.
    const newest = seen[1]!.response!['refresh_token'] as string;
    const out = await fetch(`${h.url}/logout`, form({ refresh_token: t2.refresh_token, client_id: 'app' }));
    expect(out.status).toBe(200);
    const revocation = last(peer.revocations);
    expect(revocation.status).toBe(200);
    expect(revocation.headers.authorization).toBeUndefined();
    expect(Object.fromEntries(revocation.body)).toMatchObject({ token: newest, token_type_hint: 'refresh_token', client_id: CLIENT_ID, client_secret: SECRET });
    const { end_session_url: endSessionUrl } = await out.json();
    const end = new URL(endSessionUrl);
    expect(`${end.origin}${end.pathname}`).toBe(`${peer.issuer}/protocol/openid-connect/logout`);
    expect(end.searchParams.get('client_id')).toBe(CLIENT_ID);
    expect(end.searchParams.get('post_logout_redirect_uri')).toBe('com.example.app:/loggedout');
    expect(decodeJwt(end.searchParams.get('id_token_hint')!).sub).toBe(idToken.sub);
    // The app opens it in the browser; Keycloak accepts it and returns to the app.
    const atPeer = await fetch(endSessionUrl, { redirect: 'manual' });
    expect(atPeer.status).toBe(302);
    expect(atPeer.headers.get('location')).toBe('com.example.app:/loggedout');

    const after = await refreshNative(h, t2.refresh_token);
    expect(after.status).toBe(400);
    expect((await after.json()).error).toBe('invalid_grant');
  });

  it('ends the session when refresh_expires_in passes without a refresh', async () => {
    const tokens = await loginAndRedeem();
    const before = refreshes().length;
    h.clockOffset = IDLE + 1;
    const res = await refreshNative(h, tokens.refresh_token);
    expect(res.status).toBe(400);
    expect((await res.json()).error).toBe('invalid_grant');
    // The broker knew the session was over: no refresh was even tried upstream...
    expect(refreshes()).toHaveLength(before);
    // ...and Keycloak would have refused it as well.
    const upstream = last(peer.issuedRefreshTokens);
    const direct = await peerToken({ grant_type: 'refresh_token', refresh_token: upstream, client_id: CLIENT_ID, client_secret: SECRET, response_type: 'token', scope: 'openid' });
    expect(direct).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
  });

  it('ends the session when a refreshed ID token names another user', async () => {
    const tokens = await loginAndRedeem();
    peer.hostile.changeSubOnRefresh = true;
    h.clockOffset = 400;
    const res = await refreshNative(h, tokens.refresh_token);
    expect(res.status).toBe(400);
    expect((await res.json()).error).toBe('invalid_grant');
    // The refresh token that came with the bad ID token was revoked at Keycloak.
    expect(last(refreshes()).status).toBe(200);
    expect(last(peer.revocations).body.get('token')).toBe(last(peer.issuedRefreshTokens));
    peer.hostile.changeSubOnRefresh = false;
    const again = await refreshNative(h, tokens.refresh_token);
    expect(again.status).toBe(400);
    expect((await again.json()).error).toBe('invalid_grant');
  });

  it('ends the session when Keycloak ended it (administrator sign-out): invalid_grant upstream', async () => {
    const tokens = await loginAndRedeem();
    peer.endAllSessions();
    h.clockOffset = 400;
    const res = await refreshNative(h, tokens.refresh_token);
    expect(res.status).toBe(400);
    expect((await res.json()).error).toBe('invalid_grant');
    expect(last(refreshes())).toMatchObject({ status: 400, error: 'invalid_grant' });
  });
});

describe('movingimage: each quirk setting is needed', () => {
  it('client_secret_basic instead of client_secret_post: Keycloak refuses the code exchange, the app gets access_denied', async () => {
    const n = peer.tokenRequests.length;
    const login = await nativeLogin(h, { state: 'basic', extra: { provider: 'movingimage-basic' } });
    expect(login.redirect.searchParams.get('error')).toBe('access_denied');
    expect(login.redirect.searchParams.get('state')).toBe('basic');
    expect(login.code).toBe('');
    const tried = peer.tokenRequests.slice(n);
    expect(tried.length).toBeGreaterThan(0);
    for (const r of tried) {
      expect(r.headers.authorization).toMatch(/^Basic /);
      expect(r).toMatchObject({ status: 401, error: 'invalid_client' });
    }
  });

  it('without PKCE: Keycloak refuses the authorization request', async () => {
    const login = await nativeLogin(h, { state: 'nopkce', extra: { provider: 'movingimage-no-pkce' } });
    expect(login.redirect.searchParams.get('error')).toBe('invalid_request');
    expect(login.redirect.searchParams.get('state')).toBe('nopkce');
    expect(last(peer.authorizeRequests).has('code_challenge')).toBe(false);
  });

  it('without refreshParams: Keycloak refuses the refresh (502 server_error) and the session survives', async () => {
    const tokens = await loginAndRedeem('movingimage-plain-refresh');
    h.clockOffset = 400;
    const res = await refreshNative(h, tokens.refresh_token);
    expect(res.status).toBe(502);
    expect((await res.json()).error).toBe('server_error');
    const refused = last(refreshes());
    expect(refused).toMatchObject({ status: 400, error: 'invalid_request' });
    expect(refused.body.has('response_type')).toBe(false);
    // The failed refresh did not use the handle up, nor end the session.
    h.clockOffset = 0;
    const stored = await refreshNative(h, tokens.refresh_token);
    expect(stored.status).toBe(200);
    expect(stored.headers.get('x-broker-token-source')).toBe('stored');
  });
});

describe('movingimage: web app through the broker', () => {
  it('runs login, /session, /refresh (upstream) and /logout', async () => {
    const { jar, redirect } = await webLogin(h, 'vm-web', { scope: 'openid profile' });
    expect(redirect.href.startsWith(WEB_REDIRECT)).toBe(true);
    expect(redirect.searchParams.get('state')).toBe('vm-web');
    expect(redirect.searchParams.get('iss')).toBe(h.url);

    const session = await go(jar, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } });
    expect(session.status).toBe(200);
    const info = await session.json();
    // (v2) The broker's claims, with the profile claims the web app asked for; no provider-only claims.
    expect(info).toMatchObject({ provider: 'movingimage', claims: { iss: h.url, aud: 'web', idp: 'movingimage', preferred_username: 'alice' } });
    expect(info.claims.azp).toBeUndefined();
    expect(info.sub).toBe(info.claims.sub);
    expect(info.sub).toBe(brokerSubject(peer.issuer, info.idp_sub));
    // Keycloak's refresh lifetime bounds the session.
    expect(info.expires_at).toBeLessThanOrEqual(Math.floor(Date.now() / 1000) + IDLE + 1);

    const r1 = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('stored');

    h.clockOffset = 1500;
    const before = refreshes().length;
    const r2 = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();
    expect(t2.token_type).toBe('Bearer');
    expect(refreshes().slice(before).map((r) => [r.body.get('response_type'), r.body.get('scope')])).toEqual([['token', 'openid']]);

    // Server-side, the session was restarted by that refresh: at 3000 s it is still alive.
    h.clockOffset = 3000;
    const r3 = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r3.status).toBe(200);
    expect(r3.headers.get('x-broker-token-source')).toBe('upstream');

    const out = await go(jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders });
    expect(out.status).toBe(200);
    const end = new URL((await out.json()).end_session_url);
    expect(end.searchParams.get('post_logout_redirect_uri')).toBe(`${WEB_ORIGIN}/bye`);
    expect(end.searchParams.get('client_id')).toBe(CLIENT_ID);
    expect(out.headers.getSetCookie().some((c) => /^broker-session=;/.test(c))).toBe(true);
    expect(last(peer.revocations)).toMatchObject({ status: 200 });
    const atPeer = await fetch(end, { redirect: 'manual' });
    expect(atPeer.headers.get('location')).toBe(`${WEB_ORIGIN}/bye`);

    const after = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(after.status).toBe(401);
  });

  // Regression: the cookie's Max-Age was fixed at login (here refresh_expires_in, 1800 s) and
  // never re-issued, so an active browser lost its session after 30 minutes. /refresh now sets it
  // again with the session's new end.
  it('keeps the browser cookie alive past the first refresh_expires_in when the app refreshes in time', async () => {
    const { jar } = await webLogin(h, 'vm-cookie');
    const loginCookie = jar.setCookies.filter((c) => c.startsWith('broker-session=')).at(-1)!;
    const maxAge = (c: string) => Number(/Max-Age=(\d+)/i.exec(c)?.[1] ?? NaN);
    // When a browser would drop the cookie, in broker-clock seconds since login.
    let cookieDiesAt = maxAge(loginCookie);
    expect(cookieDiesAt).toBeLessThanOrEqual(IDLE);

    h.clockOffset = 1500;
    const r = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r.status).toBe(200);
    const renewed = r.headers.getSetCookie().find((c) => c.startsWith('broker-session='));
    if (renewed) cookieDiesAt = 1500 + maxAge(renewed);

    // At 3000 s the session is alive at the broker (see the test above); the cookie must be too.
    expect(cookieDiesAt).toBeGreaterThan(3000);
  });
});
