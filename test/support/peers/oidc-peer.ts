/**
 * The shared machinery of the provider peers: a real oidc-provider (panva's certified OpenID
 * provider) on its own loopback address, mounted under a path where the real provider has one
 * (Okta's `/oauth2/default`, XProtect's `/IDP`), with the endpoint paths of the provider it
 * imitates, and a thin node:http layer in front of it that does what oidc-provider is too lenient
 * or too different for: refusing the wrong client authentication method, rewriting answers, and
 * serving extra routes of the same origin. Every authorization, token and revocation request is
 * recorded so tests can assert what the broker sent on the wire.
 *
 * The provider is created in two steps: `startPeer` listens (so its URLs are known before the
 * broker's configuration is written) and `attach(publicUrl)` registers the broker's client with
 * the redirect URI `{publicUrl}/callback`, which is only known once the harness picked a port.
 */
import { randomBytes } from 'node:crypto';
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';
import Provider from 'oidc-provider';
import { WEB_ORIGIN } from '../harness.js';
import { demoAccount } from '../../../local/oidc-provider.js';

export { DEMO_USER } from '../../../local/oidc-provider.js';

/** A request the peer received, as it arrived (the body before oidc-provider parsed it). */
export interface RecordedRequest {
  readonly method: string;
  /** The path inside the provider's mount, without the query. */
  readonly path: string;
  readonly query: URLSearchParams;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** The body as a form (empty for other content types). */
  readonly form: URLSearchParams;
}

/** A token endpoint answer as the peer sent it (after any rewrite). */
export interface RecordedTokenResponse {
  readonly grantType: string;
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** An answer the peer's front layer sends instead of passing the request to oidc-provider. */
export interface Refusal {
  readonly status: number;
  readonly body: Record<string, string>;
  readonly headers?: Record<string, string>;
}

export interface PeerRoutes {
  readonly authorization: string;
  readonly token: string;
  readonly userinfo: string;
  readonly jwks: string;
  readonly revocation?: string;
  readonly end_session?: string;
}

export interface PeerOptions {
  /** A loopback address of its own, so its cookies never mix with the broker's in a jar. */
  readonly host: string;
  /** Where the provider is mounted: '' for the origin's root, else e.g. '/oauth2/default'. */
  readonly mountPath: string;
  readonly routes: PeerRoutes;
  /** The broker's client at the provider, without `redirect_uris`. */
  readonly client: Record<string, unknown>;
  /** oidc-provider settings merged over the peer defaults. */
  readonly configuration?: (urls: { origin: string; issuer: string }) => Record<string, unknown>;
  /**
   * Issue a refresh token whenever the authorization request asked for `offline_access`, without
   * oidc-provider's rule that such a request must also carry `prompt=consent` (the rule of OIDC
   * Core §11 that Okta, konnect and IdentityServer do not apply to trusted first-party clients).
   */
  readonly offlineAccessWithoutConsent?: boolean;
  /** Checked before oidc-provider sees an authorization request; a refusal is answered as is. */
  checkAuthorization?(query: URLSearchParams): Refusal | undefined;
  /** Checked before oidc-provider sees a token or revocation request. */
  checkClientRequest?(req: RecordedRequest, endpoint: 'token' | 'revocation'): Refusal | undefined;
  /** Rewrites a token endpoint JSON answer in place (e.g. drops `refresh_token`). */
  rewriteTokenResponse?(req: RecordedRequest, status: number, body: Record<string, unknown>): void;
  /** Other routes of the same origin; resolves true when it answered the request. */
  extraRoutes?(req: IncomingMessage, res: ServerResponse, url: URL, body: string): Promise<boolean> | boolean;
}

export interface Peer {
  readonly origin: string;
  readonly issuer: string;
  /** Paths (full, with the mount) of discovery requests, in order. */
  readonly discoveryRequests: string[];
  readonly authorizations: URLSearchParams[];
  readonly tokenRequests: RecordedRequest[];
  readonly tokenResponses: RecordedTokenResponse[];
  readonly revocations: RecordedRequest[];
  /** The oidc-provider instance, once attached. */
  readonly provider: any;
  /** Registers the broker (redirect URI `{publicUrl}/callback`) and starts serving. */
  attach(publicUrl: string): void;
  close(): Promise<void>;
}

export const invalidClient = (description: string): Refusal => ({
  status: 401,
  body: { error: 'invalid_client', error_description: description },
  headers: { 'www-authenticate': 'Basic realm="peer"' },
});

export const invalidRequest = (description: string): Refusal => ({
  status: 400,
  body: { error: 'invalid_request', error_description: description },
});

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Lets a JSON answer be read and changed before it leaves: Koa (under oidc-provider) sends a body
 * with one `res.end(text)` after setting its headers, so the length can still be corrected.
 */
function interceptJson(res: ServerResponse, edit: (status: number, body: Record<string, unknown>) => void): void {
  const chunks: Buffer[] = [];
  const original = res.end.bind(res) as (chunk?: unknown) => ServerResponse;
  const r = res as any;
  r.write = (chunk: unknown) => {
    chunks.push(Buffer.from(chunk as string));
    return true;
  };
  r.end = (chunk?: unknown) => {
    if (chunk !== undefined && typeof chunk !== 'function') chunks.push(Buffer.from(chunk as string));
    let text = Buffer.concat(chunks).toString('utf8');
    try {
      const body = JSON.parse(text) as Record<string, unknown>;
      edit(res.statusCode, body);
      text = JSON.stringify(body);
      if (!res.headersSent) res.setHeader('content-length', Buffer.byteLength(text));
    } catch {
      // not JSON: passed on unchanged
    }
    return original(text);
  };
}


export async function startPeer(options: PeerOptions): Promise<Peer> {
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, options.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const origin = `http://${options.host}:${port}`;
  const issuer = `${origin}${options.mountPath}`;
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const jwk: JWK = { ...(await exportJWK(privateKey)), kid: `${options.host}-1`, alg: 'RS256', use: 'sig' };
  const mount = options.mountPath;
  const routes = options.routes;

  /** Nonces of authorization requests that asked for offline_access (see offlineAccessWithoutConsent). */
  const offlineNonces = new Set<string>();
  let provider: any;
  let handler: ((req: IncomingMessage, res: ServerResponse) => void) | undefined;

  const peer: Peer = {
    origin,
    issuer,
    discoveryRequests: [],
    authorizations: [],
    tokenRequests: [],
    tokenResponses: [],
    revocations: [],
    get provider() {
      return provider;
    },
    attach(publicUrl: string) {
      const extra = options.configuration?.({ origin, issuer }) ?? {};
      const offline = options.offlineAccessWithoutConsent
        ? {
            issueRefreshToken: async (_ctx: unknown, client: any, code: any) =>
              client.grantTypeAllowed('refresh_token') && (code.kind === 'RefreshToken' || offlineNonces.has(code.nonce)),
            expiresWithSession: async () => false,
          }
        : {};
      provider = new Provider(issuer, {
        clients: [{
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          post_logout_redirect_uris: [`${WEB_ORIGIN}/bye`],
          ...options.client,
          redirect_uris: [`${publicUrl}/callback`],
        }],
        jwks: { keys: [jwk] },
        cookies: { keys: [randomBytes(16).toString('hex')] },
        pkce: { required: () => true },
        routes,
        claims: { openid: ['sub'], profile: ['name', 'given_name', 'family_name'], email: ['email', 'email_verified'] },
        conformIdTokenClaims: false,
        findAccount: demoAccount,
        features: {
          devInteractions: { enabled: true },
          revocation: { enabled: routes.revocation !== undefined },
          rpInitiatedLogout: { enabled: routes.end_session !== undefined },
        },
        ...offline,
        ...extra,
        ttl: {
          AccessToken: 300,
          AuthorizationCode: 60,
          IdToken: 3600,
          RefreshToken: 86_400,
          Interaction: 600,
          Session: 3600,
          Grant: 86_400,
          ...(extra['ttl'] as Record<string, number> | undefined),
        },
      });
      handler = provider.callback();
    },
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };

  const refuse = (res: ServerResponse, refusal: Refusal) => sendJson(res, refusal.status, refusal.body, refusal.headers);

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', origin);
    const isPost = req.method === 'POST';
    // Bodies are read here for the routes that need them; oidc-provider then takes the parsed
    // text from `req.body` (its fallback for a body an upstream layer already read).
    const inner = mount === '' ? url.pathname : url.pathname.startsWith(`${mount}/`) ? url.pathname.slice(mount.length) : undefined;
    const endpoint = inner === routes.token ? 'token' : routes.revocation !== undefined && inner === routes.revocation ? 'revocation' : undefined;
    const consumed = isPost && (endpoint !== undefined || options.extraRoutes !== undefined);
    const body = consumed ? await readBody(req) : '';
    if (options.extraRoutes && (await options.extraRoutes(req, res, url, body))) return;
    if (!handler || inner === undefined) {
      sendJson(res, 404, { error: 'not_found' });
      return;
    }
    if (inner === '/.well-known/openid-configuration') peer.discoveryRequests.push(url.pathname);
    if (inner === routes.authorization) {
      peer.authorizations.push(new URLSearchParams(url.searchParams));
      const refusal = options.checkAuthorization?.(url.searchParams);
      if (refusal) return refuse(res, refusal);
      const nonce = url.searchParams.get('nonce');
      if (nonce && (url.searchParams.get('scope') ?? '').split(' ').includes('offline_access')) offlineNonces.add(nonce);
    }
    if (endpoint && isPost) {
      const contentType = String(req.headers['content-type'] ?? '');
      const recorded: RecordedRequest = {
        method: req.method ?? 'POST',
        path: inner,
        query: url.searchParams,
        headers: req.headers,
        body,
        form: /^application\/x-www-form-urlencoded/i.test(contentType) ? new URLSearchParams(body) : new URLSearchParams(),
      };
      (endpoint === 'token' ? peer.tokenRequests : peer.revocations).push(recorded);
      const refusal = options.checkClientRequest?.(recorded, endpoint);
      if (refusal) return refuse(res, refusal);
      if (endpoint === 'token') {
        interceptJson(res, (status, json) => {
          options.rewriteTokenResponse?.(recorded, status, json);
          peer.tokenResponses.push({ grantType: recorded.form.get('grant_type') ?? '', status, body: { ...json } });
        });
      }
    }
    if (consumed) (req as IncomingMessage & { body?: string }).body = body;
    if (mount !== '') {
      // Mounted the way connect/express mount an app: the prefix moves to `originalUrl`, and
      // oidc-provider builds every URL it hands out (discovery, interactions, resume) with it.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = req.url;
      const rest = (req.url ?? '/').slice(mount.length);
      req.url = rest.startsWith('/') ? rest : `/${rest}`;
    }
    handler(req, res);
  }

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err) });
      else res.destroy();
    });
  });
  return peer;
}

/** Decodes an `Authorization: Basic` header into its raw (still form-encoded) id and secret. */
export function basicParts(header: string | undefined): { id: string; secret: string } | undefined {
  const m = /^Basic ([A-Za-z0-9+/=]+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const i = text.indexOf(':');
  return i < 0 ? undefined : { id: text.slice(0, i), secret: text.slice(i + 1) };
}

/** RFC 6749 Appendix B encoding, as a reference for assertions. */
export function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
