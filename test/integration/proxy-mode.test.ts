/**
 * `tokenDelivery: "proxy"` (CONTRACT.md, "API proxy for web apps"): a web client in proxy mode
 * does everything through the broker (log in, see who is logged in, keep the session alive, call
 * its API, log out) and no answer of any endpoint to it holds a token: not the provider's access,
 * refresh or ID token, and no broker ID token either.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldContext } from '../../lib/broker/session-tokens.js';
import { getSession } from '../../lib/store/sessions.js';
import { startEchoApi, type EchoApi } from '../support/echo-api.js';
import { browserHeaders, form, go, jar, loginAtProvider, startHarness, webLogin, WEB_ORIGIN, type Harness, type Jar } from '../support/harness.js';

let h: Harness;
let api: EchoApi;
beforeAll(async () => {
  api = await startEchoApi();
  h = await startHarness({
    op: { jwtAccessTokens: true },
    configure: (doc) => {
      doc.apis = { echo: { url: `${api.url}/v1`, provider: 'op' } };
      doc.clients.web.apis = ['echo'];
      doc.clients.web.tokenDelivery = 'proxy';
      doc.clients.tokens = { type: 'web', redirectUris: ['http://127.0.0.1:6001/'], allowedOrigins: ['http://127.0.0.1:6001'], providers: ['op'], apis: ['echo'] };
    },
  });
  api.trust(h.op.issuer);
});
afterAll(async () => {
  await h.close();
  await api.close();
});

/** Everything an answer shows a page or its URL bar: status line, every header (cookies and Location included), body. */
async function shown(res: Response): Promise<string> {
  const headers: string[] = [];
  res.headers.forEach((v, k) => headers.push(`${k}: ${v}`));
  return [String(res.status), ...headers, ...res.headers.getSetCookie(), await res.text()].join('\n');
}

/** A JWT (three base64url parts, a JSON header): the broker's ID tokens and the provider's tokens here. */
const JWT = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*/;

async function storedTokens(j: Jar): Promise<string[]> {
  const sid = j.get('broker-session')!.split('.')[0]!;
  const s = (await getSession(h.runtime.table, sid))!;
  const cipher = await h.runtime.cipher();
  return Promise.all([
    cipher.decrypt(s.accessToken, fieldContext(sid, 'accessToken')),
    cipher.decrypt(s.refreshToken!, fieldContext(sid, 'refreshToken')),
    cipher.decrypt(s.idToken!, fieldContext(sid, 'idToken')),
  ]);
}

describe('a web client in proxy mode', () => {
  it('logs in, sees the session, keeps it alive, calls its API and logs out, and no answer holds a token', async () => {
    const answers: string[] = [];
    const tokens: string[] = [];
    const j = jar();
    const start = await go(j, `${h.url}/login?${new URLSearchParams({ client_id: 'web', state: 's1', scope: 'openid profile' })}`);
    expect(start.status).toBe(302);
    answers.push(await shown(start.clone()));
    const callback = await loginAtProvider(j, start.headers.get('location')!, `${h.url}/callback`);
    const cb = await go(j, callback);
    expect(cb.status).toBe(302);
    answers.push(await shown(cb));
    tokens.push(...await storedTokens(j));

    const session = await go(j, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } });
    expect(session.status).toBe(200);
    expect((await session.clone().json()).claims).toMatchObject({ aud: 'web', idp_sub: 'alice' });
    answers.push(await shown(session));

    const refresh = await go(j, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(refresh.status).toBe(200);
    const body = await refresh.clone().json();
    expect(Object.keys(body)).toEqual(['expires_in']);
    expect(body.expires_in).toBeGreaterThan(60);
    answers.push(await shown(refresh));

    // An upstream refresh, through /refresh: still only the lifetime.
    h.clockOffset = 290;
    const upstream = await go(j, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(upstream.headers.get('x-broker-token-source')).toBe('upstream');
    expect(Object.keys(await upstream.clone().json())).toEqual(['expires_in']);
    answers.push(await shown(upstream));
    h.clockOffset = 0;
    tokens.push(...await storedTokens(j));

    const called = await go(j, `${h.url}/api/echo/me`, { headers: browserHeaders });
    expect(called.status).toBe(200);
    expect((await called.clone().json()).token.sub).toBe('alice');
    answers.push(await shown(called));

    // The native endpoint refuses a web client; /end-session has no hint to take.
    const token = await fetch(`${h.url}/token`, form({ grant_type: 'refresh_token', refresh_token: j.get('broker-session')!, client_id: 'web' }));
    expect(token.status).toBe(400);
    answers.push(await shown(token));
    const endSession = await fetch(`${h.url}/end-session?client_id=web`, { redirect: 'manual' });
    expect(endSession.status).toBe(400);
    answers.push(await shown(endSession));
    for (const path of ['/.well-known/openid-configuration', '/jwks']) answers.push(await shown(await fetch(`${h.url}${path}`)));

    const logout = await go(j, `${h.url}/logout`, { method: 'POST', headers: browserHeaders });
    expect(logout.status).toBe(200);
    const { end_session_url: endSessionUrl } = await logout.clone().json();
    const url = new URL(endSessionUrl);
    expect(url.searchParams.get('client_id')).toBe('broker');
    expect(url.searchParams.has('id_token_hint')).toBe(false);
    answers.push(await shown(logout));

    expect(tokens).toHaveLength(6);
    for (const text of answers) {
      expect(text).not.toMatch(JWT);
      for (const t of tokens) expect(text).not.toContain(t);
    }
  });

  it('(contrast) a client in tokens mode does get the tokens the check above looks for', async () => {
    const j = (await webLogin(h, 's2', { client_id: 'tokens' })).jar;
    const refresh = await go(j, `${h.url}/refresh`, { method: 'POST', headers: { origin: 'http://127.0.0.1:6001', 'x-broker-csrf': '1' } });
    expect(refresh.status).toBe(200);
    const text = await shown(refresh);
    expect(text).toMatch(JWT);
    expect(text).toContain((await storedTokens(j))[0]);
    // And it may use the proxy as well.
    expect((await go(j, `${h.url}/api/echo/me`, { headers: { origin: 'http://127.0.0.1:6001', 'x-broker-csrf': '1' } })).status).toBe(200);
  });
});
