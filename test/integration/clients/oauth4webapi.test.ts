/**
 * oauth4webapi 3 (panva), driven through its own API with its default settings: discovery from
 * the broker's URL, an authorization request with PKCE and a nonce to a private-use-scheme
 * redirect (a mobile app), the redirect validated by `validateAuthResponse` (state, iss), the code
 * exchange and refreshes with the library's ID token checks, revocation, and RP-initiated logout
 * at the discovered `end_session_endpoint`. `allowInsecureRequests` is set only because the test
 * broker listens on plain-http loopback.
 */
import * as oauth from 'oauth4webapi';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerSubject } from '../../../lib/oidc/subject.js';
import type { Harness } from '../../support/harness.js';
import { browser, LIB_CLIENT, LIB_LOGGED_OUT, LIB_SCHEME_REDIRECT, LIB_SCOPE, startClientHarness } from '../../support/clients.js';

let h: Harness;
let as: oauth.AuthorizationServer;
const client: oauth.Client = { client_id: LIB_CLIENT };
const clientAuth = oauth.None();
const http = { [oauth.allowInsecureRequests]: true };

beforeAll(async () => {
  h = await startClientHarness();
  const issuer = new URL(h.url);
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, http));
});
afterAll(() => h.close());

async function logIn(options: { nonce?: boolean } = {}) {
  const codeVerifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const nonce = options.nonce === false ? undefined : oauth.generateRandomNonce();
  const url = new URL(as.authorization_endpoint!);
  url.search = new URLSearchParams({
    client_id: client.client_id,
    redirect_uri: LIB_SCHEME_REDIRECT,
    response_type: 'code',
    scope: LIB_SCOPE,
    code_challenge: await oauth.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    ...(nonce ? { nonce } : {}),
  }).toString();
  const b = browser(h);
  const back = await b.authorize(url, LIB_SCHEME_REDIRECT);
  const params = oauth.validateAuthResponse(as, client, new URL(back), state);
  const response = await oauth.authorizationCodeGrantRequest(as, client, clientAuth, params, LIB_SCHEME_REDIRECT, codeVerifier, http);
  const result = await oauth.processAuthorizationCodeResponse(as, client, response, { requireIdToken: true, ...(nonce ? { expectedNonce: nonce } : {}) });
  return { result, nonce, browser: b };
}

const refresh = async (handle: string) =>
  oauth.processRefreshTokenResponse(as, client, await oauth.refreshTokenGrantRequest(as, client, clientAuth, handle, http));

describe('oauth4webapi 3, default settings', () => {
  it('discovers the broker at /.well-known/openid-configuration with every field it needs', () => {
    expect(as).toMatchObject({
      issuer: h.url,
      authorization_endpoint: `${h.url}/login`,
      token_endpoint: `${h.url}/token`,
      jwks_uri: `${h.url}/jwks`,
      revocation_endpoint: `${h.url}/logout`,
      end_session_endpoint: `${h.url}/end-session`,
      authorization_response_iss_parameter_supported: true,
    });
  });

  it('runs the whole native flow: code exchange, two refreshes, revocation; the library checks every ID token', async () => {
    const { result, nonce } = await logIn();
    const claims = oauth.getValidatedIdTokenClaims(result)!;
    expect(claims).toMatchObject({ iss: h.url, aud: LIB_CLIENT, nonce, sub: brokerSubject(h.op.issuer, 'alice'), idp_sub: 'alice' });
    expect(result.scope).toBe(LIB_SCOPE);

    const r1 = await refresh(result.refresh_token!);
    const r2 = await refresh(r1.refresh_token!);
    for (const r of [r1, r2]) {
      const c = oauth.getValidatedIdTokenClaims(r)!;
      expect(c).toMatchObject({ iss: h.url, aud: LIB_CLIENT, sub: claims.sub, auth_time: claims.auth_time });
      expect(c['nonce']).toBeUndefined();
    }

    await oauth.processRevocationResponse(await oauth.revocationRequest(as, client, clientAuth, r2.refresh_token!, http));
    await expect(refresh(r2.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  it('accepts the code exchange of a login without a nonce: the broker\'s ID token then has none (expectNoNonce)', async () => {
    const { result } = await logIn({ nonce: false });
    expect(oauth.getValidatedIdTokenClaims(result)!['nonce']).toBeUndefined();
  });

  it('logs out at the discovered end_session_endpoint (RP-Initiated Logout): back at the app with its state, the handle dead', async () => {
    const { result, browser: b } = await logIn();
    const state = oauth.generateRandomState();
    const url = new URL(as.end_session_endpoint!);
    url.search = new URLSearchParams({ id_token_hint: result.id_token!, client_id: LIB_CLIENT, post_logout_redirect_uri: LIB_LOGGED_OUT, state }).toString();
    const landed = new URL(await b.endSession(url, LIB_LOGGED_OUT));
    expect(landed.searchParams.get('state')).toBe(state);
    await expect(refresh(result.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });
});
