/**
 * A Proto-style OAuth 2.0 site (no OpenID Connect, JSON token requests, no `token_type`) through
 * the broker, by configuration alone: the provider block of `examples/providers/proto.json`,
 * with only its URLs and secret pointed at a local peer (`test/support/peers/proto.ts`).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/parse.js';
import {
  browserHeaders, form, go, nativeLogin, NATIVE_REDIRECT, redeem, refreshNative, webLogin, WEB_ORIGIN, WEB_REDIRECT, type Harness,
} from '../support/harness.js';
import { providerSuite } from '../support/provider-suite.js';
import { startProtoPeer, type JsonRequest, type ProtoPeer } from '../support/peers/proto.js';
import { countItems as countTableItems } from '../support/table.js';

const example = JSON.parse(readFileSync(new URL('../../examples/providers/proto.json', import.meta.url), 'utf8')) as Record<string, any>;
const CLIENT_ID = 'proto-token-broker';
const SECRET = 'proto-secret-3b9d7f';
const AT_SECONDS = 3600;

let peer: ProtoPeer;
let h: Harness;

providerSuite({
  start: (now) => startProtoPeer({ clientId: CLIENT_ID, clientSecret: SECRET, accessTokenSeconds: AT_SECONDS, now }),
  configure(doc, peer) {
    const provider = {
      ...example.providers.proto,
      authorizationEndpoint: peer.authorizationEndpoint,
      tokenEndpoint: peer.tokenEndpoint,
      revocationEndpoint: peer.revocationEndpoint,
      clientId: CLIENT_ID,
      clientSecret: { value: SECRET },
    };
    doc.providers.proto = provider;
    // Variants that each drop one quirk setting, to show that each one is needed.
    const { defaultTokenType: _, ...noDefaultType } = provider;
    doc.providers['proto-no-default-type'] = noDefaultType;
    doc.providers['proto-form'] = { ...provider, tokenRequestFormat: 'form' };
    doc.providers['proto-wrong-secret'] = { ...provider, clientSecret: { value: 'not-the-secret' } };
    doc.providers['proto-no-pkce'] = { ...provider, pkce: false };
    doc.clients.app.providers = ['proto', 'proto-no-default-type', 'proto-form', 'proto-wrong-secret', 'proto-no-pkce'];
    doc.clients.web.providers = ['proto'];
    peer.redirectUris.push(`${doc.publicUrl}/callback`);
  },
  ready(started, harness) {
    peer = started;
    h = harness;
  },
  reset(peer) {
    peer.rotateRefreshTokens = true;
  },
});

const last = <T>(list: readonly T[]): T => list[list.length - 1]!;
const grants = (type: string) => peer.tokenRequests.filter((r) => r.json?.['grant_type'] === type);

/** Items in the broker's table whose key starts with `prefix`. */
const countItems = (prefix: string) => countTableItems(h.runtime.table, prefix);

/** The JSON body must carry the client credentials and the grant's fields, nothing form-encoded. */
function expectJsonGrant(r: JsonRequest, fields: Record<string, unknown>): void {
  expect(r.contentType).toMatch(/^application\/json\b/);
  expect(r.json, r.text).toBeDefined();
  expect(r.json).toMatchObject({ ...fields, client_id: CLIENT_ID, client_secret: SECRET });
  expect(r.headers.authorization).toBeUndefined();
}

async function peerPost(path: string, body: string, contentType: string): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${peer.baseUrl}${path}`, { method: 'POST', body, headers: { 'content-type': contentType } });
  return { status: res.status, body: await res.json() };
}

describe('proto: configuration', () => {
  it('the example configuration is valid for a Lambda deployment', () => {
    const config = parseConfig(example, { runtime: 'lambda' });
    expect(config.providers['proto']).toMatchObject({
      discovery: false, openid: false, responseMode: 'query', clientAuth: 'client_secret_post', tokenRequestFormat: 'json',
      defaultTokenType: 'Bearer', scopes: ['read', 'write'], pkce: true,
    });
    expect(Object.values(config.clients).map((c) => c.type).sort()).toEqual(['native', 'web']);
  });
});

describe('proto: the peer is as strict as the site', () => {
  it('takes JSON bodies with the credentials in them, nothing else', async () => {
    const fields = { grant_type: 'refresh_token', refresh_token: 'x', client_id: CLIENT_ID, client_secret: SECRET };
    expect(await peerPost('/oauth/token', new URLSearchParams(fields).toString(), 'application/x-www-form-urlencoded'))
      .toMatchObject({ status: 415, body: { error: 'invalid_request' } });
    expect(await peerPost('/oauth/token', JSON.stringify({ ...fields, client_secret: 'nope' }), 'application/json'))
      .toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    const { client_secret: _, ...noSecret } = fields;
    const viaBasic = await fetch(`${peer.baseUrl}/oauth/token`, {
      method: 'POST', body: JSON.stringify(noSecret),
      headers: { 'content-type': 'application/json', authorization: `Basic ${Buffer.from(`${CLIENT_ID}:${SECRET}`).toString('base64')}` },
    });
    expect(viaBasic.status).toBe(401);
    expect(await peerPost('/oauth/token', JSON.stringify(fields), 'application/json')).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });
    expect(await peerPost('/oauth/revoke', new URLSearchParams({ token: 'x', client_id: CLIENT_ID, client_secret: SECRET }).toString(), 'application/x-www-form-urlencoded'))
      .toMatchObject({ status: 415 });
  });
});

describe('proto: native app through the broker', () => {
  it('runs login, code, token, refreshes upstream and logout, with JSON bodies on the wire', async () => {
    const login = await nativeLogin(h, { state: 'proto-native' });
    expect(login.redirect.href.startsWith(NATIVE_REDIRECT)).toBe(true);
    expect(login.redirect.searchParams.get('state')).toBe('proto-native');
    expect(login.redirect.searchParams.get('iss')).toBe(h.url);

    // Plain OAuth 2.0: no nonce without openid; PKCE is sent and the site ignores it.
    const authorize = last(peer.authorizeRequests);
    expect(Object.fromEntries(authorize)).toMatchObject({ response_type: 'code', client_id: CLIENT_ID, redirect_uri: `${h.url}/callback`, scope: 'read write' });
    expect(authorize.has('nonce')).toBe(false);
    expect(authorize.get('code_challenge_method')).toBe('S256');

    const exchange = last(grants('authorization_code'));
    expect(exchange.status).toBe(200);
    expectJsonGrant(exchange, { grant_type: 'authorization_code', code: expect.any(String), redirect_uri: `${h.url}/callback` });
    expect(Object.keys(exchange.response!).sort()).toEqual(['access_token', 'expires_in', 'refresh_token']);

    const res = await redeem(h, login);
    expect(res.status).toBe(200);
    const tokens = await res.json();
    // The site named no token type; the broker assumed the configured Bearer.
    expect(tokens.token_type).toBe('Bearer');
    expect(tokens.access_token).toBe(exchange.response!['access_token']);
    expect(tokens.expires_in).toBeGreaterThan(AT_SECONDS - 60);
    expect(tokens.expires_in).toBeLessThanOrEqual(AT_SECONDS);
    expect(tokens.id_token).toBeUndefined();
    expect(tokens.scope).toBeUndefined();
    expect(tokens.refresh_token).toMatch(/^[A-Za-z0-9_-]{22}\./);
    expect(JSON.stringify(tokens)).not.toContain(exchange.response!['refresh_token'] as string);

    // Near the end of the access token: an upstream refresh, JSON body, rotated refresh token.
    h.clockOffset = AT_SECONDS - 30;
    const r1 = await refreshNative(h, tokens.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('upstream');
    const t1 = await r1.json();
    expect(t1).toMatchObject({ token_type: 'Bearer' });
    expect(t1.access_token).not.toBe(tokens.access_token);
    const refresh1 = last(grants('refresh_token'));
    expectJsonGrant(refresh1, { grant_type: 'refresh_token', refresh_token: exchange.response!['refresh_token'] });
    expect(refresh1.status).toBe(200);

    h.clockOffset = 2 * (AT_SECONDS - 30);
    const r2 = await refreshNative(h, t1.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();
    const refresh2 = last(grants('refresh_token'));
    expectJsonGrant(refresh2, { grant_type: 'refresh_token', refresh_token: refresh1.response!['refresh_token'] });

    // The site rotated: the refresh token from the login is refused now.
    const replay = await peerPost('/oauth/token', JSON.stringify({
      grant_type: 'refresh_token', refresh_token: exchange.response!['refresh_token'], client_id: CLIENT_ID, client_secret: SECRET,
    }), 'application/json');
    expect(replay).toMatchObject({ status: 400, body: { error: 'invalid_grant' } });

    // Logout: revocation in JSON too; no end-session endpoint, so an empty answer.
    const out = await fetch(`${h.url}/logout`, form({ refresh_token: t2.refresh_token, client_id: 'app' }));
    expect(out.status).toBe(200);
    expect(await out.json()).toEqual({});
    const revocation = last(peer.revocations);
    expect(revocation.status).toBe(200);
    expectJsonGrant(revocation, { token: refresh2.response!['refresh_token'], token_type_hint: 'refresh_token' });

    const after = await refreshNative(h, t2.refresh_token);
    expect(after.status).toBe(400);
    expect((await after.json()).error).toBe('invalid_grant');
  });

  it('keeps the refresh token it has when a refresh answer brings none (a site that does not rotate)', async () => {
    const login = await nativeLogin(h);
    const tokens = await (await redeem(h, login)).json();
    const original = last(grants('authorization_code')).response!['refresh_token'];
    peer.rotateRefreshTokens = false;
    h.clockOffset = AT_SECONDS - 30;
    const r1 = await refreshNative(h, tokens.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('upstream');
    expect(last(grants('refresh_token')).response).not.toHaveProperty('refresh_token');
    h.clockOffset = 2 * (AT_SECONDS - 30);
    const r2 = await refreshNative(h, (await r1.json()).refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const [a, b] = grants('refresh_token').slice(-2);
    expect(a!.json!['refresh_token']).toBe(original);
    expect(b!.json!['refresh_token']).toBe(original);
  });

  it('works with pkce: false as well (the site ignores PKCE either way)', async () => {
    const login = await nativeLogin(h, { extra: { provider: 'proto-no-pkce' } });
    expect(login.code).not.toBe('');
    expect(last(peer.authorizeRequests).has('code_challenge')).toBe(false);
    const exchange = last(grants('authorization_code'));
    expect(exchange.json).not.toHaveProperty('code_verifier');
    expect((await redeem(h, login)).status).toBe(200);
  });
});

describe('proto: each quirk setting is needed', () => {
  it('without defaultTokenType: the login ends in a server_error redirect and nothing is stored', async () => {
    // A control: a login with the full configuration stores one session (pending its code).
    const sessions = await countItems('session#');
    expect((await nativeLogin(h)).code).not.toBe('');
    expect(await countItems('session#')).toBe(sessions + 1);
    const n = peer.tokenRequests.length;
    const login = await nativeLogin(h, { state: 'no-type', extra: { provider: 'proto-no-default-type' } });
    expect(login.redirect.href.startsWith(NATIVE_REDIRECT)).toBe(true);
    expect(login.redirect.searchParams.get('error')).toBe('server_error');
    expect(login.redirect.searchParams.get('state')).toBe('no-type');
    expect(login.redirect.searchParams.get('iss')).toBe(h.url);
    expect(login.redirect.searchParams.has('code')).toBe(false);
    // The site did answer, without token_type; the broker refused that answer.
    const exchange = peer.tokenRequests.slice(n);
    expect(exchange).toHaveLength(1);
    expect(exchange[0]!.status).toBe(200);
    expect(exchange[0]!.response).not.toHaveProperty('token_type');
    expect(await countItems('session#')).toBe(sessions + 1);
  });

  // Regression: a token answer refused for its form (here: no token_type) dropped the refresh
  // token in it without revoking it. The broker now revokes it (RFC 7009), best effort.
  it('revokes the refresh token of a token answer it refuses', async () => {
    const n = peer.revocations.length;
    const login = await nativeLogin(h, { extra: { provider: 'proto-no-default-type' } });
    expect(login.redirect.searchParams.get('error')).toBe('server_error');
    const issued = last(grants('authorization_code')).response!['refresh_token'];
    expect(peer.revocations.slice(n).map((r) => r.json?.['token'])).toEqual([issued]);
  });

  it('with form bodies: the site refuses the code exchange (415), the app gets access_denied', async () => {
    const n = peer.tokenRequests.length;
    const login = await nativeLogin(h, { state: 'form', extra: { provider: 'proto-form' } });
    expect(login.redirect.searchParams.get('error')).toBe('access_denied');
    expect(login.redirect.searchParams.get('state')).toBe('form');
    const tried = peer.tokenRequests.slice(n);
    expect(tried.length).toBeGreaterThan(0);
    for (const r of tried) {
      expect(r.contentType).toMatch(/^application\/x-www-form-urlencoded/);
      expect(r.status).toBe(415);
    }
  });

  it('with a wrong secret: invalid_client at the site, access_denied for the app', async () => {
    const n = peer.tokenRequests.length;
    const login = await nativeLogin(h, { state: 'secret', extra: { provider: 'proto-wrong-secret' } });
    expect(login.redirect.searchParams.get('error')).toBe('access_denied');
    const tried = peer.tokenRequests.slice(n);
    expect(tried.length).toBeGreaterThan(0);
    for (const r of tried) expect(r).toMatchObject({ status: 401, error: 'invalid_client' });
  });
});

describe('proto: web app through the broker', () => {
  it('runs login, /session, /refresh (upstream) and /logout', async () => {
    const { jar, redirect } = await webLogin(h, 'proto-web');
    expect(redirect.href.startsWith(WEB_REDIRECT)).toBe(true);
    expect(redirect.searchParams.get('state')).toBe('proto-web');

    // No ID token: no subject and no claims, but a live session.
    const session = await go(jar, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } });
    expect(session.status).toBe(200);
    const info = await session.json();
    expect(info).toMatchObject({ provider: 'proto', claims: {} });
    expect(info.sub).toBeUndefined();

    h.clockOffset = AT_SECONDS - 30;
    const r = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r.status).toBe(200);
    expect(r.headers.get('x-broker-token-source')).toBe('upstream');
    const t = await r.json();
    expect(t.token_type).toBe('Bearer');
    expect(t.id_token).toBeUndefined();
    expectJsonGrant(last(grants('refresh_token')), { grant_type: 'refresh_token' });

    const out = await go(jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders });
    expect(out.status).toBe(200);
    expect(await out.json()).toEqual({});
    expectJsonGrant(last(peer.revocations), { token_type_hint: 'refresh_token' });
    expect((await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders })).status).toBe(401);
  });
});
