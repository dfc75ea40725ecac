/**
 * A local stand-in for a "Proto-style" OAuth 2.0 site: plain OAuth 2.0 (no OpenID Connect, no
 * discovery, no ID token), static endpoints, and a token endpoint that takes JSON bodies only.
 * It is strict where such sites are strict:
 *
 * - authorization (`/oauth/authorize`): exact `client_id` and `redirect_uri` (else an error page,
 *   no redirect), `response_type=code`, scopes only from its list (`read`, `write`); unknown
 *   parameters (`nonce`, `code_challenge`, ...) are ignored, as RFC 6749 §3.1 requires; it does
 *   not implement PKCE;
 * - token (`/oauth/token`) and revocation (`/oauth/revoke`): `Content-Type: application/json`
 *   only (a form body is `415`), client credentials in the JSON body only (`client_id` +
 *   `client_secret`; missing or wrong: `401 invalid_client`); unknown fields are ignored
 *   (RFC 6749 §3.2);
 * - codes are single use and bound to client and redirect URI;
 * - answers are `{"access_token", "refresh_token", "expires_in"}` and nothing else: no
 *   `token_type` (RFC 6749 §5.1 requires one; these sites leave it out);
 * - refresh tokens rotate (the previous one is then `invalid_grant`), or, with
 *   `rotateRefreshTokens = false`, the refresh answer has no `refresh_token` and the old one
 *   stays valid.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readBody } from '../../../local/http-adapter.js';

export interface ProtoPeerOptions {
  readonly clientId: string;
  readonly clientSecret: string;
  /** Epoch seconds; default the real clock. */
  readonly now?: () => number;
  /** `expires_in` of access tokens; default 3600. */
  readonly accessTokenSeconds?: number;
}

export interface JsonRequest {
  readonly contentType: string;
  readonly headers: http.IncomingHttpHeaders;
  /** The raw body text. */
  readonly text: string;
  /** The parsed JSON body, when it was JSON. */
  readonly json: Record<string, unknown> | undefined;
  status: number;
  error?: string;
  /** The JSON body of the peer's answer. */
  response?: Record<string, unknown>;
}

export interface ProtoPeer {
  readonly baseUrl: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly revocationEndpoint: string;
  /** Registered redirect URIs; exact match. */
  readonly redirectUris: string[];
  readonly authorizeRequests: URLSearchParams[];
  readonly tokenRequests: JsonRequest[];
  readonly revocations: JsonRequest[];
  readonly issuedRefreshTokens: string[];
  /** Whether a refresh hands out a new refresh token (default true). */
  rotateRefreshTokens: boolean;
  close(): Promise<void>;
}

export const PROTO_SCOPES = ['read', 'write'] as const;
const MAX_BODY = 64 * 1024;

interface Grant {
  readonly clientId: string;
  readonly scope: string;
  readonly expiresAt: number;
  readonly redirectUri?: string;
  used: boolean;
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' }).end(text);
}

function errorPage(res: http.ServerResponse, message: string): void {
  res.writeHead(400, { 'content-type': 'text/html; charset=utf-8' }).end(`<!doctype html><title>Error</title><p>${message}</p>`);
}

export async function startProtoPeer(options: ProtoPeerOptions): Promise<ProtoPeer> {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const accessTokenSeconds = options.accessTokenSeconds ?? 3600;
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const baseUrl = `http://127.0.0.1:${port}`;
  const codes = new Map<string, Grant>();
  const refreshTokens = new Map<string, Grant>();
  const accessTokens = new Set<string>();

  const peer: ProtoPeer = {
    baseUrl,
    authorizationEndpoint: `${baseUrl}/oauth/authorize`,
    tokenEndpoint: `${baseUrl}/oauth/token`,
    revocationEndpoint: `${baseUrl}/oauth/revoke`,
    redirectUris: [],
    authorizeRequests: [],
    tokenRequests: [],
    revocations: [],
    issuedRefreshTokens: [],
    rotateRefreshTokens: true,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };

  const authorize = (res: http.ServerResponse, q: URLSearchParams) => {
    peer.authorizeRequests.push(q);
    if (q.get('client_id') !== options.clientId) return errorPage(res, 'Unknown client.');
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!peer.redirectUris.includes(redirectUri)) return errorPage(res, 'The redirect_uri is not registered for this client.');
    const state = q.get('state') ?? undefined;
    const back = (params: Record<string, string | undefined>) => {
      const u = new URL(redirectUri);
      for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
      res.writeHead(302, { location: u.href }).end();
    };
    if (q.get('response_type') !== 'code') return back({ error: 'unsupported_response_type', state });
    const scopes = (q.get('scope') ?? '').split(' ').filter(Boolean);
    if (scopes.length === 0 || scopes.some((s) => !(PROTO_SCOPES as readonly string[]).includes(s))) {
      return back({ error: 'invalid_scope', error_description: `scopes are: ${PROTO_SCOPES.join(' ')}`, state });
    }
    const code = randomBytes(20).toString('hex');
    codes.set(code, { clientId: options.clientId, scope: scopes.join(' '), expiresAt: now() + 600, redirectUri, used: false });
    back({ code, state });
  };

  /** Reads a JSON request; answers and resolves undefined when it is not one this site takes. */
  const jsonRequest = (res: http.ServerResponse, headers: http.IncomingHttpHeaders, text: string, log: JsonRequest[]): JsonRequest | undefined => {
    const contentType = headers['content-type'] ?? '';
    let json: Record<string, unknown> | undefined;
    try {
      const parsed: unknown = JSON.parse(text);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
    } catch {
      // not JSON
    }
    const record: JsonRequest = { contentType, headers, text, json, status: 200 };
    log.push(record);
    const refuse = (status: number, error: string, description: string) => {
      record.status = status;
      record.error = error;
      sendJson(res, status, { error, error_description: description });
      return undefined;
    };
    if (!/^application\/json\b/i.test(contentType)) return refuse(415, 'invalid_request', 'Content-Type must be application/json');
    if (!json) return refuse(400, 'invalid_request', 'the body must be a JSON object');
    // Credentials in the JSON body, and only there.
    if (json['client_id'] !== options.clientId || typeof json['client_secret'] !== 'string' || json['client_secret'] !== options.clientSecret) {
      return refuse(401, 'invalid_client', 'client authentication failed');
    }
    return record;
  };

  const issue = (grant: Grant, withRefresh: boolean) => {
    const accessToken = randomBytes(24).toString('hex');
    accessTokens.add(accessToken);
    const out: Record<string, unknown> = { access_token: accessToken };
    if (withRefresh) {
      const refreshToken = randomBytes(24).toString('hex');
      refreshTokens.set(refreshToken, { clientId: grant.clientId, scope: grant.scope, expiresAt: now() + 30 * 24 * 3600, used: false });
      peer.issuedRefreshTokens.push(refreshToken);
      out['refresh_token'] = refreshToken;
    }
    out['expires_in'] = accessTokenSeconds;
    return out;
  };

  const token = (res: http.ServerResponse, headers: http.IncomingHttpHeaders, text: string) => {
    const record = jsonRequest(res, headers, text, peer.tokenRequests);
    if (!record) return;
    const body = record.json!;
    const answer = (status: number, json: Record<string, unknown>) => {
      record.status = status;
      record.response = json;
      if (typeof json['error'] === 'string') record.error = json['error'];
      sendJson(res, status, json);
    };
    const t = now();
    switch (body['grant_type']) {
      case 'authorization_code': {
        const grant = typeof body['code'] === 'string' ? codes.get(body['code']) : undefined;
        if (!grant || grant.used || grant.expiresAt <= t) return answer(400, { error: 'invalid_grant', error_description: 'the code is invalid or expired' });
        grant.used = true;
        if (body['redirect_uri'] !== grant.redirectUri) return answer(400, { error: 'invalid_grant', error_description: 'redirect_uri does not match' });
        return answer(200, issue(grant, true));
      }
      case 'refresh_token': {
        const presented = typeof body['refresh_token'] === 'string' ? body['refresh_token'] : '';
        const grant = refreshTokens.get(presented);
        if (!grant || grant.used || grant.expiresAt <= t) return answer(400, { error: 'invalid_grant', error_description: 'the refresh token is invalid' });
        if (peer.rotateRefreshTokens) grant.used = true;
        return answer(200, issue(grant, peer.rotateRefreshTokens));
      }
      default:
        return answer(400, { error: 'unsupported_grant_type', error_description: 'grant_type must be authorization_code or refresh_token' });
    }
  };

  const revoke = (res: http.ServerResponse, headers: http.IncomingHttpHeaders, text: string) => {
    const record = jsonRequest(res, headers, text, peer.revocations);
    if (!record) return;
    const presented = record.json!['token'];
    if (typeof presented !== 'string') {
      record.status = 400;
      record.error = 'invalid_request';
      return sendJson(res, 400, { error: 'invalid_request', error_description: '"token" is required' });
    }
    const grant = refreshTokens.get(presented);
    if (grant) grant.used = true;
    accessTokens.delete(presented);
    sendJson(res, 200, {});
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    readBody(req, MAX_BODY, (received) => {
      const url = new URL(req.url ?? '/', baseUrl);
      const text = received?.toString('utf8') ?? '';
      if (!received) return sendJson(res, 413, { error: 'invalid_request', error_description: 'request too large' });
      switch (`${req.method} ${url.pathname}`) {
        case 'GET /oauth/authorize':
          return authorize(res, url.searchParams);
        case 'POST /oauth/token':
          return token(res, req.headers, text);
        case 'POST /oauth/revoke':
          return revoke(res, req.headers, text);
        default:
          return sendJson(res, 404, { error: 'not_found' });
      }
    });
  });

  return peer;
}
