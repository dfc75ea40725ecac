/**
 * A hostile (or merely broken) OpenID provider for integration tests: a small node:http server
 * with a discovery document, an authorization endpoint that answers at once (no login page),
 * a JWKS, a revocation endpoint, and a token endpoint whose answer is chosen by `mode`.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';

/** What the token endpoint answers. */
export type TokenMode =
  /** A valid answer: Bearer access token, refresh token, correct ID token. */
  | 'ok'
  /** A valid ID token with a second audience and `azp` = the client (allowed by OIDC Core §3.1.3.7). */
  | 'extra-aud-with-azp'
  | 'status-500'
  /** The socket is destroyed before any answer (connection reset). */
  | 'reset'
  /** Never answers. */
  | 'hang'
  /** A JSON body larger than 256 KiB, with Content-Length. */
  | 'huge'
  /** A JSON body larger than 256 KiB, chunked (no Content-Length). */
  | 'huge-chunked'
  | 'html'
  | 'no-access-token'
  | 'token-type-mac'
  | 'no-id-token'
  | 'alg-none'
  | 'hs256'
  | 'wrong-nonce'
  | 'no-nonce'
  | 'wrong-aud'
  | 'extra-aud-no-azp'
  | 'wrong-iss'
  | 'expired'
  | 'no-iat'
  /** Signed by a key whose `kid` is not in the JWKS. */
  | 'unknown-kid'
  /** Signed by another key under the JWKS's own `kid`. */
  | 'forged'
  /** `sub` a number, an empty string, or longer than OIDC Core §2's 255 characters. */
  | 'sub-number'
  | 'sub-empty'
  | 'sub-too-long'
  /** `sid` a number (OIDC Back-Channel Logout §2.1: a string). */
  | 'sid-number'
  /** A valid ID token whose `aud` is a list holding only the client (RFC 7519 §4.1.3). */
  | 'aud-list'
  /** A valid ID token without `kid`, while the JWKS holds two RSA keys (a rollover). */
  | 'no-kid'
  /** `token_type` DPoP (refused: 502), with a new refresh token all the same. */
  | 'dpop-with-refresh-token';

export interface HostileOptions {
  readonly host?: string;
  /** The `client_id` the ID tokens are issued to. */
  readonly clientId?: string;
  /** Advertise and serve a revocation endpoint (default true). */
  readonly revocation?: boolean;
}

export interface Hostile {
  readonly issuer: string;
  mode: TokenMode;
  /** `redirect`: 302 back to the callback; `form_post`: an auto-submitting HTML form. */
  authorizeMode: 'redirect' | 'form_post';
  /** Every request to the authorization endpoint, by its query. */
  readonly authorizeRequests: URLSearchParams[];
  /** Every request body received at the token endpoint. */
  readonly tokenRequests: URLSearchParams[];
  /** Every request body received at the revocation endpoint. */
  readonly revocations: URLSearchParams[];
  /** Refresh tokens handed out by the token endpoint, in order. */
  readonly issuedRefreshTokens: string[];
  /** The revocation endpoint takes requests and never answers. */
  revocationHangs: boolean;
  close(): Promise<void>;
}

const b64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

export async function startHostile(options: HostileOptions = {}): Promise<Hostile> {
  const host = options.host ?? '127.0.0.3';
  const clientId = options.clientId ?? 'broker';
  const withRevocation = options.revocation ?? true;
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const stranger = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'RS256', use: 'sig' };
  // The JWKS's second key, as during a rollover: nothing is signed with it.
  const next = { ...(await exportJWK((await generateKeyPair('RS256', { extractable: true })).publicKey)), kid: 'k2', alg: 'RS256', use: 'sig' };
  const nonces = new Map<string, string>();

  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const { port } = (server.address() as AddressInfo);
  const issuer = `http://${host}:${port}`;

  const state: Hostile = {
    issuer,
    mode: 'ok',
    authorizeMode: 'redirect',
    authorizeRequests: [],
    tokenRequests: [],
    revocations: [],
    issuedRefreshTokens: [],
    revocationHangs: false,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };

  // One authentication for the provider's life: a refreshed ID token keeps the login's auth_time.
  const authTime = Math.floor(Date.now() / 1000);
  const idToken = async (mode: TokenMode, nonce: string | undefined): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    const claims: JWTPayload = { sub: 'mallory', nonce, auth_time: authTime };
    let aud: string | string[] = clientId;
    let iss = issuer;
    let iat: number | undefined = now;
    let exp = now + 300;
    if (mode === 'wrong-nonce') claims['nonce'] = randomBytes(16).toString('base64url');
    if (mode === 'no-nonce') delete claims['nonce'];
    if (mode === 'wrong-aud') aud = 'someone-else';
    if (mode === 'extra-aud-no-azp') aud = [clientId, 'someone-else'];
    if (mode === 'extra-aud-with-azp') {
      aud = [clientId, 'someone-else'];
      claims['azp'] = clientId;
    }
    if (mode === 'wrong-iss') iss = 'https://evil.example';
    if (mode === 'expired') {
      iat = now - 7200;
      exp = now - 3600;
    }
    if (mode === 'no-iat') iat = undefined;
    if (mode === 'sub-number') (claims as Record<string, unknown>)['sub'] = 42;
    if (mode === 'sub-empty') claims['sub'] = '';
    if (mode === 'sub-too-long') claims['sub'] = 'm'.repeat(256);
    if (mode === 'sid-number') claims['sid'] = 7 as unknown as string;
    if (mode === 'aud-list') aud = [clientId];
    const body: JWTPayload = { ...claims, iss, aud, exp, ...(iat !== undefined ? { iat } : {}) };
    if (mode === 'alg-none') return `${b64url({ alg: 'none', typ: 'JWT' })}.${b64url(body)}.`;
    if (mode === 'hs256') {
      return new SignJWT(body).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(new TextEncoder().encode('x'.repeat(32)));
    }
    const kid = mode === 'unknown-kid' ? 'k-unknown' : 'k1';
    const key = mode === 'unknown-kid' || mode === 'forged' ? stranger.privateKey : privateKey;
    return new SignJWT(body).setProtectedHeader(mode === 'no-kid' ? { alg: 'RS256', typ: 'JWT' } : { alg: 'RS256', kid, typ: 'JWT' }).sign(key);
  };

  const sendJson = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' }).end(text);
  };

  const tokenEndpoint = async (res: http.ServerResponse, req: http.IncomingMessage, params: URLSearchParams) => {
    const mode = state.mode;
    const refreshToken = `rt-${randomBytes(12).toString('base64url')}`;
    const base = { access_token: `at-${randomBytes(12).toString('base64url')}`, token_type: 'Bearer', expires_in: 300, scope: 'openid' };
    switch (mode) {
      case 'status-500':
        return sendJson(res, 500, { error: 'server_error' });
      case 'reset':
        req.socket.destroy();
        return;
      case 'hang':
        return; // the socket stays open until the server closes
      case 'huge': {
        const text = JSON.stringify({ ...base, padding: 'x'.repeat(300 * 1024) });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
        return;
      }
      case 'huge-chunked': {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"access_token":"a","token_type":"Bearer","padding":"`);
        const chunk = 'x'.repeat(16 * 1024);
        for (let i = 0; i < 20; i++) res.write(chunk);
        res.end('"}');
        return;
      }
      case 'html':
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<html><body>${JSON.stringify(base)}</body></html>`);
        return;
      case 'no-access-token': {
        const { access_token: _, ...rest } = base;
        return sendJson(res, 200, { ...rest, refresh_token: refreshToken });
      }
      case 'token-type-mac':
        return sendJson(res, 200, { ...base, token_type: 'mac', refresh_token: refreshToken });
      case 'dpop-with-refresh-token':
        state.issuedRefreshTokens.push(refreshToken);
        return sendJson(res, 200, { ...base, token_type: 'DPoP', refresh_token: refreshToken });
      default: {
        const nonce = nonces.get(params.get('code') ?? '');
        state.issuedRefreshTokens.push(refreshToken);
        return sendJson(res, 200, {
          ...base,
          refresh_token: refreshToken,
          ...(mode === 'no-id-token' ? {} : { id_token: await idToken(mode, nonce) }),
        });
      }
    }
  };

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', issuer);
      const body = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
      const route = `${req.method} ${url.pathname}`;
      const run = async () => {
        switch (route) {
          case 'GET /.well-known/openid-configuration':
            return sendJson(res, 200, {
              issuer,
              authorization_endpoint: `${issuer}/authorize`,
              token_endpoint: `${issuer}/token`,
              jwks_uri: `${issuer}/jwks`,
              ...(withRevocation ? { revocation_endpoint: `${issuer}/revoke` } : {}),
              response_types_supported: ['code'],
              subject_types_supported: ['public'],
              id_token_signing_alg_values_supported: ['RS256'],
              token_endpoint_auth_methods_supported: ['client_secret_post'],
              authorization_response_iss_parameter_supported: true,
            });
          case 'GET /jwks':
            return sendJson(res, 200, { keys: [jwk, next] });
          case 'GET /authorize': {
            state.authorizeRequests.push(url.searchParams);
            const code = `c-${randomBytes(12).toString('base64url')}`;
            const nonce = url.searchParams.get('nonce');
            if (nonce) nonces.set(code, nonce);
            const fields = { code, state: url.searchParams.get('state') ?? '', iss: issuer };
            const redirectUri = url.searchParams.get('redirect_uri') ?? '';
            if (state.authorizeMode === 'form_post') {
              const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/"/g, '&quot;').replace(/</g, '&lt;');
              const inputs = Object.entries(fields).map(([k, v]) => `<input type="hidden" name="${k}" value="${esc(v)}"/>`).join('\n');
              res.writeHead(200, { 'content-type': 'text/html' })
                .end(`<!DOCTYPE html><html><body onload="document.forms[0].submit()"><form method="post" action="${esc(redirectUri)}">${inputs}</form></body></html>`);
              return;
            }
            const target = new URL(redirectUri);
            for (const [k, v] of Object.entries(fields)) target.searchParams.set(k, v);
            res.writeHead(302, { location: target.href }).end();
            return;
          }
          case 'POST /token':
            state.tokenRequests.push(body);
            return tokenEndpoint(res, req, body);
          case 'POST /revoke':
            if (!withRevocation) break;
            state.revocations.push(body);
            if (state.revocationHangs) return; // the socket stays open until the server closes
            res.writeHead(200).end();
            return;
        }
        sendJson(res, 404, { error: 'not_found' });
      };
      run().catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  });

  return state;
}
