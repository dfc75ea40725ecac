/**
 * ownCloud Infinite Scale (konnect), by configuration alone: `examples/providers/ocis.json`
 * against a local peer that behaves like oCIS's IDP on the wire (test/support/peers/ocis.ts).
 *
 * Quirks covered: strict `client_secret_post`, five-minute access tokens, and refresh answers
 * WITHOUT a `refresh_token`: the broker must keep the refresh token it has and the session must
 * live on, through any number of upstream refreshes.
 */
import { randomBytes } from 'node:crypto';
import { decodeJwt } from 'jose';
import { brokerSubject } from '../../lib/oidc/subject.js';
import { describe, expect, it } from 'vitest';
import { browserHeaders, form, go, redeem, refreshNative, webLogin, WEB_ORIGIN, type Harness } from '../support/harness.js';
import { providerSuite } from '../support/provider-suite.js';
import type { Peer } from '../support/peers/oidc-peer.js';
import { finishNativeLogin, startNativeLogin, useExampleProvider } from '../support/peers/example-flows.js';
import { OCIS_CLIENT_ID, startOcisPeer } from '../support/peers/ocis.js';

const SECRET = `oc:is%+ s3cret/${randomBytes(4).toString('hex')}`;
const ACCESS_TOKEN_SECONDS = 300;
let peer: Peer;
let h: Harness;

providerSuite({
  start: () => startOcisPeer({ clientSecret: SECRET }),
  configure(doc, peer) {
    useExampleProvider(doc, 'ocis', peer, () => ({ clientId: OCIS_CLIENT_ID, clientSecret: { value: SECRET } }));
    doc['ttl'] = { minAccessTokenSeconds: 30 };
  },
  ready(started, harness) {
    peer = started;
    h = harness;
  },
});

describe('ownCloud oCIS (konnect)', () => {
  it('native: login, /token, upstream refreshes without a new refresh token, logout', async () => {
    const tokenRequests = peer.tokenRequests.length;
    const tokenResponses = peer.tokenResponses.length;
    const started = await startNativeLogin(h, { state: 'ocis' });
    expect(started.status).toBe(302);
    expect(peer.discoveryRequests).toContain('/.well-known/openid-configuration');
    expect(`${started.location.origin}${started.location.pathname}`).toBe(`${peer.origin}/signin/v1/identifier/_/authorize`);
    expect(started.location.searchParams.get('scope')).toBe('openid profile email offline_access');
    expect(started.location.searchParams.get('code_challenge_method')).toBe('S256');
    const login = await finishNativeLogin(h, started);
    expect(login.redirect.searchParams.get('state')).toBe('ocis');

    // The code exchange: client_secret_post, nothing in an Authorization header.
    const exchange = peer.tokenRequests[tokenRequests]!;
    expect(exchange.path).toBe('/konnect/v1/token');
    expect(exchange.headers.authorization).toBeUndefined();
    expect(exchange.form.get('client_id')).toBe(OCIS_CLIENT_ID);
    expect(exchange.form.get('client_secret')).toBe(SECRET);
    expect(exchange.form.get('code_verifier')).toBeTruthy();
    const codeAnswer = peer.tokenResponses[tokenResponses]!;
    expect(codeAnswer.body['expires_in']).toBe(ACCESS_TOKEN_SECONDS);
    const upstreamRefresh = codeAnswer.body['refresh_token'] as string;
    expect(upstreamRefresh).toBeTruthy();

    const res = await redeem(h, login);
    expect(res.status).toBe(200);
    const tokens = await res.json();
    expect(tokens.expires_in).toBeLessThanOrEqual(ACCESS_TOKEN_SECONDS);
    expect(tokens.expires_in).toBeGreaterThan(ACCESS_TOKEN_SECONDS - 10);
    expect(tokens.refresh_expires_in).toBeGreaterThan(86_400);

    // First upstream refresh: konnect answers without refresh_token.
    h.clockOffset = ACCESS_TOKEN_SECONDS - 10;
    const r1 = await refreshNative(h, tokens.refresh_token);
    expect(r1.status).toBe(200);
    expect(r1.headers.get('x-broker-token-source')).toBe('upstream');
    const t1 = await r1.json();
    expect(t1.access_token).not.toBe(tokens.access_token);
    expect(t1.expires_in).toBeGreaterThan(ACCESS_TOKEN_SECONDS - 10);
    expect(peer.tokenRequests.at(-1)!.form.get('refresh_token')).toBe(upstreamRefresh);
    const answer1 = peer.tokenResponses.at(-1)!;
    expect(answer1.grantType).toBe('refresh_token');
    expect(answer1.status).toBe(200);
    expect(answer1.body).not.toHaveProperty('refresh_token');
    // The session lives on: not cut down to the new access token's lifetime.
    expect(t1.refresh_expires_in).toBeGreaterThan(86_400);

    // Second upstream refresh, five minutes later, still with the refresh token from the login.
    h.clockOffset = 2 * ACCESS_TOKEN_SECONDS - 10;
    const r2 = await refreshNative(h, t1.refresh_token);
    expect(r2.status).toBe(200);
    expect(r2.headers.get('x-broker-token-source')).toBe('upstream');
    const t2 = await r2.json();
    expect(t2.access_token).not.toBe(t1.access_token);
    expect(peer.tokenRequests.at(-1)!.form.get('refresh_token')).toBe(upstreamRefresh);
    expect(peer.tokenResponses.at(-1)!.status).toBe(200);
    expect(t2.refresh_expires_in).toBeGreaterThan(86_400);

    // And a third, for good measure.
    h.clockOffset = 3 * ACCESS_TOKEN_SECONDS - 10;
    const r3 = await refreshNative(h, t2.refresh_token);
    expect(r3.status).toBe(200);
    expect(r3.headers.get('x-broker-token-source')).toBe('upstream');
    const t3 = await r3.json();

    // konnect has no revocation endpoint: logout deletes the session and names the end-session URL.
    const out = await fetch(`${h.url}/logout`, form({ refresh_token: t3.refresh_token, client_id: 'app' }));
    expect(out.status).toBe(200);
    const endSession = new URL((await out.json()).end_session_url);
    expect(`${endSession.origin}${endSession.pathname}`).toBe(`${peer.origin}/signin/v1/identifier/_/endsession`);
    expect(decodeJwt(endSession.searchParams.get('id_token_hint')!).iss).toBe(peer.issuer);
    expect(peer.revocations).toHaveLength(0);
    expect((await refreshNative(h, t3.refresh_token)).status).toBe(400);
  });

  it('web: cookie session refreshed upstream twice on the same refresh token', async () => {
    const { jar } = await webLogin(h, 'ocis-web', { scope: 'openid email' });
    const upstreamRefresh = peer.tokenResponses.at(-1)!.body['refresh_token'] as string;
    expect(upstreamRefresh).toBeTruthy();
    const session = await go(jar, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } });
    // (v2) The broker's claims for the web client, with the email its scope asked for.
    expect(await session.json()).toMatchObject({ sub: brokerSubject(peer.issuer, 'alice'), idp_sub: 'alice', provider: 'ocis', claims: { iss: h.url, aud: 'web', email: 'alice@example.com' } });

    for (const round of [1, 2]) {
      h.clockOffset = round * ACCESS_TOKEN_SECONDS - 10;
      const r = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
      expect(r.status).toBe(200);
      expect(r.headers.get('x-broker-token-source')).toBe('upstream');
      expect(peer.tokenRequests.at(-1)!.form.get('refresh_token')).toBe(upstreamRefresh);
    }
    const after = await go(jar, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } });
    expect(after.status).toBe(200);
    const out = await go(jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders });
    expect(out.status).toBe(200);
  });

  it('the peer is as strict as konnect about client authentication', async () => {
    const tokenUrl = `${peer.origin}/konnect/v1/token`;
    const grant = { grant_type: 'refresh_token', refresh_token: 'not-a-token' };
    const basic = await fetch(tokenUrl, form(grant, { authorization: `Basic ${Buffer.from(`${OCIS_CLIENT_ID}:${encodeURIComponent(SECRET)}`).toString('base64')}` }));
    expect(basic.status).toBe(401);
    expect((await basic.json()).error).toBe('invalid_client');
    const noSecret = await fetch(tokenUrl, form({ ...grant, client_id: OCIS_CLIENT_ID }));
    expect(noSecret.status).toBe(401);
    const wrongSecret = await fetch(tokenUrl, form({ ...grant, client_id: OCIS_CLIENT_ID, client_secret: 'wrong' }));
    expect((await wrongSecret.json()).error).toBe('invalid_client');
    const good = await fetch(tokenUrl, form({ ...grant, client_id: OCIS_CLIENT_ID, client_secret: SECRET }));
    expect((await good.json()).error).toBe('invalid_grant');
  });
});
