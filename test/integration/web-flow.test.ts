import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldContext } from '../../lib/broker/session-tokens.js';
import { basicAuthorization } from '../../lib/oauth/client-auth.js';
import { decodeJwt } from 'jose';
import { brokerSubject } from '../../lib/oidc/subject.js';
import { getSession } from '../../lib/store/sessions.js';
import { browserHeaders, go, startHarness, webLogin, WEB_ORIGIN, WEB_REDIRECT, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({
    configure: (doc) => {
      doc.ttl = { minAccessTokenSeconds: 30 };
      doc.clients.web2 = { type: 'web', redirectUris: ['http://127.0.0.1:6001/'], allowedOrigins: ['http://127.0.0.1:6001'], providers: ['op'] };
    },
  });
});
afterAll(() => h.close());

describe('web app: cookie session, /refresh, /session, /logout', () => {
  it('refuses /refresh without the CSRF header or from a foreign origin (403), before any session lookup', async () => {
    const { jar } = await webLogin(h);
    const noCsrf = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: { origin: WEB_ORIGIN } });
    expect(noCsrf.status).toBe(403);
    expect((await noCsrf.json()).error).toBe('access_denied');
    const foreign = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: { ...browserHeaders, origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    const logout = await go(jar, `${h.url}/logout`, { method: 'POST', headers: { origin: WEB_ORIGIN } });
    expect(logout.status).toBe(403);
    // The session survived all of that.
    expect((await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders })).status).toBe(200);
  });

  it('answers 401 invalid_grant and clears the cookie when there is no session', async () => {
    const res = await fetch(`${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(res.status).toBe(401);
    expect((await res.json()).error).toBe('invalid_grant');
    expect(res.headers.getSetCookie().some((c) => /^broker-session=;/.test(c) && /Max-Age=0/.test(c))).toBe(true);
    const forged = await fetch(`${h.url}/session`, { headers: { cookie: `broker-session=${'A'.repeat(22)}.${'B'.repeat(43)}` } });
    expect(forged.status).toBe(401);
  });

  it('runs the whole flow', async () => {
    const { jar, redirect } = await webLogin(h, 'w1');
    expect(redirect.href.startsWith(WEB_REDIRECT)).toBe(true);
    expect(redirect.searchParams.get('state')).toBe('w1');
    expect(redirect.searchParams.get('iss')).toBe(h.url);
    expect(redirect.searchParams.has('code')).toBe(false);
    const cookie = jar.setCookies.find((c) => c.startsWith('broker-session='))!;
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).toMatch(/Path=\//);
    expect(cookie).not.toMatch(/Domain=/i);

    const session = await go(jar, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } });
    expect(session.status).toBe(200);
    expect(session.headers.get('access-control-allow-origin')).toBe(WEB_ORIGIN);
    expect(session.headers.get('access-control-allow-credentials')).toBe('true');
    const info = await session.json();
    // (v2) The broker's subject and its ID token's claims for this client, never the provider's token.
    const sub = brokerSubject(h.op.issuer, 'alice');
    expect(info).toMatchObject({ sub, provider: 'op', idp_sub: 'alice' });
    expect(info.claims).toMatchObject({ iss: h.url, aud: 'web', sub, idp: 'op', idp_sub: 'alice', sid: jar.get('broker-session')!.split('.')[0] });
    expect(info.claims.nonce).toBeUndefined();
    expect(info.expires_at).toBeGreaterThan(Date.now() / 1000);
    expect(JSON.stringify(info)).not.toMatch(/refresh_token|access_token/);
    expect(JSON.stringify(info)).not.toContain(h.op.issuer);

    const r1 = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r1.status).toBe(200);
    expect(r1.headers.get('cache-control')).toBe('no-store');
    const t1 = await r1.json();
    // A web login without a scope is an openid login: the broker's ID token, audience = the web client.
    expect(t1).toMatchObject({ token_type: 'Bearer', scope: 'openid', provider_scope: expect.stringContaining('openid') });
    expect(t1.access_token).toBeTruthy();
    expect(decodeJwt(t1.id_token)).toMatchObject({ iss: h.url, aud: 'web', sub, auth_time: info.claims.auth_time });
    expect(t1.expires_in).toBeGreaterThan(30);
    expect(t1.refresh_token).toBeUndefined();

    h.clockOffset = 280;
    const r2 = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();
    expect(t2.access_token).not.toBe(t1.access_token);
    // OIDC Core §12.2: the same iss, sub, aud and auth_time; a new iat.
    const id1 = decodeJwt(t1.id_token);
    const id2 = decodeJwt(t2.id_token);
    for (const claim of ['iss', 'sub', 'aud', 'auth_time', 'sid'] as const) expect(id2[claim], claim).toEqual(id1[claim]);
    expect(id2.iat).toBeGreaterThan(id1.iat!);
    h.clockOffset = 0;

    const out = await go(jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders });
    expect(out.status).toBe(200);
    const body = await out.json();
    expect(new URL(body.end_session_url).searchParams.get('post_logout_redirect_uri')).toBe(`${WEB_ORIGIN}/bye`);
    expect(out.headers.getSetCookie().some((c) => /^broker-session=;/.test(c))).toBe(true);

    const gone = await go(jar, `${h.url}/session`);
    expect(gone.status).toBe(401);
    // Logging out again is still a 200.
    expect((await go(jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders })).status).toBe(200);
  });

  it('answers CORS preflights only for allowed origins, with credentials on cookie endpoints', async () => {
    for (const path of ['/refresh', '/session', '/logout']) {
      const ok = await fetch(`${h.url}${path}`, { method: 'OPTIONS', headers: { origin: WEB_ORIGIN, 'access-control-request-method': 'POST', 'access-control-request-headers': 'x-broker-csrf' } });
      expect(ok.status).toBe(204);
      expect(ok.headers.get('access-control-allow-origin')).toBe(WEB_ORIGIN);
      expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
      expect(ok.headers.get('access-control-allow-headers')).toMatch(/x-broker-csrf/);
      const bad = await fetch(`${h.url}${path}`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
      expect(bad.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('ends the session when the provider refuses the refresh token (invalid_grant)', async () => {
    const { jar } = await webLogin(h);
    const sid = jar.get('broker-session')!.split('.')[0]!;
    // Revoke the upstream refresh token at the provider, behind the broker's back.
    const stored = await getSession(h.runtime.table, sid);
    const cipher = await h.runtime.cipher();
    const refreshToken = await cipher.decrypt(stored!.refreshToken!, fieldContext(sid, 'refreshToken'));
    const revoked = await fetch(`${h.op.issuer}/token/revocation`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basicAuthorization('broker', h.secret) },
      body: new URLSearchParams({ token: refreshToken, token_type_hint: 'refresh_token' }),
    });
    expect(revoked.status).toBe(200);

    h.clockOffset = 290;
    const res = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    h.clockOffset = 0;
    expect(res.status).toBe(401);
    expect((await res.json()).error).toBe('invalid_grant');
    expect(res.headers.getSetCookie().some((c) => /^broker-session=;/.test(c))).toBe(true);
    expect(await getSession(h.runtime.table, sid)).toBeUndefined();
  });

  it("refuses another web client's origin on this session's cookie (403), and exposes the token source header to the app", async () => {
    const { jar } = await webLogin(h);
    const foreign = { origin: 'http://127.0.0.1:6001', 'x-broker-csrf': '1' };
    const session = await go(jar, `${h.url}/session`, { headers: { origin: 'http://127.0.0.1:6001' } });
    expect(session.status).toBe(403);
    expect((await session.json()).error).toBe('access_denied');
    expect((await go(jar, `${h.url}/refresh`, { method: 'POST', headers: foreign })).status).toBe(403);
    const own = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(own.status).toBe(200);
    expect(own.headers.get('access-control-expose-headers')).toMatch(/x-broker-token-source/);
  });

  it("refuses a logout from another web client's origin (403, as /refresh) and keeps the cookie: the session is not left alive behind a cleared cookie", async () => {
    const { jar } = await webLogin(h);
    const foreign = { origin: 'http://127.0.0.1:6001', 'x-broker-csrf': '1' };
    const out = await go(jar, `${h.url}/logout`, { method: 'POST', headers: foreign });
    expect(out.status).toBe(403);
    expect((await out.json()).error).toBe('access_denied');
    expect(out.headers.getSetCookie().filter((c) => /Max-Age=0/.test(c))).toEqual([]);
    // Its own origin then ends it.
    expect((await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders })).status).toBe(200);
    expect((await go(jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders })).status).toBe(200);
    expect((await go(jar, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } })).status).toBe(401);
  });

  it('keeps the number of pending-login cookies bounded: abandoned ones are cleared', async () => {
    const stale = Array.from({ length: 8 }, (_, i) => `broker-txn-stale${String(i).padStart(11, '0')}=v${i}`).join('; ');
    const res = await fetch(`${h.url}/login?client_id=web`, { redirect: 'manual', headers: { cookie: stale } });
    expect(res.status).toBe(302);
    const set = res.headers.getSetCookie();
    expect(set.filter((c) => /^broker-txn-stale\d+=;/.test(c) && /Max-Age=0/.test(c))).toHaveLength(8);
    expect(set.filter((c) => /^broker-txn-/.test(c) && !/Max-Age=0/.test(c))).toHaveLength(1);
  });

  it('counts and clears only names it makes: odd ones a sibling subdomain planted neither crash a login nor clear real ones', async () => {
    const odd = ['broker-txn-a b', 'broker-txn-x(1', 'broker-txn-', 'broker-txn-short', '__Host-broker-txn-0123456789abcdef', 'broker-txn-0123456789abcdefg', 'broker-txn-01234567/9abcdef', 'broker-txn-[]']
      .map((name, i) => `${name}=v${i}`).join('; ');
    const real = `broker-txn-real${'0'.repeat(12)}=r`;
    const res = await fetch(`${h.url}/login?client_id=web`, { redirect: 'manual', headers: { cookie: `${odd}; ${real}` } });
    expect(res.status).toBe(302);
    // Eight odd names and one real pending login: under the bound, nothing is cleared.
    expect(res.headers.getSetCookie().filter((c) => /Max-Age=0/.test(c))).toEqual([]);
  });
});

