/**
 * `GET /end-session` (OpenID Connect RP-Initiated Logout 1.0, CONTRACT.md v2): every refusal is a
 * `400` JSON answer with no redirect that leaves the session alive; a good request ends the
 * session as `POST /logout` does and sends the browser to the provider's end-session endpoint
 * (with the provider's own ID token as the hint, the only place it ever goes) or back to the app.
 */
import { generateKeyPair, SignJWT, decodeJwt, decodeProtectedHeader, UnsecuredJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserHeaders, form, go, nativeLogin, NATIVE_LOGGED_OUT, redeem, refreshNative, startHarness, webLogin, WEB_ORIGIN, type Harness } from '../support/harness.js';

let h: Harness;
let revocations = 0;
beforeAll(async () => {
  h = await startHarness({
    configure: (doc) => {
      const op = doc.providers.op;
      // The same provider without discovery and without an end-session endpoint.
      doc.providers.plain = {
        ...op, issuer: op.issuer, authorizationEndpoint: `${op.issuer}/auth`, tokenEndpoint: `${op.issuer}/token`,
        jwksUri: `${op.issuer}/jwks`, revocationEndpoint: `${op.issuer}/token/revocation`,
      };
      doc.clients.app.providers = ['op', 'plain'];
    },
  });
  h.op.server.prependListener('request', (req) => {
    if (req.method === 'POST' && req.url?.startsWith('/token/revocation')) revocations++;
  });
});
afterAll(() => h.close());

/** A native login asking for openid: its handle and the broker's ID token. */
async function session(provider = 'op') {
  const tokens = await (await redeem(h, await nativeLogin(h, { extra: { scope: 'openid', provider } }))).json();
  return { handle: tokens.refresh_token as string, idToken: tokens.id_token as string };
}

const endSession = (params: Record<string, string>, init: RequestInit = {}) =>
  fetch(`${h.url}/end-session?${new URLSearchParams(params)}`, { redirect: 'manual', ...init });

/** A refusal: 400 invalid_request JSON, no Location, and the session still refreshes. */
async function refused(res: Response, handle: string, description: RegExp): Promise<string> {
  expect(res.status).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  const body = await res.json();
  expect(body.error).toBe('invalid_request');
  // RFC 6749 §5.2: no `"` in an error_description; the broker quotes names with '.
  expect(body.error_description).not.toMatch(/["\\]/);
  expect(body.error_description).toMatch(new RegExp(description.source.replace(/"/g, "'"), description.flags));
  const alive = await refreshNative(h, handle);
  expect(alive.status).toBe(200);
  return (await alive.json()).refresh_token;
}

describe('GET /end-session: refusals (400, no redirect, the session alive)', () => {
  it('without id_token_hint, or with a repeated parameter', async () => {
    const s = await session();
    const handle = await refused(await endSession({ client_id: 'app', post_logout_redirect_uri: NATIVE_LOGGED_OUT }), s.handle, /id_token_hint/);
    const repeated = await fetch(`${h.url}/end-session?id_token_hint=${s.idToken}&state=a&state=b`, { redirect: 'manual' });
    await refused(repeated, handle, /"state" must not be repeated/);
  });

  it('a hint with a bad signature: tampered claims, a foreign key under the broker\'s kid, alg none', async () => {
    const s = await session();
    const [header, payload, signature] = s.idToken.split('.') as [string, string, string];
    // Another session's sid in an otherwise intact token.
    const claims = { ...decodeJwt(s.idToken), sid: 'A'.repeat(22) };
    const tampered = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${signature}`;
    let handle = await refused(await endSession({ id_token_hint: tampered }), s.handle, /invalid signature/);
    const flipped = `${header}.${payload}.${signature.slice(0, -2)}${signature.endsWith('A') ? 'BB' : 'AA'}`;
    handle = await refused(await endSession({ id_token_hint: flipped }), handle, /invalid signature/);
    const { privateKey } = await generateKeyPair('RS256');
    const forged = await new SignJWT(decodeJwt(s.idToken)).setProtectedHeader(decodeProtectedHeader(s.idToken) as { alg: string }).sign(privateKey);
    handle = await refused(await endSession({ id_token_hint: forged }), handle, /invalid signature/);
    const none = new UnsecuredJWT(decodeJwt(s.idToken)).encode();
    await refused(await endSession({ id_token_hint: none }), handle, /is not a signed JWT|algorithm/);
  });

  it('another client\'s hint, and an unknown client_id', async () => {
    const s = await session();
    const handle = await refused(await endSession({ id_token_hint: s.idToken, client_id: 'other' }), s.handle, /another client/);
    await refused(await endSession({ id_token_hint: s.idToken, client_id: 'nope' }), handle, /unknown "client_id"/);
  });

  it('a post_logout_redirect_uri that is not, character for character, the client\'s', async () => {
    const s = await session();
    const handle = await refused(await endSession({ id_token_hint: s.idToken, client_id: 'app', post_logout_redirect_uri: `${NATIVE_LOGGED_OUT}/` }), s.handle, /post_logout_redirect_uri/);
    // Without client_id the client comes from the verified hint, and the same rule applies.
    await refused(await endSession({ id_token_hint: s.idToken, post_logout_redirect_uri: 'https://evil.example/' }), handle, /post_logout_redirect_uri/);
    // A client with no registered URI accepts none.
    const other = await (await redeem(h, await nativeLogin(h, { clientId: 'other', redirectUri: 'com.example.other:/cb', extra: { scope: 'openid' } }), { client_id: 'other', redirect_uri: 'com.example.other:/cb' })).json();
    const res = await endSession({ id_token_hint: other.id_token, post_logout_redirect_uri: NATIVE_LOGGED_OUT });
    expect(res.status).toBe(400);
    expect((await refreshNative(h, other.refresh_token, 'other')).status).toBe(200);
  });
});

describe('GET /end-session: logging out', () => {
  it('ends the session like POST /logout and redirects to the provider with its own ID token, the app\'s URI and state', async () => {
    const s = await session();
    const before = revocations;
    const res = await endSession({ id_token_hint: s.idToken, client_id: 'app', post_logout_redirect_uri: NATIVE_LOGGED_OUT, state: 'bye-1' });
    expect(res.status).toBe(302);
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('cache-control')).toBe('no-store');
    const location = new URL(res.headers.get('location')!);
    expect(`${location.origin}${location.pathname}`).toBe(`${h.op.issuer}/session/end`);
    expect(Object.fromEntries(location.searchParams)).toMatchObject({ client_id: 'broker', post_logout_redirect_uri: NATIVE_LOGGED_OUT, state: 'bye-1' });
    expect(decodeJwt(location.searchParams.get('id_token_hint')!)).toMatchObject({ iss: h.op.issuer, aud: 'broker', sub: 'alice' });
    // Ended: the handle is dead, and the upstream refresh token was revoked.
    expect((await refreshNative(h, s.handle)).status).toBe(400);
    expect(revocations).toBe(before + 1);
    // No cookie of this browser named that session: none is cleared.
    expect(res.headers.getSetCookie()).toEqual([]);
  });

  it('takes the same parameters as a POST form (RP-Initiated Logout 1.0 §2), answering 303', async () => {
    const s = await session();
    const res = await fetch(`${h.url}/end-session`, { ...form({ id_token_hint: s.idToken, client_id: 'app', post_logout_redirect_uri: NATIVE_LOGGED_OUT, state: 'bye-post' }), redirect: 'manual' });
    expect(res.status).toBe(303);
    expect(new URL(res.headers.get('location')!).searchParams.get('state')).toBe('bye-post');
    expect((await refreshNative(h, s.handle)).status).toBe(400);
  });

  it('accepts an expired hint (logouts come later than the token\'s few minutes)', async () => {
    const s = await session();
    h.clockOffset = 3 * 3600;
    const res = await endSession({ id_token_hint: s.idToken, post_logout_redirect_uri: NATIVE_LOGGED_OUT, state: 'late' });
    h.clockOffset = 0;
    expect(res.status).toBe(302);
    expect((await refreshNative(h, s.handle)).status).toBe(400);
  });

  it('for a session that has already ended, still sends the browser through the provider (without its hint)', async () => {
    const s = await session();
    expect((await endSession({ id_token_hint: s.idToken })).status).toBe(302);
    const again = await endSession({ id_token_hint: s.idToken, post_logout_redirect_uri: NATIVE_LOGGED_OUT, state: 'again' });
    expect(again.status).toBe(302);
    const location = new URL(again.headers.get('location')!);
    expect(location.searchParams.has('id_token_hint')).toBe(false);
    expect(location.searchParams.get('state')).toBe('again');
  });

  it('goes straight back to the app when the provider has no end-session endpoint (state and iss)', async () => {
    const s = await session('plain');
    const res = await endSession({ id_token_hint: s.idToken, post_logout_redirect_uri: NATIVE_LOGGED_OUT, state: 'direct' });
    expect(res.status).toBe(302);
    const location = new URL(res.headers.get('location')!);
    expect(`${location.protocol}${location.pathname}`).toBe(NATIVE_LOGGED_OUT);
    expect(Object.fromEntries(location.searchParams)).toEqual({ state: 'direct', iss: h.url });
    expect((await refreshNative(h, s.handle)).status).toBe(400);
    // Without a URI to return to, a page says so.
    const t = await session('plain');
    const page = await endSession({ id_token_hint: t.idToken });
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toBe("default-src 'none'");
  });

  it('web: ends the browser\'s own session and clears its cookie', async () => {
    const { jar } = await webLogin(h);
    const idToken = (await (await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders })).json()).id_token;
    const res = await go(jar, `${h.url}/end-session?${new URLSearchParams({ id_token_hint: idToken, post_logout_redirect_uri: `${WEB_ORIGIN}/bye`, state: 'w' })}`);
    expect(res.status).toBe(302);
    expect(res.headers.getSetCookie().some((c) => /^broker-session=;/.test(c) && /Max-Age=0/.test(c))).toBe(true);
    expect((await go(jar, `${h.url}/session`)).status).toBe(401);
  });
});
