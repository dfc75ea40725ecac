/**
 * AppAuth-JS 1.3 (@openid/appauth; 1.4.0 does not load in plain Node) as a Node desktop app uses
 * it, through its own API with its defaults: `fetchFromIssuer` (openid-configuration only), an
 * `AuthorizationRequest` (PKCE S256 on by default), the `NodeBasedHandler` that opens the system
 * browser and catches the loopback redirect on its own HTTP server, `BaseTokenRequestHandler` for
 * the code exchange, two refreshes and revocation. AppAuth-JS has no end-session API: the app
 * builds that URL from the discovered `endSessionEndpoint`.
 *
 * The system browser is the test's: the `opener` package AppAuth-JS launches it with is replaced
 * (in Node's module cache, before AppAuth-JS loads) by a function that hands the URL to the test
 * browser, which signs in at the embedded provider and follows the redirect to AppAuth's server.
 * AppAuth-JS never validates an ID token, so the test checks what a careful app would: the
 * signature at /jwks, `iss`, `aud`, the nonce it sent.
 */
import { createRequire } from 'node:module';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { brokerSubject } from '../../../lib/oidc/subject.js';
import { freePort, go, type Harness } from '../../support/harness.js';
import { browser, LIB_CLIENT, LIB_LOGGED_OUT, LIB_SCOPE, startClientHarness, type Browser } from '../../support/clients.js';

type AppAuth = typeof import('@openid/appauth');
type AppAuthNode = typeof import('@openid/appauth/built/node_support/index.js');

const nodeRequire = createRequire(import.meta.url);
let openInBrowser: (url: string) => void = () => {
  throw new Error('no test browser');
};
const openerPath = createRequire(nodeRequire.resolve('@openid/appauth/built/node_support/node_request_handler.js')).resolve('opener');
nodeRequire.cache[openerPath] = { id: openerPath, filename: openerPath, loaded: true, exports: (url: string) => openInBrowser(url) } as NodeJS.Module;
const appauth = nodeRequire('@openid/appauth') as AppAuth;
const node = nodeRequire('@openid/appauth/built/node_support/index.js') as AppAuthNode;

let h: Harness;
let configuration: InstanceType<AppAuth['AuthorizationServiceConfiguration']>;
const requestor = new node.NodeRequestor();
const tokenHandler = new appauth.BaseTokenRequestHandler(requestor);

beforeAll(async () => {
  h = await startClientHarness();
  configuration = await appauth.AuthorizationServiceConfiguration.fetchFromIssuer(h.url, requestor);
});
afterAll(() => h.close());

/** The app's login: AppAuth's request and handler; the test browser plays the system browser. */
async function logIn(): Promise<{ code: string; verifier: string; redirectUri: string; nonce: string; b: Browser }> {
  const port = await freePort();
  const redirectUri = `http://127.0.0.1:${port}/cb`;
  const b = browser(h);
  openInBrowser = (url) => {
    void b.authorize(url, redirectUri).then((back) => go(b.jar, back));
  };
  const notifier = new appauth.AuthorizationNotifier();
  const handler = new node.NodeBasedHandler(port);
  handler.setAuthorizationNotifier(notifier);
  const completed = new Promise<Parameters<Parameters<typeof notifier.setAuthorizationListener>[0]>>((resolve) => {
    notifier.setAuthorizationListener((...args) => resolve(args));
  });
  const nonce = new node.NodeCrypto().generateRandom(32);
  const request = new appauth.AuthorizationRequest({
    client_id: LIB_CLIENT, redirect_uri: redirectUri, scope: LIB_SCOPE, response_type: appauth.AuthorizationRequest.RESPONSE_TYPE_CODE, state: undefined, extras: { nonce },
  }, new node.NodeCrypto());
  await handler.performAuthorizationRequest(configuration, request);
  const [sent, response, error] = await completed;
  expect(error).toBeNull();
  // The app's own state check (AppAuth-JS's Node handler leaves it to the app).
  expect(response!.state).toBe(request.state);
  return { code: response!.code, verifier: sent.internal!['code_verifier']!, redirectUri, nonce, b };
}

const jwks = () => createRemoteJWKSet(new URL(`${h.url}/jwks`));

describe('AppAuth-JS 1.3, default settings', () => {
  it('discovers the broker with fetchFromIssuer (openid-configuration), end-session endpoint included', () => {
    expect(configuration.toJson()).toEqual({
      authorization_endpoint: `${h.url}/login`,
      token_endpoint: `${h.url}/token`,
      revocation_endpoint: `${h.url}/logout`,
      end_session_endpoint: `${h.url}/end-session`,
      userinfo_endpoint: undefined,
    });
  });

  it('runs the whole native flow: system browser, loopback redirect, code exchange, two refreshes, revocation', async () => {
    const { code, verifier, redirectUri, nonce } = await logIn();
    const tokens = await tokenHandler.performTokenRequest(configuration, new appauth.TokenRequest({
      client_id: LIB_CLIENT, redirect_uri: redirectUri, grant_type: appauth.GRANT_TYPE_AUTHORIZATION_CODE, code, extras: { code_verifier: verifier },
    }));
    expect(tokens.scope).toBe(LIB_SCOPE);
    const { payload } = await jwtVerify(tokens.idToken!, jwks(), { issuer: h.url, audience: LIB_CLIENT });
    expect(payload).toMatchObject({ nonce, sub: brokerSubject(h.op.issuer, 'alice'), idp_sub: 'alice' });

    let handle = tokens.refreshToken!;
    for (let i = 0; i < 2; i++) {
      const refreshed = await tokenHandler.performTokenRequest(configuration, new appauth.TokenRequest({
        client_id: LIB_CLIENT, redirect_uri: redirectUri, grant_type: appauth.GRANT_TYPE_REFRESH_TOKEN, refresh_token: handle,
      }));
      expect(refreshed.refreshToken).not.toBe(handle);
      handle = refreshed.refreshToken!;
      const { payload: p } = await jwtVerify(refreshed.idToken!, jwks(), { issuer: h.url, audience: LIB_CLIENT });
      expect(p).toMatchObject({ sub: payload.sub, auth_time: payload['auth_time'] });
      expect(p['nonce']).toBeUndefined();
    }

    expect(await tokenHandler.performRevokeTokenRequest(configuration, new appauth.RevokeTokenRequest({ token: handle, token_type_hint: 'refresh_token', client_id: LIB_CLIENT }))).toBe(true);
    await expect(tokenHandler.performTokenRequest(configuration, new appauth.TokenRequest({
      client_id: LIB_CLIENT, redirect_uri: redirectUri, grant_type: appauth.GRANT_TYPE_REFRESH_TOKEN, refresh_token: handle,
    }))).rejects.toBeDefined();
  });

  it('logs out at the discovered endSessionEndpoint: broker and provider sessions end, back at the app with its state', async () => {
    const { code, verifier, redirectUri, b } = await logIn();
    const tokens = await tokenHandler.performTokenRequest(configuration, new appauth.TokenRequest({
      client_id: LIB_CLIENT, redirect_uri: redirectUri, grant_type: appauth.GRANT_TYPE_AUTHORIZATION_CODE, code, extras: { code_verifier: verifier },
    }));
    const state = new node.NodeCrypto().generateRandom(16);
    const url = new URL(configuration.endSessionEndpoint!);
    url.search = new URLSearchParams({ id_token_hint: tokens.idToken!, client_id: LIB_CLIENT, post_logout_redirect_uri: LIB_LOGGED_OUT, state }).toString();
    const landed = new URL(await b.endSession(url, LIB_LOGGED_OUT));
    expect(landed.searchParams.get('state')).toBe(state);
    await expect(tokenHandler.performTokenRequest(configuration, new appauth.TokenRequest({
      client_id: LIB_CLIENT, redirect_uri: redirectUri, grant_type: appauth.GRANT_TYPE_REFRESH_TOKEN, refresh_token: tokens.refreshToken!,
    }))).rejects.toBeDefined();
  });
});
