/**
 * A local stand-in for movingimage VideoManager Pro's login service, which is a Keycloak realm
 * (`https://login.movingimage.com/auth/realms/platform`). It speaks Keycloak's wire format on
 * loopback and is strict where a Keycloak realm configured for a confidential, PKCE-enforcing
 * client with refresh token rotation is strict:
 *
 * - discovery at `{issuer}/.well-known/openid-configuration`, endpoints under
 *   `{issuer}/protocol/openid-connect/{auth,token,certs,logout,revoke}`;
 * - authorization: exact `client_id` and `redirect_uri` (else an error page, no redirect),
 *   `response_type=code`, `response_mode` absent or `query` (anything else: an error redirect),
 *   PKCE with `S256` required; the answer is a 302 with `code`, `state`, `session_state`, `iss`;
 * - token and revocation endpoints: form bodies only, `client_secret_post` only (an
 *   `Authorization` header, a missing or wrong `client_secret` is `401 invalid_client`);
 * - the code is single use, bound to client and redirect URI, and needs the right
 *   `code_verifier` (else `400 invalid_grant`);
 * - the refresh grant needs the extra fields `response_type=token` and `scope=openid`
 *   (else `400 invalid_request`), like movingimage's own documented refresh request;
 * - every refresh rotates the refresh token (the previous one is then `invalid_grant`) and
 *   restarts `refresh_expires_in`; an expired refresh token is `invalid_grant`;
 * - token answers carry `token_type: "bearer"` (lowercase), `refresh_expires_in`,
 *   `not-before-policy`, `session_state` and an RS256 ID token with `azp`, `sid`,
 *   `session_state`, `auth_time`, `nonce` and `at_hash`.
 *
 * `now` is the peer's clock in epoch seconds; tests share it with the broker's clock so that
 * lifetimes pass together on both sides.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWTPayload } from 'jose';
import { readBody } from '../../../local/http-adapter.js';

export interface MovingimagePeerOptions {
  /** The realm name in the issuer path (movingimage's is `platform`). */
  readonly realm?: string;
  readonly clientId: string;
  readonly clientSecret: string;
  /** Epoch seconds; default the real clock. */
  readonly now?: () => number;
  /** `expires_in` of access tokens (Keycloak's "Access Token Lifespan"); default 300. */
  readonly accessTokenSeconds?: number;
  /** `refresh_expires_in` (Keycloak's "SSO Session Idle"); default 1800. */
  readonly sessionIdleSeconds?: number;
  /** Keycloak's "SSO Session Max"; default 36000. */
  readonly sessionMaxSeconds?: number;
}

export interface PeerRequest {
  readonly headers: http.IncomingHttpHeaders;
  readonly body: URLSearchParams;
  /** The peer's answer: status, OAuth error code (if any) and JSON body. */
  status: number;
  error?: string;
  response?: Record<string, unknown>;
}

export interface MovingimagePeer {
  readonly issuer: string;
  /** Valid redirect URIs of the client (Keycloak's "Valid redirect URIs"); exact match. */
  readonly redirectUris: string[];
  /** Keycloak's "Valid post logout redirect URIs"; exact match. */
  readonly postLogoutRedirectUris: string[];
  readonly authorizeRequests: URLSearchParams[];
  /** Every request to the token endpoint, with the answer given. */
  readonly tokenRequests: PeerRequest[];
  readonly revocations: PeerRequest[];
  readonly logouts: URLSearchParams[];
  /** Refresh tokens handed out, in order. */
  readonly issuedRefreshTokens: string[];
  /** Misbehaviour for tests of the broker's checks. */
  readonly hostile: {
    /** A refreshed ID token names another user. */
    changeSubOnRefresh: boolean;
  };
  /** What an administrator's "Sign out all active sessions" does. */
  endAllSessions(): void;
  close(): Promise<void>;
}

interface UserSession {
  readonly id: string;
  readonly sub: string;
  readonly authTime: number;
  readonly createdAt: number;
  readonly nonce: string | undefined;
  readonly scope: string;
  idleUntil: number;
  ended: boolean;
}

interface CodeGrant {
  readonly clientId: string;
  readonly redirectUri: string;
  readonly codeChallenge: string;
  readonly session: UserSession;
  readonly expiresAt: number;
  used: boolean;
}

interface RefreshGrant {
  readonly session: UserSession;
  readonly expiresAt: number;
  used: boolean;
}

const USER = { sub: '0d6c1f3e-8b0a-4f53-9e8e-2b5a9c7d4e11', preferred_username: 'alice', email: 'alice@example.com', name: 'Alice Example' };
const MAX_BODY = 64 * 1024;

/** Keycloak's error page for a request it cannot redirect back (bad client or redirect URI). */
function errorPage(res: http.ServerResponse, message: string): void {
  res.writeHead(400, { 'content-type': 'text/html;charset=utf-8' }).end(`<html><body><p id="kc-error-message">${message}</p></body></html>`);
}

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', pragma: 'no-cache' }).end(text);
}

/** `at_hash`: the left half of the SHA-256 of the access token, base64url (OIDC Core §3.1.3.6). */
function atHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest().subarray(0, 16).toString('base64url');
}

function s256(verifier: string): string {
  return createHash('sha256').update(verifier, 'ascii').digest('base64url');
}

export async function startMovingimagePeer(options: MovingimagePeerOptions): Promise<MovingimagePeer> {
  const realm = options.realm ?? 'platform';
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const accessTokenSeconds = options.accessTokenSeconds ?? 300;
  const idleSeconds = options.sessionIdleSeconds ?? 1800;
  const maxSeconds = options.sessionMaxSeconds ?? 36_000;
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomBytes(16).toString('base64url');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };

  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}/auth/realms/${realm}`;
  const oidc = `${issuer}/protocol/openid-connect`;

  const codes = new Map<string, CodeGrant>();
  const refreshTokens = new Map<string, RefreshGrant>();
  const sessions = new Set<UserSession>();

  const peer: MovingimagePeer = {
    issuer,
    redirectUris: [],
    postLogoutRedirectUris: [],
    authorizeRequests: [],
    tokenRequests: [],
    revocations: [],
    logouts: [],
    issuedRefreshTokens: [],
    hostile: { changeSubOnRefresh: false },
    endAllSessions() {
      for (const s of sessions) s.ended = true;
    },
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };

  const sign = (payload: JWTPayload, typ: string) => new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ, kid }).sign(privateKey);

  /** A token answer as Keycloak gives it, with a new (rotated) refresh token. */
  const tokenAnswer = async (session: UserSession, refreshed: boolean) => {
    const t = now();
    session.idleUntil = Math.min(t + idleSeconds, session.createdAt + maxSeconds);
    const accessToken = await sign({
      exp: t + accessTokenSeconds, iat: t, jti: randomUUID(), iss: issuer, aud: 'account', sub: session.sub, typ: 'Bearer',
      azp: options.clientId, session_state: session.id, sid: session.id, scope: session.scope, preferred_username: USER.preferred_username,
    }, 'JWT');
    const refreshToken = `${randomBytes(24).toString('base64url')}.${randomBytes(24).toString('base64url')}`;
    refreshTokens.set(refreshToken, { session, expiresAt: session.idleUntil, used: false });
    peer.issuedRefreshTokens.push(refreshToken);
    const sub = refreshed && peer.hostile.changeSubOnRefresh ? randomUUID() : session.sub;
    const idToken = await sign({
      exp: t + accessTokenSeconds, iat: t, auth_time: session.authTime, jti: randomUUID(), iss: issuer, aud: options.clientId, sub, typ: 'ID',
      azp: options.clientId, ...(session.nonce !== undefined ? { nonce: session.nonce } : {}), session_state: session.id, sid: session.id,
      at_hash: atHash(accessToken), email_verified: true, name: USER.name, preferred_username: USER.preferred_username, email: USER.email,
    }, 'JWT');
    return {
      access_token: accessToken,
      expires_in: accessTokenSeconds,
      refresh_expires_in: session.idleUntil - t,
      refresh_token: refreshToken,
      token_type: 'bearer',
      id_token: idToken,
      'not-before-policy': 0,
      session_state: session.id,
      scope: session.scope,
    };
  };

  const authorize = (res: http.ServerResponse, q: URLSearchParams) => {
    peer.authorizeRequests.push(q);
    // Until client and redirect URI are known, Keycloak shows an error page and redirects nowhere.
    if (q.get('client_id') !== options.clientId) return errorPage(res, 'Client not found.');
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!peer.redirectUris.includes(redirectUri)) return errorPage(res, 'Invalid parameter: redirect_uri');
    const back = (params: Record<string, string | undefined>) => {
      const u = new URL(redirectUri);
      for (const [k, v] of Object.entries(params)) if (v !== undefined) u.searchParams.set(k, v);
      res.writeHead(302, { location: u.href }).end();
    };
    const state = q.get('state') ?? undefined;
    const fail = (error: string, description: string) => back({ error, error_description: description, state, iss: issuer });
    if (q.get('response_type') !== 'code') return fail('unsupported_response_type', 'Client is not allowed to initiate browser login with given response_type.');
    const responseMode = q.get('response_mode');
    if (responseMode !== null && responseMode !== 'query') return fail('invalid_request', 'Invalid parameter: response_mode');
    const scope = q.get('scope') ?? '';
    if (!scope.split(' ').includes('openid')) return fail('invalid_scope', 'Invalid scopes: openid is required');
    const challenge = q.get('code_challenge');
    if (q.get('code_challenge_method') !== 'S256') return fail('invalid_request', 'Missing parameter: code_challenge_method');
    if (!challenge || !/^[A-Za-z0-9_-]{43}$/.test(challenge)) return fail('invalid_request', 'Invalid parameter: code_challenge');
    const t = now();
    const session: UserSession = {
      id: randomUUID(), sub: USER.sub, authTime: t, createdAt: t, nonce: q.get('nonce') ?? undefined,
      scope: 'openid profile email', idleUntil: t + idleSeconds, ended: false,
    };
    sessions.add(session);
    const code = `${randomUUID()}.${session.id}.${randomUUID()}`;
    codes.set(code, { clientId: options.clientId, redirectUri, codeChallenge: challenge, session, expiresAt: t + 60, used: false });
    back({ state, session_state: session.id, iss: issuer, code });
  };

  /** `client_secret_post` and nothing else. */
  const clientAuthError = (headers: http.IncomingHttpHeaders, body: URLSearchParams): string | undefined => {
    if (headers.authorization !== undefined) return 'Client authentication with an Authorization header is not allowed for this client (client_secret_post)';
    if (body.get('client_id') !== options.clientId) return 'Invalid client or Invalid client credentials';
    if (body.get('client_secret') === null) return 'Client secret not provided in request';
    if (body.get('client_secret') !== options.clientSecret) return 'Invalid client or Invalid client credentials';
    return undefined;
  };

  const isForm = (headers: http.IncomingHttpHeaders) => /^application\/x-www-form-urlencoded\b/i.test(headers['content-type'] ?? '');

  const token = async (res: http.ServerResponse, headers: http.IncomingHttpHeaders, body: URLSearchParams) => {
    const record: PeerRequest = { headers, body, status: 200 };
    peer.tokenRequests.push(record);
    const answer = (status: number, json: Record<string, unknown>) => {
      record.status = status;
      record.response = json;
      if (typeof json['error'] === 'string') record.error = json['error'];
      sendJson(res, status, json);
    };
    if (!isForm(headers)) return answer(415, { error: 'invalid_request', error_description: 'Content-Type must be application/x-www-form-urlencoded' });
    const authError = clientAuthError(headers, body);
    if (authError) return answer(401, { error: 'invalid_client', error_description: authError });
    const t = now();
    switch (body.get('grant_type')) {
      case 'authorization_code': {
        const code = body.get('code') ?? '';
        const grant = codes.get(code);
        if (!grant || grant.used || grant.expiresAt <= t) return answer(400, { error: 'invalid_grant', error_description: 'Code not valid' });
        // Keycloak spends a code on its first presentation, right or wrong.
        grant.used = true;
        if (grant.clientId !== body.get('client_id')) return answer(400, { error: 'invalid_grant', error_description: 'Auth error' });
        if (grant.redirectUri !== body.get('redirect_uri')) return answer(400, { error: 'invalid_grant', error_description: 'Incorrect redirect_uri' });
        const verifier = body.get('code_verifier');
        if (verifier === null) return answer(400, { error: 'invalid_grant', error_description: 'PKCE code verifier not specified' });
        if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || s256(verifier) !== grant.codeChallenge) {
          return answer(400, { error: 'invalid_grant', error_description: 'PKCE verification failed: Invalid code verifier' });
        }
        if (grant.session.ended) return answer(400, { error: 'invalid_grant', error_description: 'Session not active' });
        return answer(200, await tokenAnswer(grant.session, false));
      }
      case 'refresh_token': {
        // movingimage's refresh request names these two fields; a refresh without them is refused.
        if (body.get('response_type') !== 'token') return answer(400, { error: 'invalid_request', error_description: 'Missing parameter: response_type=token' });
        if (!(body.get('scope') ?? '').split(' ').includes('openid')) return answer(400, { error: 'invalid_request', error_description: 'Missing parameter: scope=openid' });
        const grant = refreshTokens.get(body.get('refresh_token') ?? '');
        if (!grant) return answer(400, { error: 'invalid_grant', error_description: 'Invalid refresh token' });
        if (grant.used) return answer(400, { error: 'invalid_grant', error_description: 'Maximum allowed refresh token reuse exceeded' });
        if (grant.expiresAt <= t || grant.session.idleUntil <= t) return answer(400, { error: 'invalid_grant', error_description: 'Token is not active' });
        if (grant.session.ended) return answer(400, { error: 'invalid_grant', error_description: 'Session not active' });
        grant.used = true;
        return answer(200, await tokenAnswer(grant.session, true));
      }
      default:
        return answer(400, { error: 'unsupported_grant_type', error_description: 'Unsupported grant_type' });
    }
  };

  /** RFC 7009; revoking a refresh token ends the client's session at Keycloak. */
  const revoke = (res: http.ServerResponse, headers: http.IncomingHttpHeaders, body: URLSearchParams) => {
    const record: PeerRequest = { headers, body, status: 200 };
    peer.revocations.push(record);
    if (!isForm(headers)) {
      record.status = 415;
      return sendJson(res, 415, { error: 'invalid_request', error_description: 'Content-Type must be application/x-www-form-urlencoded' });
    }
    const authError = clientAuthError(headers, body);
    if (authError) {
      record.status = 401;
      record.error = 'invalid_client';
      return sendJson(res, 401, { error: 'invalid_client', error_description: authError });
    }
    const token = body.get('token');
    if (!token) {
      record.status = 400;
      record.error = 'invalid_request';
      return sendJson(res, 400, { error: 'invalid_request', error_description: 'Token not provided' });
    }
    const grant = refreshTokens.get(token);
    if (grant) grant.session.ended = true;
    res.writeHead(200, { 'cache-control': 'no-store', 'content-length': 0 }).end();
  };

  /** RP-initiated logout (Keycloak 18+): a registered post-logout URI needs id_token_hint or client_id. */
  const logout = async (res: http.ServerResponse, q: URLSearchParams) => {
    peer.logouts.push(q);
    const hint = q.get('id_token_hint');
    let sid: string | undefined;
    if (hint) {
      try {
        const { payload } = await jwtVerify(hint, publicKey, { issuer, audience: options.clientId, algorithms: ['RS256'], clockTolerance: 10 ** 9 });
        sid = typeof payload['sid'] === 'string' ? payload['sid'] : undefined;
      } catch {
        return errorPage(res, 'Invalid parameter: id_token_hint');
      }
    }
    const target = q.get('post_logout_redirect_uri');
    if (target !== null) {
      if (!hint && q.get('client_id') !== options.clientId) return errorPage(res, 'Missing parameters: id_token_hint');
      if (!peer.postLogoutRedirectUris.includes(target)) return errorPage(res, 'Invalid redirect uri');
    }
    for (const s of sessions) if (s.id === sid) s.ended = true;
    if (target === null) {
      res.writeHead(200, { 'content-type': 'text/html;charset=utf-8' }).end('<html><body>You are logged out</body></html>');
      return;
    }
    const u = new URL(target);
    const state = q.get('state');
    if (state !== null) u.searchParams.set('state', state);
    res.writeHead(302, { location: u.href }).end();
  };

  const discovery = () => ({
    issuer,
    authorization_endpoint: `${oidc}/auth`,
    token_endpoint: `${oidc}/token`,
    introspection_endpoint: `${oidc}/token/introspect`,
    userinfo_endpoint: `${oidc}/userinfo`,
    end_session_endpoint: `${oidc}/logout`,
    jwks_uri: `${oidc}/certs`,
    revocation_endpoint: `${oidc}/revoke`,
    grant_types_supported: ['authorization_code', 'refresh_token', 'password'],
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    subject_types_supported: ['public', 'pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    token_endpoint_auth_methods_supported: ['client_secret_post'],
    revocation_endpoint_auth_methods_supported: ['client_secret_post'],
    code_challenge_methods_supported: ['S256'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    claims_supported: ['aud', 'sub', 'iss', 'auth_time', 'name', 'preferred_username', 'email', 'email_verified', 'acr', 'azp', 'nonce', 'sid'],
    authorization_response_iss_parameter_supported: true,
    frontchannel_logout_supported: true,
    frontchannel_logout_session_supported: true,
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    readBody(req, MAX_BODY, (received) => {
      const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
      const raw = received?.toString('utf8') ?? '';
      const body = new URLSearchParams(isForm(req.headers) ? raw : '');
      const route = `${req.method} ${url.pathname}`;
      const base = new URL(issuer).pathname;
      const run = async () => {
        if (!received) return sendJson(res, 413, { error: 'invalid_request', error_description: 'Request too large' });
        switch (route) {
          case `GET ${base}/.well-known/openid-configuration`:
            return sendJson(res, 200, discovery());
          case `GET ${base}/protocol/openid-connect/certs`:
            return sendJson(res, 200, { keys: [jwk] });
          case `GET ${base}/protocol/openid-connect/auth`:
            return authorize(res, url.searchParams);
          case `POST ${base}/protocol/openid-connect/token`:
            return token(res, req.headers, body);
          case `POST ${base}/protocol/openid-connect/revoke`:
            return revoke(res, req.headers, body);
          case `GET ${base}/protocol/openid-connect/logout`:
            return logout(res, url.searchParams);
          default:
            if (url.pathname.startsWith(`${base}/protocol/openid-connect/`) && req.method !== 'GET' && req.method !== 'POST') {
              return sendJson(res, 405, { error: 'invalid_request', error_description: 'Method not allowed' });
            }
            res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"Unable to find matching target resource method"}');
        }
      };
      run().catch((err: unknown) => {
        if (!res.headersSent) sendJson(res, 500, { error: 'server_error', error_description: String(err) });
      });
    });
  });

  return peer;
}
