/**
 * Okta (custom authorization server), by configuration alone: `examples/providers/okta.json`
 * against a local peer that behaves like Okta on the wire (test/support/peers/okta.ts).
 *
 * Quirks covered: an issuer with a path (discovery at `{issuer}/.well-known/...`), strict
 * `client_secret_basic` with a secret that needs form-encoding (`:` `%` `+` and a space),
 * `offline_access` for a refresh token, refresh token rotation on every use, PKCE S256.
 */
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { brokerSubject } from '../../lib/oidc/subject.js';
import { describe, expect, it } from 'vitest';
import { browserHeaders, form, go, redeem, refreshNative, webLogin, WEB_ORIGIN, WEB_REDIRECT, type Harness } from '../support/harness.js';
import { providerSuite } from '../support/provider-suite.js';
import { basicParts, formEncode, type Peer } from '../support/peers/oidc-peer.js';
import { finishNativeLogin, startNativeLogin, useExampleProvider } from '../support/peers/example-flows.js';
import { OKTA_CLIENT_ID, startOktaPeer } from '../support/peers/okta.js';

const SECRET = `ok:ta%+ s3cret/${randomBytes(4).toString('hex')}`;
let peer: Peer;
let h: Harness;

providerSuite({
  start: () => startOktaPeer({ clientSecret: SECRET, accessTokenSeconds: 3600 }),
  configure(doc, peer) {
    useExampleProvider(doc, 'okta', peer, (okta) => ({
      clientId: OKTA_CLIENT_ID,
      // Locally the secret is a value; deployed it comes from Secrets Manager (see the example).
      clientSecret: { value: SECRET },
      // The peer is oidc-provider, which grants offline_access only with prompt=consent
      // (OIDC Core §11); Okta itself does not need it.
      authorizationParams: { ...okta['authorizationParams'], prompt: 'consent' },
    }));
    doc['ttl'] = { minAccessTokenSeconds: 30 };
  },
  ready(started, harness) {
    peer = started;
    h = harness;
  },
});

const ACCESS_TOKEN_SECONDS = 3600;

describe('Okta: custom authorization server', () => {
  it('discovers the issuer with a path and sends offline_access, a nonce and PKCE S256 to /v1/authorize', async () => {
    const started = await startNativeLogin(h);
    expect(started.status).toBe(302);
    expect(peer.discoveryRequests).toContain('/oauth2/default/.well-known/openid-configuration');
    const auth = started.location;
    expect(`${auth.origin}${auth.pathname}`).toBe(`${peer.issuer}/v1/authorize`);
    const q = auth.searchParams;
    expect(q.get('response_type')).toBe('code');
    expect(q.get('client_id')).toBe(OKTA_CLIENT_ID);
    expect(q.get('redirect_uri')).toBe(`${h.url}/callback`);
    expect(q.get('scope')!.split(' ')).toEqual(expect.arrayContaining(['openid', 'offline_access']));
    expect(q.get('code_challenge_method')).toBe('S256');
    expect(q.get('code_challenge')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(q.get('nonce')).toBeTruthy();
    expect(q.get('state')!.length).toBeGreaterThanOrEqual(22);
  });

  it('native: login, code, /token, two upstream refreshes with rotated refresh tokens, logout with revocation', async () => {
    const firstToken = peer.tokenRequests.length;
    const firstResponse = peer.tokenResponses.length;
    const started = await startNativeLogin(h, { state: 'okta-native', scope: 'openid profile email' });
    const login = await finishNativeLogin(h, started);
    expect(login.redirect.searchParams.get('state')).toBe('okta-native');
    expect(login.redirect.searchParams.get('iss')).toBe(h.url);

    // The code exchange: client_secret_basic with id and secret form-encoded before base64.
    const exchange = peer.tokenRequests[firstToken]!;
    expect(exchange.form.get('grant_type')).toBe('authorization_code');
    expect(exchange.form.has('client_secret')).toBe(false);
    expect(exchange.form.has('client_id')).toBe(false);
    expect(basicParts(exchange.headers.authorization)).toEqual({ id: formEncode(OKTA_CLIENT_ID), secret: formEncode(SECRET) });
    expect(exchange.form.get('code_verifier')).toMatch(/^[A-Za-z0-9._~-]{43,128}$/);
    expect(exchange.form.get('redirect_uri')).toBe(`${h.url}/callback`);
    const codeAnswer = peer.tokenResponses[firstResponse]!;
    expect(codeAnswer.status).toBe(200);
    const upstreamRefresh0 = codeAnswer.body['refresh_token'] as string;
    expect(upstreamRefresh0).toBeTruthy();

    const res = await redeem(h, login);
    expect(res.status).toBe(200);
    const tokens = await res.json();
    // (v2) The app's granted scope, the provider's as provider_scope, and the broker's own ID token.
    expect(tokens).toMatchObject({ token_type: 'Bearer', scope: 'openid profile email', provider_scope: expect.stringContaining('offline_access') });
    expect(tokens.expires_in).toBeGreaterThan(ACCESS_TOKEN_SECONDS - 60);
    expect(decodeJwt(tokens.id_token)).toMatchObject({ iss: h.url, aud: 'app', idp: 'okta', idp_sub: 'alice', sub: brokerSubject(peer.issuer, 'alice') });
    expect(tokens.refresh_token).not.toBe(upstreamRefresh0);
    expect(JSON.stringify(tokens)).not.toContain(upstreamRefresh0);

    // Near the end of Okta's hour: the broker refreshes upstream with the refresh token it holds.
    h.clockOffset = ACCESS_TOKEN_SECONDS - 10;
    const r1 = await refreshNative(h, tokens.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('upstream');
    const t1 = await r1.json();
    expect(t1.access_token).not.toBe(tokens.access_token);
    const refresh1 = peer.tokenRequests.at(-1)!;
    expect(refresh1.form.get('grant_type')).toBe('refresh_token');
    expect(refresh1.form.get('refresh_token')).toBe(upstreamRefresh0);
    expect(basicParts(refresh1.headers.authorization)).toEqual({ id: formEncode(OKTA_CLIENT_ID), secret: formEncode(SECRET) });
    const upstreamRefresh1 = peer.tokenResponses.at(-1)!.body['refresh_token'] as string;
    expect(upstreamRefresh1).toBeTruthy();
    expect(upstreamRefresh1).not.toBe(upstreamRefresh0); // rotated

    // A second hour later: the broker must use the rotated refresh token (the old one is spent,
    // and Okta would revoke the whole grant on its reuse).
    h.clockOffset = 2 * ACCESS_TOKEN_SECONDS - 10;
    const r2 = await refreshNative(h, t1.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();
    expect(peer.tokenRequests.at(-1)!.form.get('refresh_token')).toBe(upstreamRefresh1);
    const upstreamRefresh2 = peer.tokenResponses.at(-1)!.body['refresh_token'] as string;
    expect(upstreamRefresh2).not.toBe(upstreamRefresh1);

    const revocationsBefore = peer.revocations.length;
    const out = await fetch(`${h.url}/logout`, form({ refresh_token: t2.refresh_token, client_id: 'app' }));
    expect(out.status).toBe(200);
    const body = await out.json();
    const endSession = new URL(body.end_session_url);
    expect(`${endSession.origin}${endSession.pathname}`).toBe(`${peer.issuer}/v1/logout`);
    expect(endSession.searchParams.get('client_id')).toBe(OKTA_CLIENT_ID);
    // Okta needs its own ID token here; it is the only place that token ever leaves the broker.
    expect(decodeJwt(endSession.searchParams.get('id_token_hint')!)).toMatchObject({ iss: peer.issuer, aud: OKTA_CLIENT_ID });

    // Revoked at /v1/revoke, with client_secret_basic too.
    expect(peer.revocations.length).toBe(revocationsBefore + 1);
    const revocation = peer.revocations.at(-1)!;
    expect(revocation.form.get('token')).toBe(upstreamRefresh2);
    expect(revocation.form.get('token_type_hint')).toBe('refresh_token');
    expect(basicParts(revocation.headers.authorization)).toEqual({ id: formEncode(OKTA_CLIENT_ID), secret: formEncode(SECRET) });
    const reuse = await fetch(`${peer.issuer}/v1/token`, form({ grant_type: 'refresh_token', refresh_token: upstreamRefresh2 }, {
      authorization: `Basic ${Buffer.from(`${formEncode(OKTA_CLIENT_ID)}:${formEncode(SECRET)}`).toString('base64')}`,
    }));
    expect((await reuse.json()).error).toBe('invalid_grant');

    const after = await refreshNative(h, t2.refresh_token);
    expect(after.status).toBe(400);
    expect((await after.json()).error).toBe('invalid_grant');
  });

  it('web: cookie session, /session, /refresh from storage and upstream, /logout', async () => {
    const { jar, redirect } = await webLogin(h, 'okta-web');
    expect(redirect.href.startsWith(WEB_REDIRECT)).toBe(true);
    expect(redirect.searchParams.get('state')).toBe('okta-web');

    const session = await go(jar, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } });
    expect(session.status).toBe(200);
    expect(await session.json()).toMatchObject({ sub: brokerSubject(peer.issuer, 'alice'), provider: 'okta', idp_sub: 'alice', claims: { iss: h.url, aud: 'web', idp: 'okta' } });

    const r1 = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('stored');
    const t1 = await r1.json();

    h.clockOffset = ACCESS_TOKEN_SECONDS - 10;
    const r2 = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();
    expect(t2.access_token).not.toBe(t1.access_token);
    expect(t2.refresh_token).toBeUndefined();

    const out = await go(jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders });
    expect(out.status).toBe(200);
    expect(new URL((await out.json()).end_session_url).searchParams.get('post_logout_redirect_uri')).toBe(`${WEB_ORIGIN}/bye`);
    const gone = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(gone.status).toBe(401);
  });

  it('the peer is as strict as Okta about client authentication', async () => {
    const tokenUrl = `${peer.issuer}/v1/token`;
    const basic = (id: string, secret: string) => `Basic ${Buffer.from(`${id}:${secret}`).toString('base64')}`;
    const grant = { grant_type: 'refresh_token', refresh_token: 'not-a-token' };

    // client_secret_post, for a client_secret_basic app: refused before anything else.
    const post = await fetch(tokenUrl, form({ ...grant, client_id: OKTA_CLIENT_ID, client_secret: SECRET }));
    expect(post.status).toBe(401);
    expect((await post.json()).error).toBe('invalid_client');
    // No client authentication at all.
    const none = await fetch(tokenUrl, form({ ...grant, client_id: OKTA_CLIENT_ID }));
    expect(none.status).toBe(401);
    expect((await none.json()).error).toBe('invalid_client');
    // Both at once.
    const both = await fetch(tokenUrl, form({ ...grant, client_secret: SECRET }, { authorization: basic(formEncode(OKTA_CLIENT_ID), formEncode(SECRET)) }));
    expect(both.status).toBe(401);
    // The secret sent raw, not form-encoded: it does not match.
    const raw = await fetch(tokenUrl, form(grant, { authorization: basic(OKTA_CLIENT_ID, SECRET) }));
    expect(raw.status).toBeGreaterThanOrEqual(400);
    expect(['invalid_client', 'invalid_request']).toContain((await raw.json()).error);
    // Properly encoded Basic gets through to the grant itself.
    const good = await fetch(tokenUrl, form(grant, { authorization: basic(formEncode(OKTA_CLIENT_ID), formEncode(SECRET)) }));
    expect((await good.json()).error).toBe('invalid_grant');
  });
});
