/**
 * `GET|POST /callback`: the provider's authorization response (RFC 6749 §4.1.2).
 *
 * Checks run in order, and each gates the next: the state and this browser's transaction
 * cookie (one conditional delete: unknown, expired, used or foreign logins stop here with a
 * 400 and nothing else happens), then `iss` (RFC 9207), then the provider's error, and only then
 * the code exchange and the ID token (OIDC Core §3.1.3.7). A session is stored only after all.
 */
import type { JWTPayload } from 'jose';
import type { Client, Provider } from '../config/parse.js';
import { randomToken, sha256 } from '../crypto/random.js';
import { AppRedirectError, BrokerError, InvalidRequestError, TokenValidationError, UpstreamOAuthError, type ErrorCode } from '../errors.js';
import { clearCookie, serializeCookie, sessionCookieName, txnCookieName } from '../http/cookies.js';
import { errorFields } from '../log.js';
import { withDeadline, withinDeadline, type HttpOptions } from '../oauth/http.js';
import { validateLoginIdToken } from '../oauth/id-token.js';
import type { ProviderMetadata } from '../oauth/metadata.js';
import { exchangeCode, REVOCATION_BUDGET_MS, revokeToken, type UpstreamContext } from '../oauth/token-endpoint.js';
import type { TokenSet } from '../oauth/token-response.js';
import { parseScopeString } from '../oidc/scope.js';
import { identityOfLogin, sealIdentity } from '../oidc/session-identity.js';
import type { Runtime } from '../runtime.js';
import { takeLogin, type LoginRecord } from '../store/logins.js';
import { createSession } from '../store/sessions.js';
import { newCredential, newSessionId } from './credentials.js';
import { lookupAttributes } from './session-lookup.js';
import { single, withParams } from './params.js';
import { storedTokens } from './session-tokens.js';
import { appErrorLocation } from './start-login.js';
import { downstreamFor, sealDownstream } from './downstream.js';

export interface CallbackResult {
  /** Where to send the browser: always the app's registered redirect URI. */
  readonly location: string;
  readonly cookies: string[];
}

/** A callback whose state, browser binding and `iss` have been checked. Only this is exchanged. */
export interface ValidatedCallback {
  readonly login: LoginRecord;
  readonly client: Client;
  readonly provider: Provider;
  readonly metadata: ProviderMetadata;
  readonly code: string;
}

/**
 * Does `iss` name a configured provider other than `provider`, on another server? The same
 * server may be configured twice, once with its issuer and once as plain OAuth 2.0 without one
 * (both then name its issuer in their responses): `provider`'s token endpoint on that issuer's
 * origin, or that provider's own, is that server's. An operator whose server's token endpoint
 * lives elsewhere sets `issuer` on the plain entry too.
 */
function isAnotherProvidersIssuer(rt: Runtime, provider: Provider, iss: string): boolean {
  const sameServer = (other: Provider) => provider.tokenEndpoint !== undefined
    && (provider.tokenEndpoint === other.tokenEndpoint || originOf(provider.tokenEndpoint) === originOf(other.issuer!));
  return Object.values(rt.config.providers).some((other) => other !== provider && other.issuer === iss && !sameServer(other));
}

/** The configuration's URLs were checked when it was parsed. */
const originOf = (url: string) => new URL(url).origin;

/**
 * A provider's error code passed on to the app as it is: the characters of every registered code
 * (RFC 6749 §4.1.2.1, OIDC Core §3.1.2.6) and of any sane extension. RFC 6749's grammar allows
 * far more (`<`, quotes, spaces), which an app that shows the code could be made to render.
 */
const ERROR_CODE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Handles a callback. Throws `InvalidRequestError` (400, nothing redirected) when the login
 * cannot be identified; every later failure redirects to the app with an error.
 */
export async function handleCallback(rt: Runtime, params: URLSearchParams, cookies: ReadonlyMap<string, string>): Promise<CallbackResult> {
  const deadline = Date.now() + LOGIN_UPSTREAM_BUDGET_MS;
  const state = single(params, 'state');
  if (state === undefined) throw new InvalidRequestError('"state" is missing');
  const stateHash = sha256(state);
  const secure = rt.config.secureCookies;
  const txnName = txnCookieName(secure, stateHash);
  const txn = cookies.get(txnName);
  if (!txn) throw new InvalidRequestError('this login was not started in this browser, or it has expired');
  const login = await takeLogin(rt.table, stateHash, sha256(txn), rt.now(), randomToken(16));
  if (!login) throw new InvalidRequestError('unknown, expired or already used "state", or a login started in another browser');

  const client = rt.config.clients[login.clientId];
  const provider = rt.config.providers[login.provider];
  if (!client || !provider) throw new InvalidRequestError('the login names a client or provider that is no longer configured');
  const cleared = [clearCookie(txnName, { sameSite: provider.responseMode === 'form_post' ? 'None' : 'Lax', secure: secure || provider.responseMode === 'form_post' })];
  // From here on the app's redirect URI is known: every failure goes back to it (RFC 6749 §4.1.2.1).
  const toApp = (error: ErrorCode, description?: string, cause?: unknown): never => {
    throw new AppRedirectError(error, description ?? error, appErrorLocation(rt, login.redirectUri, error, login.appState, description), { cookies: cleared, cause });
  };
  const log = rt.log.child({ client_id: client.id, provider: provider.name });

  let metadata: ProviderMetadata;
  try {
    metadata = await withinDeadline(rt.metadata.get(provider), deadline, 'the identity provider\'s metadata could not be read in time');
  } catch (err) {
    log.error('upstream.error', { step: 'discovery', ...errorFields(err) });
    return toApp('temporarily_unavailable', 'the identity provider cannot be reached');
  }

  // RFC 9207 §2.4: a mix-up defence, before anything is sent to a token endpoint. A provider
  // configured without an issuer (plain OAuth 2.0, static endpoints) cannot be compared with, but
  // an `iss` naming another configured provider says where the code really came from: a response
  // of that provider's, steered to this login by a provider that sent the browser there (RFC
  // 9700 §4.4), whose token endpoint would receive the code.
  const iss = params.getAll('iss');
  if (iss.length > 1 || (iss.length === 1 && (provider.issuer !== undefined ? iss[0] !== provider.issuer : isAnotherProvidersIssuer(rt, provider, iss[0]!)))) {
    log.warn('login.rejected', { reason: 'iss does not match the provider' });
    return toApp('access_denied', 'the authorization response came from another issuer');
  }
  if (iss.length === 0 && metadata.issParameterSupported) {
    log.warn('login.rejected', { reason: 'iss missing' });
    return toApp('access_denied', 'the authorization response lacks "iss"');
  }

  const error = params.get('error');
  if (error !== null) {
    log.info('login.provider_error', { upstream_error: ERROR_CODE.test(error) ? error : 'invalid' });
    // The provider's own error code goes back to the app as it is (when it is well-formed).
    throw new AppRedirectError('access_denied', 'the provider refused the login', appErrorLocation(rt, login.redirectUri, ERROR_CODE.test(error) ? error : 'access_denied', login.appState), { cookies: cleared });
  }
  const codes = params.getAll('code');
  if (codes.length !== 1 || !codes[0]) return toApp('invalid_request', 'the authorization response has no single "code"');

  try {
    return await completeLogin(rt, { login, client, provider, metadata, code: codes[0] }, cleared, deadline);
  } catch (err) {
    log.metric('login.failed', { LoginsFailed: 1 }, errorFields(err));
    if (!(err instanceof BrokerError)) {
      // Not the user's doing: e.g. a client secret that cannot be read (SecretReadError names the
      // reference, never its value). An error, so the operator's error alarm sees it.
      log.error('login.error', errorFields(err));
      return toApp('server_error', 'the login could not be completed', err);
    }
    const code = err instanceof TokenValidationError || err instanceof UpstreamOAuthError ? 'access_denied' : err.code;
    return toApp(code, err instanceof UpstreamOAuthError ? 'the identity provider refused the login' : err.description, err);
  }
}

/**
 * What a login may spend at the provider, from the callback's arrival: discovery, the code
 * exchange (with its retry after the secret is read again), the ID token's keys and a downstream
 * login share one deadline; a revocation after a refused login has `REVOCATION_BUDGET_MS` more.
 * So a callback answers inside the function's 25 s whatever the provider does, and the browser
 * gets a redirect to the app, never a gateway error.
 */
export const LOGIN_UPSTREAM_BUDGET_MS = 14_000;

async function completeLogin(rt: Runtime, cb: ValidatedCallback, cookies: string[], deadline: number): Promise<CallbackResult> {
  const { login, provider } = cb;
  const http = withDeadline(rt.upstreamHttp(provider.name), deadline);
  const upstream: UpstreamContext = { provider, metadata: cb.metadata, secrets: rt.secrets, http };
  const tokens = await exchangeCode(upstream, {
    code: cb.code,
    redirectUri: `${rt.config.publicUrl}/callback`,
    codeVerifier: login.codeVerifier,
  });
  // From here on a failure stores nothing, so the refresh token just obtained is revoked.
  try {
    return await createLoginSession(rt, cb, tokens, cookies, http, deadline);
  } catch (err) {
    await revokeQuietly(rt, { ...upstream, http: withDeadline(rt.upstreamHttp(provider.name), Date.now() + REVOCATION_BUDGET_MS) }, tokens);
    throw err;
  }
}

async function createLoginSession(rt: Runtime, cb: ValidatedCallback, obtained: TokenSet, cookies: string[], http: HttpOptions, deadline: number): Promise<CallbackResult> {
  const { login, client, provider } = cb;
  let tokens = obtained;
  let idTokenClaims: JWTPayload | undefined;
  if (provider.openid) {
    if (!tokens.idToken) throw new TokenValidationError('the token response has no ID token');
    idTokenClaims = await withinDeadline(
      validateLoginIdToken({ provider, metadata: cb.metadata, jwks: rt.jwks.get(provider, cb.metadata) }, tokens.idToken, login.nonce!),
      deadline, 'the identity provider\'s keys could not be read in time',
    );
  } else {
    // Without openid nothing checks an ID token, so none is kept or shown.
    tokens = { ...tokens, idToken: undefined };
  }
  const downstream = await downstreamFor(provider)?.login(rt, tokens.accessToken, undefined, http);

  const now = rt.now();
  const ttl = rt.config.ttl;
  const sid = newSessionId();
  const cipher = await rt.cipher();
  const stored = await storedTokens(cipher, sid, tokens, now, now + ttl.sessionMaxSeconds, false);
  const identity = identityOfLogin(parseScopeString(login.appScope ?? ''), login.appNonce, idTokenClaims, now);
  const base = {
    sid,
    provider: provider.name,
    clientId: client.id,
    clientType: client.type,
    createdAt: now,
    maxExpiresAt: now + ttl.sessionMaxSeconds,
    ...stored,
    // What the broker's own ID tokens need: one attribute, never the provider's whole token twice.
    identity: await sealIdentity(cipher, sid, identity),
    // Keyed hashes of the provider's sub and sid, so back-channel logout finds the session (same write).
    ...lookupAttributes(cipher, provider.name, { sub: identity.idpSub, sid: identity.idpSid }),
    ...(downstream ? await sealDownstream(cipher, sid, downstream, now) : {}),
  };
  if (client.type === 'native') {
    const code = newCredential(sid);
    const codeExpiresAt = now + ttl.codeSeconds;
    // Until the code is redeemed the session lives only as long as the code.
    await createSession(rt.table, {
      ...base,
      idleExpiresAt: codeExpiresAt,
      expiresAt: codeExpiresAt,
      codeHash: code.hash,
      codeChallenge: login.appCodeChallenge!,
      codeRedirectUri: login.redirectUri,
      codeExpiresAt,
    });
    rt.log.metric('login.completed', { LoginsCompleted: 1 }, { client_id: client.id, provider: provider.name, client_type: 'native' });
    return { location: withParams(login.redirectUri, { code: code.value, state: login.appState, iss: rt.config.publicUrl }), cookies };
  }
  const cookie = newCredential(sid);
  const idleExpiresAt = now + ttl.sessionIdleSeconds;
  await createSession(rt.table, { ...base, idleExpiresAt, expiresAt: Math.min(idleExpiresAt, stored.hardExpiresAt), cookieHash: cookie.hash });
  const maxAge = Math.max(0, Math.min(idleExpiresAt, stored.hardExpiresAt) - now);
  rt.log.metric('login.completed', { LoginsCompleted: 1 }, { client_id: client.id, provider: provider.name, client_type: 'web' });
  return {
    location: withParams(login.redirectUri, { state: login.appState, iss: rt.config.publicUrl }),
    cookies: [...cookies, serializeCookie(sessionCookieName(rt.config.secureCookies), cookie.value, { sameSite: 'Strict', secure: rt.config.secureCookies, maxAge })],
  };
}

/** Revokes a refresh token just obtained for a login that is then refused (best effort). */
async function revokeQuietly(rt: Runtime, upstream: UpstreamContext, tokens: TokenSet): Promise<void> {
  if (!tokens.refreshToken) return;
  try {
    await revokeToken(upstream, tokens.refreshToken, 'refresh_token');
  } catch (err) {
    rt.log.warn('upstream.error', { provider: upstream.provider.name, step: 'revocation', ...errorFields(err) });
  }
}
