/**
 * A local peer that behaves like an Okta custom authorization server on the wire:
 *
 * - the issuer has a path (`{origin}/oauth2/default`), so discovery is at
 *   `{issuer}/.well-known/openid-configuration`, and the endpoints are Okta's `/v1/authorize`,
 *   `/v1/token`, `/v1/keys`, `/v1/userinfo`, `/v1/revoke` and `/v1/logout` under it;
 * - the app is registered with `client_secret_basic`, and, as Okta does, the token and revocation
 *   endpoints accept only that method: a body carrying `client_secret`, or a request without
 *   `Authorization: Basic`, is answered `401 invalid_client`. (oidc-provider alone would accept
 *   basic and post interchangeably.) The Basic credentials are form-encoded before base64
 *   (RFC 6749 §2.3.1), which oidc-provider checks: a secret sent raw does not match;
 * - `offline_access` yields a refresh token, rotated on every use; authorization codes live 300 s;
 *   access tokens 3600 s (Okta's default).
 */
import { invalidClient, startPeer, type Peer } from './oidc-peer.js';

export const OKTA_CLIENT_ID = '0oa1brokertest5d7';

export interface OktaPeerOptions {
  readonly clientSecret: string;
  readonly accessTokenSeconds?: number;
}

export function startOktaPeer(options: OktaPeerOptions): Promise<Peer> {
  return startPeer({
    host: '127.0.0.3',
    mountPath: '/oauth2/default',
    routes: {
      authorization: '/v1/authorize',
      token: '/v1/token',
      userinfo: '/v1/userinfo',
      jwks: '/v1/keys',
      revocation: '/v1/revoke',
      end_session: '/v1/logout',
    },
    client: {
      client_id: OKTA_CLIENT_ID,
      client_secret: options.clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
    },
    configuration: () => ({
      rotateRefreshToken: true,
      ttl: { AuthorizationCode: 300, AccessToken: options.accessTokenSeconds ?? 3600 },
    }),
    checkClientRequest(req) {
      if (req.form.has('client_secret')) return invalidClient('client_secret_post is not allowed for this client (token_endpoint_auth_method client_secret_basic)');
      if (!/^Basic /i.test(String(req.headers.authorization ?? ''))) return invalidClient('client authentication is required (Authorization: Basic)');
      return undefined;
    },
  });
}
