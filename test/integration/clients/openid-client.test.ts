/**
 * openid-client 6 (panva), driven through its own API with its default settings, against the
 * broker's URL and nothing else: discovery, an authorization request with PKCE and a nonce, the
 * login in the "browser", the redirect validated by the library (state, iss), the code exchange
 * with the library's own ID token checks (iss, aud, exp, iat, nonce), two refreshes, revocation
 * and RP-initiated logout. The one non-default option is `allowInsecureRequests`: the test broker
 * listens on plain-http loopback, which openid-client refuses otherwise (a deployment is https).
 */
import * as client from 'openid-client';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerSubject } from '../../../lib/oidc/subject.js';
import { freePort, type Harness } from '../../support/harness.js';
import { browser, LIB_CLIENT, LIB_LOGGED_OUT, LIB_SCOPE, startClientHarness } from '../../support/clients.js';

let h: Harness;
let redirectUri: string;
beforeAll(async () => {
  h = await startClientHarness();
  // A desktop app's loopback redirect: any port matches the registered http://127.0.0.1/cb.
  redirectUri = `http://127.0.0.1:${await freePort()}/cb`;
});
afterAll(() => h.close());

const discover = (clientId = LIB_CLIENT, metadata?: Partial<client.ClientMetadata>) =>
  client.discovery(new URL(h.url), clientId, metadata, client.None(), { execute: [client.allowInsecureRequests] });

/** The library's authorization request, the login in the browser, and the library's code exchange. */
async function logIn(config: client.Configuration) {
  const codeVerifier = client.randomPKCECodeVerifier();
  const state = client.randomState();
  const nonce = client.randomNonce();
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: LIB_SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const b = browser(h);
  const back = await b.authorize(url, redirectUri);
  const tokens = await client.authorizationCodeGrant(config, new URL(back), {
    pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce, idTokenExpected: true,
  });
  return { tokens, nonce, browser: b };
}

describe('openid-client 6, default settings', () => {
  it('discovers the broker from its URL alone (/.well-known/openid-configuration)', async () => {
    const config = await discover();
    const meta = config.serverMetadata();
    expect(meta.issuer).toBe(h.url);
    expect(meta.jwks_uri).toBe(`${h.url}/jwks`);
    expect(meta.end_session_endpoint).toBe(`${h.url}/end-session`);
    expect(meta.supportsPKCE()).toBe(true);
  });

  it('runs the whole native flow: code exchange, two refreshes and revocation, every ID token checked by the library', async () => {
    const config = await discover();
    const { tokens, nonce } = await logIn(config);
    const claims = tokens.claims()!;
    expect(claims).toMatchObject({ iss: h.url, aud: LIB_CLIENT, nonce, sub: brokerSubject(h.op.issuer, 'alice'), idp: 'op', idp_sub: 'alice', name: 'Alice Example' });
    // The app's scope never changes what the provider is asked for: its scopes have no email, so there is none to copy.
    expect(claims.email).toBeUndefined();
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(600);
    expect(tokens.scope).toBe(LIB_SCOPE);
    expect(tokens.refresh_token).toBeTruthy();

    // Two refreshes (each upstream here): new handles, ID tokens with the same subject and
    // auth_time and no nonce (OIDC Core §12.2), all accepted by the library.
    const r1 = await client.refreshTokenGrant(config, tokens.refresh_token!);
    const r2 = await client.refreshTokenGrant(config, r1.refresh_token!);
    for (const r of [r1, r2]) {
      const c = r.claims()!;
      expect(c).toMatchObject({ iss: h.url, aud: LIB_CLIENT, sub: claims.sub, auth_time: claims.auth_time, sid: claims.sid });
      expect(c.nonce).toBeUndefined();
    }
    expect(r2.refresh_token).not.toBe(r1.refresh_token);
    expect(r2.access_token).not.toBe(tokens.access_token);

    // Revocation (RFC 7009) at the discovered revocation_endpoint: the handle is dead.
    await client.tokenRevocation(config, r2.refresh_token!, { token_type_hint: 'refresh_token' });
    await expect(client.refreshTokenGrant(config, r2.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('logs out with buildEndSessionUrl: the broker session and the provider session end, and the browser returns with the state', async () => {
    const config = await discover();
    const { tokens, browser: b } = await logIn(config);
    const state = client.randomState();
    const url = client.buildEndSessionUrl(config, { id_token_hint: tokens.id_token!, post_logout_redirect_uri: LIB_LOGGED_OUT, state });
    expect(url.href.startsWith(`${h.url}/end-session?`)).toBe(true);
    const landed = new URL(await b.endSession(url, LIB_LOGGED_OUT));
    expect(`${landed.origin}${landed.pathname}`).toBe(LIB_LOGGED_OUT);
    expect(landed.searchParams.get('state')).toBe(state);
    await expect(client.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('verifies every ID token signature at /jwks with its non-repudiation checks, RS256 by default and ES256 for a client registered so', async () => {
    for (const [clientId, alg] of [[LIB_CLIENT, 'RS256'], ['lib-es256', 'ES256']] as const) {
      const config = await discover(clientId, alg === 'ES256' ? { id_token_signed_response_alg: 'ES256' } : undefined);
      client.enableNonRepudiationChecks(config);
      const { tokens } = await logIn(config);
      const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token!);
      const jwks = createRemoteJWKSet(new URL(`${h.url}/jwks`));
      for (const idToken of [tokens.id_token!, refreshed.id_token!]) {
        expect(decodeProtectedHeader(idToken).alg).toBe(alg);
        const { payload } = await jwtVerify(idToken, jwks, { issuer: h.url, audience: clientId, algorithms: [alg] });
        expect(payload.sub).toBe(brokerSubject(h.op.issuer, 'alice'));
      }
    }
  });
});
