import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerSubject } from '../../lib/oidc/subject.js';
import { form, go, jar, loginAtProvider, nativeLogin, NATIVE_REDIRECT, pkce, redeem, refreshNative, startHarness, webLogin, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configure: (doc) => (doc.ttl = { minAccessTokenSeconds: 30 }) });
});
afterAll(() => h.close());

describe('native app: login, code, token, refresh, logout', () => {
  it('runs the whole flow with nothing but HTTP calls', async () => {
    const login = await nativeLogin(h, { state: 'xyz', extra: { scope: 'openid profile offline_access', nonce: 'n-0S6_WzA2Mj' } });
    expect(login.redirect.href.startsWith(NATIVE_REDIRECT)).toBe(true);
    expect(login.redirect.searchParams.get('state')).toBe('xyz');
    expect(login.redirect.searchParams.get('iss')).toBe(h.url);
    expect(login.code).toMatch(/^[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}$/);

    const res = await redeem(h, login);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(res.headers.get('pragma')).toBe('no-cache');
    const tokens = await res.json();
    // (v2) `scope` is what the broker granted the app; the provider's goes as `provider_scope`.
    expect(tokens).toMatchObject({ token_type: 'Bearer', scope: 'openid profile offline_access', provider_scope: expect.stringContaining('openid') });
    expect(tokens.access_token).toBeTruthy();
    // (v2) The broker's own ID token, with the app's nonce, never the provider's.
    const idToken = decodeJwt(tokens.id_token);
    expect(idToken).toMatchObject({ iss: h.url, aud: 'app', sub: brokerSubject(h.op.issuer, 'alice'), idp: 'op', idp_sub: 'alice', nonce: 'n-0S6_WzA2Mj', name: 'Alice Example' });
    expect(tokens.expires_in).toBeGreaterThan(200);
    expect(tokens.refresh_expires_in).toBeGreaterThan(0);
    expect(tokens.refresh_token).toMatch(/^[A-Za-z0-9_-]{22}\./);

    // Served from the stored token: a new handle, the same access token.
    const r1 = await refreshNative(h, tokens.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('stored');
    const t1 = await r1.json();
    expect(t1.refresh_token).not.toBe(tokens.refresh_token);
    expect(t1.access_token).toBe(tokens.access_token);
    // A refresh's ID token has no nonce (OIDC Core §12.2), and the same subject and auth_time.
    const id1 = decodeJwt(t1.id_token);
    expect(id1.nonce).toBeUndefined();
    expect(id1).toMatchObject({ sub: idToken.sub, auth_time: idToken.auth_time, sid: idToken.sid, aud: 'app' });

    // Near expiry: upstream refresh, a new access token and handle.
    h.clockOffset = 290;
    const r2 = await refreshNative(h, t1.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();
    expect(t2.access_token).not.toBe(t1.access_token);
    expect(t2.refresh_token).not.toBe(t1.refresh_token);
    expect(decodeJwt(t2.id_token)).toMatchObject({ iss: h.url, sub: idToken.sub, auth_time: idToken.auth_time });
    h.clockOffset = 0;

    const out = await fetch(`${h.url}/logout`, form({ refresh_token: t2.refresh_token, client_id: 'app' }));
    expect(out.status).toBe(200);
    const body = await out.json();
    const endSession = new URL(body.end_session_url);
    expect(endSession.searchParams.get('client_id')).toBe('broker');
    // The provider's own ID token travels only here, to the provider's own end-session endpoint.
    expect(decodeJwt(endSession.searchParams.get('id_token_hint')!).iss).toBe(h.op.issuer);
    expect(endSession.searchParams.get('post_logout_redirect_uri')).toBe('com.example.app:/loggedout');

    const after = await refreshNative(h, t2.refresh_token);
    expect(after.status).toBe(400);
    expect((await after.json()).error).toBe('invalid_grant');
  });

  it('redeems a code for a loopback redirect URI on any port (RFC 8252 §7.3)', async () => {
    const login = await nativeLogin(h, { redirectUri: 'http://127.0.0.1:49152/cb' });
    expect(login.redirect.origin).toBe('http://127.0.0.1:49152');
    const res = await redeem(h, login, { redirect_uri: 'http://127.0.0.1:49152/cb' });
    expect(res.status).toBe(200);
  });

  it('accepts the RFC 7009 revocation form at /logout', async () => {
    const tokens = await (await redeem(h, await nativeLogin(h))).json();
    const out = await fetch(`${h.url}/logout`, form({ token: tokens.refresh_token, token_type_hint: 'refresh_token', client_id: 'app' }));
    expect(out.status).toBe(200);
    expect((await refreshNative(h, tokens.refresh_token)).status).toBe(400);
  });

  it('starts a login from a POST form as from a GET query (OIDC Core §3.1.2.1), answering 303', async () => {
    const j = jar();
    const { verifier, challenge } = pkce();
    const start = await go(j, `${h.url}/login`, form({ client_id: 'app', redirect_uri: NATIVE_REDIRECT, state: 'posted', code_challenge: challenge, code_challenge_method: 'S256' }));
    expect(start.status).toBe(303);
    const cb = await go(j, await loginAtProvider(j, start.headers.get('location')!, `${h.url}/callback`));
    const back = new URL(cb.headers.get('location')!);
    expect(back.searchParams.get('state')).toBe('posted');
    const tokens = await redeem(h, { code: back.searchParams.get('code')!, verifier, redirect: back, jar: j });
    expect(tokens.status).toBe(200);
    // A refusal from a POST is a 303 back to the app too.
    const refused = await go(jar(), `${h.url}/login`, form({ client_id: 'app', redirect_uri: NATIVE_REDIRECT, state: 'p2', code_challenge: challenge, code_challenge_method: 'plain' }));
    expect(refused.status).toBe(303);
    expect(new URL(refused.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');
  });

  it('refuses an RFC 7009 revocation request without a token as invalid_request (§2.1: token is required)', async () => {
    for (const fields of [{ client_id: 'app' }, { client_id: 'app', token: '' }, { client_id: 'app', token_type_hint: 'refresh_token' }] as Record<string, string>[]) {
      const res = await fetch(`${h.url}/logout`, form(fields));
      expect(res.status, JSON.stringify(fields)).toBe(400);
      expect((await res.json()).error).toBe('invalid_request');
    }
    // The same form from a browser holding a web session is a web logout: without X-Broker-Csrf, 403.
    const web = await webLogin(h);
    const res = await go(web.jar, `${h.url}/logout`, form({ client_id: 'web' }));
    expect(res.status).toBe(403);
  });

  it('gives no ID token and no scope to a login that asked for no scope', async () => {
    const tokens = await (await redeem(h, await nativeLogin(h))).json();
    expect(tokens.id_token).toBeUndefined();
    expect(tokens.scope).toBeUndefined();
    expect(tokens.provider_scope).toContain('openid');
  });

  it('publishes RFC 8414 metadata for AppAuth-style libraries', async () => {
    const meta = await (await fetch(`${h.url}/.well-known/oauth-authorization-server`)).json();
    expect(meta).toEqual(expect.objectContaining({
      issuer: h.url,
      authorization_endpoint: `${h.url}/login`,
      token_endpoint: `${h.url}/token`,
      revocation_endpoint: `${h.url}/logout`,
      response_types_supported: ['code'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none'],
      authorization_response_iss_parameter_supported: true,
    }));
    expect(meta.grant_types_supported).toEqual(expect.arrayContaining(['authorization_code', 'refresh_token']));
  });
});
