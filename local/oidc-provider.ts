/**
 * A real OpenID provider (panva's certified oidc-provider) on loopback, for the demo and the
 * tests: one confidential client for the broker, a demo user, refresh token rotation, revocation
 * and RP-initiated logout. Its login form accepts any user name; the demo user is "alice".
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair } from 'jose';
import Provider from 'oidc-provider';

export interface OidcProviderOptions {
  readonly host?: string;
  readonly port?: number;
  readonly clientId: string;
  /** Absent: a public client (token_endpoint_auth_method none). */
  readonly clientSecret?: string;
  readonly clientAuth?: 'client_secret_basic' | 'client_secret_post' | 'none';
  readonly redirectUris: readonly string[];
  readonly postLogoutRedirectUris?: readonly string[];
  readonly accessTokenSeconds?: number;
  readonly idTokenSeconds?: number;
  readonly rotateRefreshToken?: boolean;
  /** Issue access tokens as signed JWTs for a demo API (resource `urn:broker:demo-api`). */
  readonly jwtAccessTokens?: boolean;
  /**
   * OpenID Connect Back-Channel Logout 1.0: the client's `backchannel_logout_uri`. Ending a user's
   * session here (`/session/end`) then posts a logout token to it.
   */
  readonly backchannelLogoutUri?: string;
  /**
   * Whether logout tokens carry `sid` (and ID tokens the session's `sid`); without it they carry
   * only `sub`.
   *
   * @default true
   */
  readonly backchannelLogoutSessionRequired?: boolean;
  /** Extra oidc-provider configuration, merged over these defaults. */
  readonly configuration?: Record<string, unknown>;
}

export interface RunningProvider {
  readonly issuer: string;
  readonly provider: Provider;
  readonly server: http.Server;
  /** The provider's signing key (RS256), for tests that sign tokens as the provider would. */
  readonly signingKey: { readonly kid: string; readonly privateKey: CryptoKey };
  close(): Promise<void>;
}

export const DEMO_USER = 'alice';
const DEMO_API = 'urn:broker:demo-api';

/** The account of any login name (oidc-provider's dev interactions); "alice" is the demo user. */
export async function demoAccount(_ctx: unknown, id: string) {
  return {
    accountId: id,
    claims: async () => ({
      sub: id,
      name: id === DEMO_USER ? 'Alice Example' : id,
      given_name: id === DEMO_USER ? 'Alice' : id,
      family_name: 'Example',
      email: `${id}@example.com`,
      email_verified: true,
    }),
  };
}

export async function startOidcProvider(options: OidcProviderOptions): Promise<RunningProvider> {
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://${options.host ?? '127.0.0.1'}:${port}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const KID = 'demo-1';
  const auth = options.clientAuth ?? (options.clientSecret ? 'client_secret_basic' : 'none');
  const provider = new Provider(issuer, {
    clients: [{
      client_id: options.clientId,
      ...(options.clientSecret ? { client_secret: options.clientSecret } : {}),
      token_endpoint_auth_method: auth,
      redirect_uris: options.redirectUris,
      post_logout_redirect_uris: options.postLogoutRedirectUris ?? [],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      ...(options.backchannelLogoutUri ? {
        backchannel_logout_uri: options.backchannelLogoutUri,
        backchannel_logout_session_required: options.backchannelLogoutSessionRequired ?? true,
      } : {}),
    }],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid: KID, alg: 'RS256', use: 'sig' }] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    pkce: { required: () => true },
    rotateRefreshToken: options.rotateRefreshToken ?? true,
    claims: { openid: ['sub'], profile: ['name', 'given_name', 'family_name'], email: ['email', 'email_verified'] },
    conformIdTokenClaims: false,
    findAccount: demoAccount,
    // oidc-provider refuses outgoing requests to special-use addresses (SSRF protection), loopback
    // included; here the broker it posts logout tokens to is on loopback by design.
    ...(options.backchannelLogoutUri ? {
      fetch: (url: string, init: RequestInit & { dispatcher?: unknown }) => {
        const { dispatcher: _ssrfGuard, ...rest } = init;
        return fetch(url, rest);
      },
    } : {}),
    features: {
      devInteractions: { enabled: true },
      revocation: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      backchannelLogout: { enabled: options.backchannelLogoutUri !== undefined },
      ...(options.jwtAccessTokens ? {
        resourceIndicators: {
          enabled: true,
          defaultResource: () => DEMO_API,
          useGrantedResource: () => true,
          getResourceServerInfo: () => ({ scope: 'profile email', audience: DEMO_API, accessTokenFormat: 'jwt', accessTokenTTL: options.accessTokenSeconds ?? 300 }),
        },
      } : {}),
    },
    ttl: {
      AccessToken: options.accessTokenSeconds ?? 300,
      AuthorizationCode: 60,
      IdToken: options.idTokenSeconds ?? 300,
      RefreshToken: 86_400,
      Interaction: 600,
      Session: 3600,
      Grant: 86_400,
    },
    ...options.configuration,
  });
  // Composed at the first request, so middleware a test adds with provider.use() right after the
  // start takes part (Koa composes its middleware when callback() is called).
  let handle: ReturnType<Provider['callback']> | undefined;
  server.on('request', (req, res) => (handle ??= provider.callback())(req, res));
  return {
    issuer,
    provider,
    server,
    signingKey: { kid: KID, privateKey },
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
