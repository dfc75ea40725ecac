/**
 * Milestone XProtect, by configuration alone: `examples/providers/xprotect.json` against a
 * local peer that behaves like an XProtect management server on the wire: its IDP under
 * `/IDP` and its ServerCommandService SOAP `Login` (test/support/peers/xprotect.ts).
 *
 * Quirks covered: a public client (`clientAuth: "none"`) with PKCE S256 and a nonce,
 * `prompt=login` with a refresh token all the same, `scope` on the code exchange, the IDP's
 * external login providers chosen with `acr_values=idp:<id>`, and the `vms_token` obtained with
 * the access token after every login and upstream refresh, renewed before it expires.
 */
import { decodeJwt } from 'jose';
import { brokerSubject } from '../../lib/oidc/subject.js';
import { describe, expect, it } from 'vitest';
import { browserHeaders, form, go, NATIVE_REDIRECT, redeem, refreshNative, webLogin, type Harness } from '../support/harness.js';
import { providerSuite } from '../support/provider-suite.js';
import { authorizationResponse, finishNativeLogin, startNativeLogin, useExampleProvider } from '../support/peers/example-flows.js';
import { EXTERNAL_PROVIDERS_PATH, SOAP_ACTION, startXProtectPeer, XPROTECT_CLIENT_ID, type XProtectPeer } from '../support/peers/xprotect.js';

const ACCESS_TOKEN_SECONDS = 3600;
const VMS_TTL = 120;
const SCOPE = 'openid profile managementserver offline_access';
let peer: XProtectPeer;
let h: Harness;

providerSuite({
  start: () => startXProtectPeer({ accessTokenSeconds: ACCESS_TOKEN_SECONDS, vmsTtlSeconds: VMS_TTL }),
  configure(doc, peer) {
    useExampleProvider(doc, 'xprotect', peer, (xprotect) => ({ downstreamLogin: { ...xprotect['downstreamLogin'], url: peer.serverCommandUrl } }));
    // A small margin, so the VMS token's renewal can be seen while the access token is fresh.
    doc['ttl'] = { minAccessTokenSeconds: 10 };
  },
  ready(started, harness) {
    peer = started;
    h = harness;
  },
  reset(peer) {
    peer.vms.fail = false;
    peer.vms.script.length = 0;
  },
});

/**
 * A scripted VMS Login (`vms.script`) that waits when it arrives until the test releases it, then
 * answers a fault (`fault`) or a token.
 */
function heldLogin(fault: boolean): { readonly answer: () => Promise<boolean>; readonly arrived: Promise<void>; release(): void } {
  let arrive!: () => void;
  let release!: () => void;
  const arrived = new Promise<void>((resolve) => (arrive = resolve));
  const released = new Promise<void>((resolve) => (release = resolve));
  return {
    answer: async () => {
      arrive();
      await released;
      return fault;
    },
    arrived,
    release,
  };
}

/** A native login through to the broker's tokens. */
async function nativeTokens(extra: Record<string, string> = {}) {
  const started = await startNativeLogin(h, extra);
  expect(started.status).toBe(302);
  const login = await finishNativeLogin(h, started);
  const res = await redeem(h, login);
  expect(res.status).toBe(200);
  return { started, tokens: await res.json() };
}

describe('Milestone XProtect: the IDP', () => {
  it('discovers {server}/IDP and sends prompt=login, acr_values=idp:OIDC, PKCE S256, a nonce and culture', async () => {
    const started = await startNativeLogin(h);
    expect(started.status).toBe(302);
    expect(peer.discoveryRequests).toContain('/IDP/.well-known/openid-configuration');
    const discovery = await (await fetch(`${peer.issuer}/.well-known/openid-configuration`)).json();
    expect(discovery.external_providers_uri).toBe(`${peer.origin}${EXTERNAL_PROVIDERS_PATH}`);

    const auth = started.location;
    expect(`${auth.origin}${auth.pathname}`).toBe(`${peer.issuer}/connect/authorize`);
    const q = auth.searchParams;
    expect(q.get('client_id')).toBe(XPROTECT_CLIENT_ID);
    expect(q.get('scope')).toBe(SCOPE);
    expect(q.get('prompt')).toBe('login');
    // The first external login provider the IDP lists.
    expect(q.get('acr_values')).toBe('idp:OIDC');
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('nonce')).toBeTruthy();
    expect(q.get('culture')).toBe('en-US');
  });

  it('forwards an app\'s choice of a listed login provider, culture and ui_locales', async () => {
    const started = await startNativeLogin(h, { acr_values: 'idp:AAD', culture: 'da-DK', ui_locales: 'da' });
    expect(started.status).toBe(302);
    const q = started.location.searchParams;
    expect(q.get('acr_values')).toBe('idp:AAD');
    expect(q.getAll('culture')).toEqual(['da-DK']);
    expect(q.get('ui_locales')).toBe('da');
  });

  it('refuses a login provider the IDP does not list, back to the app with invalid_request', async () => {
    const authorizations = peer.authorizations.length;
    for (const acr of ['idp:EVIL', 'OIDC', 'idp:']) {
      const started = await startNativeLogin(h, { acr_values: acr, state: 'evil' });
      expect(started.status).toBe(302);
      expect(started.location.href.startsWith(NATIVE_REDIRECT)).toBe(true);
      expect(started.location.searchParams.get('error')).toBe('invalid_request');
      expect(started.location.searchParams.get('state')).toBe('evil');
      expect(started.location.searchParams.get('iss')).toBe(h.url);
    }
    expect(peer.authorizations.length).toBe(authorizations);
  });

  it('the peer refuses what XProtect refuses: no code_verifier, a client secret, no nonce', async () => {
    const started = await startNativeLogin(h);
    const response = await authorizationResponse(h, started);
    const code = response.searchParams.get('code')!;
    expect(code).toBeTruthy();
    const tokenUrl = `${peer.issuer}/connect/token`;
    const base = { grant_type: 'authorization_code', code, redirect_uri: `${h.url}/callback`, client_id: XPROTECT_CLIENT_ID, scope: SCOPE };
    const secret = await fetch(tokenUrl, form({ ...base, client_secret: 'x' }));
    expect(secret.status).toBe(401);
    expect((await secret.json()).error).toBe('invalid_client');
    const noVerifier = await fetch(tokenUrl, form(base));
    expect(noVerifier.status).toBe(400);
    expect((await noVerifier.json()).error).toBe('invalid_grant');

    const noNonce = new URL(started.location.href);
    noNonce.searchParams.delete('nonce');
    expect((await fetch(noNonce)).status).toBe(400);
  });
});

describe('Milestone XProtect: the VMS token', () => {
  it('native: login, /token with vms_token, renewal before expiry, upstream refresh, logout', async () => {
    const tokenRequests = peer.tokenRequests.length;
    const vmsLogins = peer.vms.logins.length;
    const { tokens } = await nativeTokens();

    // The code exchange of a public client: client_id, scope and code_verifier; no secret.
    const exchange = peer.tokenRequests[tokenRequests]!;
    expect(exchange.form.get('grant_type')).toBe('authorization_code');
    expect(exchange.form.get('client_id')).toBe(XPROTECT_CLIENT_ID);
    expect(exchange.form.get('scope')).toBe(SCOPE);
    expect(exchange.form.get('code_verifier')).toMatch(/^[A-Za-z0-9._~-]{43,128}$/);
    expect(exchange.headers.authorization).toBeUndefined();
    expect(exchange.form.has('client_secret')).toBe(false);
    const upstream = peer.tokenResponses.at(-1)!.body;
    expect(upstream['refresh_token']).toBeTruthy(); // despite prompt=login

    // One SOAP Login at the callback, with the upstream access token.
    expect(peer.vms.logins.length).toBe(vmsLogins + 1);
    const first = peer.vms.logins.at(-1)!;
    expect(first.accessToken).toBe(upstream['access_token']);
    expect(first.accessToken).toBe(tokens.access_token);
    expect(first.sub).toBe('alice');
    expect(first.soapAction.replace(/"/g, '')).toBe(SOAP_ACTION);
    expect(tokens.vms_token).toBe(first.token);
    expect(tokens.vms_token_expires_in).toBeGreaterThan(VMS_TTL - 5);
    expect(tokens.vms_token_expires_in).toBeLessThanOrEqual(VMS_TTL);
    // (v2) The provider's scope is provider_scope; `scope` is what the app asked the broker for (nothing here).
    expect(tokens.provider_scope).toContain('managementserver');
    expect(tokens.scope).toBeUndefined();
    expect(tokens.id_token).toBeUndefined();

    // Fresh: served from storage, the same VMS token, no SOAP call.
    const r0 = await refreshNative(h, tokens.refresh_token);
    expect(r0.status).toBe(200);
    const t0 = await r0.json();
    expect(t0.vms_token).toBe(first.token);
    expect(peer.vms.logins.length).toBe(vmsLogins + 1);

    // Past the renewal point (the last minute of 120 s), the access token still fresh: a new
    // VMS token from a new Login with the stored access token, before the old one expires.
    h.clockOffset = 70;
    const r1 = await refreshNative(h, t0.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('stored');
    const t1 = await r1.json();
    expect(t1.access_token).toBe(tokens.access_token);
    expect(t1.vms_token).not.toBe(first.token);
    expect(peer.vms.logins.length).toBe(vmsLogins + 2);
    const renewed = peer.vms.logins.at(-1)!;
    expect(t1.vms_token).toBe(renewed.token);
    expect(renewed.accessToken).toBe(tokens.access_token);
    expect(t1.vms_token_expires_in).toBeGreaterThan(VMS_TTL - 5);

    // The access token near its end: an upstream refresh, then a Login with the NEW access token.
    h.clockOffset = ACCESS_TOKEN_SECONDS - 5;
    const r2 = await refreshNative(h, t1.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();
    expect(t2.access_token).not.toBe(tokens.access_token);
    expect(peer.tokenRequests.at(-1)!.form.get('grant_type')).toBe('refresh_token');
    expect(peer.tokenRequests.at(-1)!.form.get('client_id')).toBe(XPROTECT_CLIENT_ID);
    expect(peer.vms.logins.length).toBe(vmsLogins + 3);
    const afterRefresh = peer.vms.logins.at(-1)!;
    expect(afterRefresh.accessToken).toBe(t2.access_token);
    expect(t2.vms_token).toBe(afterRefresh.token);
    expect(t2.vms_token_expires_in).toBeGreaterThan(VMS_TTL - 5);

    // One session, one instanceId for every Login.
    const ids = new Set(peer.vms.logins.slice(vmsLogins).map((l) => l.instanceId));
    expect(ids.size).toBe(1);

    // Another session logs in with another instanceId.
    const other = await nativeTokens();
    expect(peer.vms.logins.at(-1)!.token).toBe(other.tokens.vms_token);
    expect(ids.has(peer.vms.logins.at(-1)!.instanceId)).toBe(false);

    const revocations = peer.revocations.length;
    const out = await fetch(`${h.url}/logout`, form({ refresh_token: t2.refresh_token, client_id: 'app' }));
    expect(out.status).toBe(200);
    const endSession = new URL((await out.json()).end_session_url);
    expect(`${endSession.origin}${endSession.pathname}`).toBe(`${peer.issuer}/connect/endsession`);
    expect(peer.revocations.length).toBe(revocations + 1);
    expect(peer.revocations.at(-1)!.form.get('client_id')).toBe(XPROTECT_CLIENT_ID);
    expect(peer.revocations.at(-1)!.headers.authorization).toBeUndefined();
    expect((await refreshNative(h, t2.refresh_token)).status).toBe(400);
  });

  it('a SOAP fault while the old VMS token lives hands out the old one; after it expired, 502 and the session survives', async () => {
    const { tokens } = await nativeTokens();
    const first = tokens.vms_token as string;
    const vmsLogins = peer.vms.logins.length;

    // Renewal due, the VMS refuses: the old token is still valid for ~50 s, so the app gets it.
    peer.vms.fail = true;
    h.clockOffset = 70;
    const r1 = await refreshNative(h, tokens.refresh_token);
    expect(r1.status).toBe(200);
    const t1 = await r1.json();
    expect(t1.vms_token).toBe(first);
    expect(t1.vms_token_expires_in).toBeGreaterThan(0);
    expect(t1.vms_token_expires_in).toBeLessThanOrEqual(VMS_TTL - 70);
    expect(peer.vms.faults.at(-1)).toMatch(/not available/);

    // The old token has expired and the VMS still refuses: 502 server_error.
    h.clockOffset = VMS_TTL + 10;
    const r2 = await refreshNative(h, t1.refresh_token);
    expect(r2.status).toBe(502);
    expect((await r2.json()).error).toBe('server_error');
    expect(peer.vms.logins.length).toBe(vmsLogins);

    // The VMS is back: the same handle refreshes, with a new VMS token from the same instanceId.
    peer.vms.fail = false;
    const r3 = await refreshNative(h, t1.refresh_token);
    expect(r3.status).toBe(200);
    const t3 = await r3.json();
    expect(t3.access_token).toBe(tokens.access_token);
    expect(t3.vms_token).not.toBe(first);
    expect(t3.vms_token).toBe(peer.vms.logins.at(-1)!.token);
    expect(t3.vms_token_expires_in).toBeGreaterThan(VMS_TTL - 5);
    expect(peer.vms.logins.at(-1)!.instanceId).toBe(peer.vms.logins[vmsLogins - 1]!.instanceId);
    const again = await refreshNative(h, t3.refresh_token);
    expect(again.status).toBe(200);
  });

  it('a retry within the grace window keeps the handle it was given when the first request\'s Login then fails', async () => {
    const { tokens } = await nativeTokens();
    // The VMS token has expired, the access token is fresh: each refresh must log in again.
    h.clockOffset = VMS_TTL + 5;
    // The first request's Login waits, then fails; the retry's succeeds meanwhile.
    const firstLogin = heldLogin(true);
    peer.vms.script.push(firstLogin.answer, async () => false);
    const first = refreshNative(h, tokens.refresh_token);
    await firstLogin.arrived;
    // The same handle again (the app retried): the rotation was handed out, so within the grace
    // window it gets the new handle, with a VMS token of its own.
    const retry = await refreshNative(h, tokens.refresh_token);
    expect(retry.status).toBe(200);
    const retried = await retry.json();
    expect(retried.refresh_token).not.toBe(tokens.refresh_token);
    expect(retried.vms_token).toBe(peer.vms.logins.at(-1)!.token);
    firstLogin.release();
    // The first request's Login failed after the retry stored its VMS token: the rotation stands,
    // and the first request answers with it too.
    const answered = await first;
    expect(answered.status).toBe(200);
    const a = await answered.json();
    expect(a.refresh_token).toBe(retried.refresh_token);
    expect(a.vms_token).toBe(retried.vms_token);

    // The handle both were given refreshes.
    const next = await refreshNative(h, retried.refresh_token);
    expect(next.status).toBe(200);
    expect((await next.json()).vms_token).toBe(retried.vms_token);
  });

  it('a retry within the grace window whose Login ends after the first request took its rotation back answers 503, and the app\'s handle still works', async () => {
    const { tokens } = await nativeTokens();
    h.clockOffset = VMS_TTL + 5;
    const firstLogin = heldLogin(true);
    const retryLogin = heldLogin(false);
    peer.vms.script.push(firstLogin.answer, retryLogin.answer);
    const first = refreshNative(h, tokens.refresh_token);
    await firstLogin.arrived;
    const retry = refreshNative(h, tokens.refresh_token);
    await retryLogin.arrived;
    // The first request's Login fails: it takes its rotation back and answers 502.
    firstLogin.release();
    const failed = await first;
    expect(failed.status).toBe(502);
    // The retry's Login succeeds, but the handle it would hand out was taken back: 503, try again.
    retryLogin.release();
    const raced = await retry;
    expect(raced.status).toBe(503);
    expect((await raced.json()).error).toBe('temporarily_unavailable');

    // The handle the app holds is current again and refreshes.
    const again = await refreshNative(h, tokens.refresh_token);
    expect(again.status).toBe(200);
    const t = await again.json();
    expect(t.vms_token).toBe(peer.vms.logins.at(-1)!.token);
    expect((await refreshNative(h, t.refresh_token)).status).toBe(200);
  });

  it('a SOAP fault right after an upstream refresh, the old VMS token expired: 502, the refreshed session is kept', async () => {
    const { tokens } = await nativeTokens();
    const upstreamRefreshes = peer.tokenResponses.filter((r) => r.grantType === 'refresh_token').length;

    peer.vms.fail = true;
    h.clockOffset = ACCESS_TOKEN_SECONDS - 5;
    const r1 = await refreshNative(h, tokens.refresh_token);
    expect(r1.status).toBe(502);
    expect((await r1.json()).error).toBe('server_error');
    expect(peer.tokenResponses.filter((r) => r.grantType === 'refresh_token').length).toBe(upstreamRefreshes + 1);

    // The handle still works; the access token refreshed a moment ago is served from storage
    // (no second upstream refresh) with a VMS token from a new Login.
    peer.vms.fail = false;
    const r2 = await refreshNative(h, tokens.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('stored');
    const t2 = await r2.json();
    expect(t2.access_token).not.toBe(tokens.access_token);
    expect(t2.vms_token).toBe(peer.vms.logins.at(-1)!.token);
    expect(peer.vms.logins.at(-1)!.accessToken).toBe(t2.access_token);
    expect(peer.tokenResponses.filter((r) => r.grantType === 'refresh_token').length).toBe(upstreamRefreshes + 1);

    // The refresh token rotated by that refresh was stored: the next hour's refresh works.
    h.clockOffset = 2 * ACCESS_TOKEN_SECONDS - 5;
    const r3 = await refreshNative(h, t2.refresh_token);
    expect(r3.status).toBe(200);
    expect(r3.headers.get('x-broker-token-source')).toBe('upstream');
  });

  // This found a broker bug (lib/broker/refresh.ts, refreshUpstream answered 502 here although
  // the session's VMS token was still valid); it was fixed in lib while these tests were written.
  it('a SOAP fault right after an upstream refresh, the old VMS token still valid: the old one is handed out', async () => {
    const { tokens } = await nativeTokens();
    // Renew the VMS token shortly before the access token's end, so it outlives the refresh.
    h.clockOffset = ACCESS_TOKEN_SECONDS - 60;
    const r1 = await refreshNative(h, tokens.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('stored');
    const t1 = await r1.json();
    expect(t1.vms_token).not.toBe(tokens.vms_token);
    expect(t1.vms_token_expires_in).toBeGreaterThan(VMS_TTL - 5);

    // The access token is due (5 s left): upstream refresh; the VMS refuses the new Login, while
    // the VMS token from a minute ago has more than a minute to live.
    peer.vms.fail = true;
    h.clockOffset = ACCESS_TOKEN_SECONDS - 5;
    const r2 = await refreshNative(h, t1.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();
    expect(t2.access_token).not.toBe(t1.access_token);
    expect(t2.vms_token).toBe(t1.vms_token);
    expect(t2.vms_token_expires_in).toBeGreaterThan(0);
    expect(t2.vms_token_expires_in).toBeLessThanOrEqual(VMS_TTL - 55);

    // The VMS is back, the old token in its last minute: the next refresh (from storage) renews it.
    peer.vms.fail = false;
    h.clockOffset = ACCESS_TOKEN_SECONDS + 10;
    const r3 = await refreshNative(h, t2.refresh_token);
    expect(r3.status).toBe(200);
    expect(r3.headers.get('x-broker-token-source')).toBe('stored');
    const t3 = await r3.json();
    expect(t3.access_token).toBe(t2.access_token);
    expect(t3.vms_token).not.toBe(t1.vms_token);
    expect(peer.vms.logins.at(-1)!.accessToken).toBe(t2.access_token);
  });

  it('a SOAP fault at login stores nothing: the app gets server_error and the refresh token is revoked', async () => {
    const revocations = peer.revocations.length;
    peer.vms.fail = true;
    const started = await startNativeLogin(h, { state: 'vms-down' });
    const login = await finishNativeLogin(h, started);
    expect(login.code).toBe('');
    expect(login.redirect.searchParams.get('error')).toBe('server_error');
    expect(login.redirect.searchParams.get('state')).toBe('vms-down');
    expect(peer.revocations.length).toBe(revocations + 1);
  });

  it('the VMS peer checks the access token at the IDP and the SOAP request', async () => {
    const envelope = (id: string, current = '') => '<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>' +
      `<Login xmlns="http://videoos.net/2/XProtectCSServerCommand"><instanceId>${id}</instanceId><currentToken>${current}</currentToken></Login></s:Body></s:Envelope>`;
    const soap = (headers: Record<string, string>, body = envelope(crypto.randomUUID())) => fetch(peer.serverCommandUrl, {
      method: 'POST', body, headers: { 'content-type': 'text/xml; charset=utf-8', soapaction: `"${SOAP_ACTION}"`, ...headers },
    });
    const forged = await soap({ authorization: 'bearer forged-token' });
    expect(forged.status).toBe(500);
    expect(await forged.text()).toMatch(/<s:Fault>[\s\S]*refused by the IDP/);
    expect((await fetch(peer.serverCommandUrl)).status).toBe(405);

    const { tokens } = await nativeTokens();
    const ok = await soap({ authorization: `bearer ${tokens.access_token}` });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toMatch(/<LoginResult[\s\S]*<MicroSeconds>120000000<\/MicroSeconds>[\s\S]*<Token>TOKEN#/);
    expect((await soap({ authorization: `bearer ${tokens.access_token}`, soapaction: 'urn:other' })).status).toBe(500);
    expect((await soap({ authorization: `bearer ${tokens.access_token}` }, envelope('not-a-guid'))).status).toBe(500);
    expect((await soap({ authorization: `bearer ${tokens.access_token}` }, envelope(crypto.randomUUID(), 'TOKEN#old'))).status).toBe(500);
  });

  it('web: the session cookie\'s /refresh carries the VMS token too', async () => {
    const { jar } = await webLogin(h, 'vms-web');
    const r = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r.status).toBe(200);
    const t = await r.json();
    expect(t.vms_token).toBe(peer.vms.logins.at(-1)!.token);
    expect(t.vms_token_expires_in).toBeGreaterThan(VMS_TTL - 5);
    h.clockOffset = 70;
    const renewed = await (await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders })).json();
    expect(renewed.vms_token).not.toBe(t.vms_token);
    const out = await go(jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders });
    expect(out.status).toBe(200);
  });
});
