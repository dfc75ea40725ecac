/**
 * A local peer that behaves like ownCloud Infinite Scale's built-in IDP (LibreGraph Connect,
 * "konnect") on the wire:
 *
 * - the issuer is the oCIS origin itself (no path); konnect's endpoint paths:
 *   `/signin/v1/identifier/_/authorize`, `/konnect/v1/token`, `/konnect/v1/jwks.json`,
 *   `/konnect/v1/userinfo`, `/signin/v1/identifier/_/endsession`, and no revocation endpoint;
 * - the broker's client is registered with a secret and authenticates with
 *   `client_secret_post`; the token endpoint refuses anything else (`Authorization: Basic`, or a
 *   body without `client_secret`) with `401 invalid_client`;
 * - access tokens live 300 s (`expires_in: 300`);
 * - a refresh answer carries NO `refresh_token`: the one issued with the code stays valid and is
 *   to be used again (RFC 6749 §6 allows this; oidc-provider rotates, so the peer does not
 *   rotate and deletes the field from refresh answers);
 * - `offline_access` gives a refresh token without `prompt=consent` (oCIS clients are trusted).
 */
import { invalidClient, startPeer, type Peer } from './oidc-peer.js';

export const OCIS_CLIENT_ID = 'token-broker';

export interface OcisPeerOptions {
  readonly clientSecret: string;
}

export function startOcisPeer(options: OcisPeerOptions): Promise<Peer> {
  return startPeer({
    host: '127.0.0.4',
    mountPath: '',
    routes: {
      authorization: '/signin/v1/identifier/_/authorize',
      token: '/konnect/v1/token',
      userinfo: '/konnect/v1/userinfo',
      jwks: '/konnect/v1/jwks.json',
      end_session: '/signin/v1/identifier/_/endsession',
    },
    client: {
      client_id: OCIS_CLIENT_ID,
      client_secret: options.clientSecret,
      token_endpoint_auth_method: 'client_secret_post',
    },
    offlineAccessWithoutConsent: true,
    configuration: () => ({
      rotateRefreshToken: false,
      ttl: { AccessToken: 300, IdToken: 3600 },
    }),
    checkClientRequest(req) {
      if (req.headers.authorization !== undefined) return invalidClient('this client authenticates with client_secret_post, not an Authorization header');
      if (!req.form.get('client_id') || !req.form.get('client_secret')) return invalidClient('client_id and client_secret are required in the request body');
      return undefined;
    },
    rewriteTokenResponse(req, status, body) {
      if (status === 200 && req.form.get('grant_type') === 'refresh_token') delete body['refresh_token'];
    },
  });
}
