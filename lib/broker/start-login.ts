/**
 * `GET /login`: checks the app's request, stores a login record and sends the browser to the
 * provider's authorization endpoint (RFC 6749 §4.1.1, RFC 7636, OIDC Core §3.1.2.1).
 *
 * Until the redirect URI is trusted, errors are `400` JSON and never a redirect. After that they
 * go back to the app (RFC 6749 §4.1.2.1) with `iss` (RFC 9207).
 */
import type { Client, Provider } from '../config/parse.js';
import { redirectUriMatches } from '../config/urls.js';
import { randomToken, s256, sha256 } from '../crypto/random.js';
import { AppRedirectError, BrokerError, InvalidRequestError, oauthDescription, type ErrorCode } from '../errors.js';
import { serializeCookie, txnCookieName } from '../http/cookies.js';
import { errorFields } from '../log.js';
import type { Runtime } from '../runtime.js';
import { grantScope, scopeString, type AppScope } from '../oidc/scope.js';
import { putLogin } from '../store/logins.js';
import { PKCE_VALUE, single, withParams } from './params.js';

export const MAX_STATE_LENGTH = 512;
/** The app's `nonce` (CONTRACT.md v2): carried into the broker's ID token. */
export const MAX_NONCE_LENGTH = 512;

/** The redirect to the provider, and the transaction cookie binding the login to this browser. */
export interface StartLoginResult {
  readonly location: string;
  readonly cookie: string;
}

/** A trusted redirect back to the app with an error (RFC 6749 §4.1.2.1, RFC 9207). */
export function appErrorLocation(rt: Runtime, redirectUri: string, error: string, state: string | undefined, description?: string): string {
  return withParams(redirectUri, { error, error_description: description === undefined ? undefined : oauthDescription(description), state, iss: rt.config.publicUrl });
}

/**
 * `acr_values` for an IDP that lists external login providers (Milestone XProtect): an app's
 * choice must be `idp:<loginProviderId>` of a listed provider (null when it is not); without a
 * choice, the configured value or else the first listed provider, as Milestone's own clients do.
 */
async function externalProviderAcr(rt: Runtime, provider: Provider, requested: string | undefined): Promise<string | null | undefined> {
  const listed = await rt.metadata.externalProviders(provider);
  if (requested !== undefined) {
    const id = /^idp:(.+)$/.exec(requested)?.[1];
    return id !== undefined && listed.some((p) => p.loginProviderId === id) ? requested : null;
  }
  if (provider.authorizationParams['acr_values'] !== undefined || listed.length === 0) return undefined;
  return `idp:${listed[0]!.loginProviderId}`;
}

/** Resolves client and redirect URI; throws `InvalidRequestError` (400, no redirect). */
export function trustedRedirect(rt: Runtime, query: URLSearchParams): { client: Client; redirectUri: string } {
  const clientId = single(query, 'client_id');
  const client = clientId === undefined ? undefined : rt.config.clients[clientId];
  if (!client || !Object.hasOwn(rt.config.clients, clientId!)) throw new InvalidRequestError('unknown "client_id"');
  const requested = single(query, 'redirect_uri');
  if (requested === undefined) {
    if (client.type === 'native') throw new InvalidRequestError('"redirect_uri" is required for native clients');
    return { client, redirectUri: client.redirectUris[0]! };
  }
  if (!client.redirectUris.some((r) => redirectUriMatches(r, requested, client.type === 'native'))) {
    throw new InvalidRequestError('"redirect_uri" is not registered for this client');
  }
  return { client, redirectUri: requested };
}

export async function startLogin(rt: Runtime, query: URLSearchParams): Promise<StartLoginResult> {
  const { client, redirectUri } = trustedRedirect(rt, query);
  const rawStates = query.getAll('state');
  const stateOk = rawStates.length <= 1 && (rawStates[0] ?? '').length <= MAX_STATE_LENGTH;
  const appState = stateOk ? rawStates[0] || undefined : undefined;
  /** Once the redirect URI is trusted, every error goes back to the app (RFC 6749 §4.1.2.1). */
  const fail = (error: ErrorCode, description: string, cause?: unknown): never => {
    rt.log.info('login.rejected', { client_id: client.id, reason: description });
    throw new AppRedirectError(error, description, appErrorLocation(rt, redirectUri, error, appState, description), { cause });
  };
  if (!stateOk) return fail('invalid_request', `"state" must be given once and hold at most ${MAX_STATE_LENGTH} characters`);

  let provider: Provider;
  let appCodeChallenge: string | undefined;
  let appScope: readonly AppScope[];
  let appNonce: string | undefined;
  const forwarded: Record<string, string> = {};
  try {
    const responseType = single(query, 'response_type');
    if (responseType !== undefined && responseType !== 'code') {
      return fail('unsupported_response_type', 'only "response_type=code" is supported');
    }
    // OIDC Core §6.1, §6.2: an OP that takes no request objects MUST say so, not ignore them.
    if (query.has('request')) return fail('request_not_supported', 'request objects ("request") are not supported');
    if (query.has('request_uri')) return fail('request_uri_not_supported', '"request_uri" is not supported');
    if (query.has('registration')) return fail('registration_not_supported', '"registration" is not supported');
    // The answer comes back in the redirect's query, and in no other way.
    const responseMode = single(query, 'response_mode');
    if (responseMode !== undefined && responseMode !== 'query') return fail('invalid_request', 'only "response_mode=query" is supported');
    const providerName = single(query, 'provider') ?? client.providers[0]!;
    if (!client.providers.includes(providerName)) return fail('invalid_request', '"provider" is not available to this client');
    provider = rt.config.providers[providerName]!;
    if (client.type === 'native') {
      appCodeChallenge = single(query, 'code_challenge');
      const method = single(query, 'code_challenge_method');
      if (appCodeChallenge === undefined) return fail('invalid_request', '"code_challenge" is required (PKCE, RFC 7636)');
      // RFC 7636 §4.3: an absent method means "plain", which the broker refuses.
      if (method !== 'S256') return fail('invalid_request', '"code_challenge_method" must be S256');
      if (!/^[A-Za-z0-9_-]{43}$/.test(appCodeChallenge)) return fail('invalid_request', '"code_challenge" is not a S256 challenge');
    }
    // The app's scope is the broker's to grant; it never changes what the provider is asked for.
    const granted = grantScope(single(query, 'scope'), client, provider);
    if (!granted.ok) return fail('invalid_scope', granted.description);
    appScope = granted.scope;
    appNonce = single(query, 'nonce');
    if (appNonce !== undefined && appNonce.length > MAX_NONCE_LENGTH) return fail('invalid_request', `"nonce" must hold at most ${MAX_NONCE_LENGTH} characters`);
    for (const name of provider.forwardParams) {
      const value = single(query, name);
      if (value !== undefined) forwarded[name] = value;
    }
  } catch (err) {
    if (err instanceof AppRedirectError) throw err;
    if (err instanceof BrokerError) return fail(err.code, err.description);
    throw err;
  }

  let authorizationEndpoint: string;
  try {
    const metadata = await rt.metadata.get(provider);
    authorizationEndpoint = metadata.authorizationEndpoint;
    if (metadata.document['external_providers_uri'] !== undefined) {
      const acr = await externalProviderAcr(rt, provider, forwarded['acr_values']);
      if (acr === null) return fail('invalid_request', '"acr_values" must be idp:<id> of a listed external provider');
      if (acr !== undefined) forwarded['acr_values'] = acr;
    }
  } catch (err) {
    if (err instanceof AppRedirectError) throw err;
    rt.log.error('upstream.error', { provider: provider.name, step: 'discovery', ...errorFields(err) });
    return fail('temporarily_unavailable', 'the identity provider cannot be reached');
  }

  const now = rt.now();
  const state = randomToken(32);
  const stateHash = sha256(state);
  const txn = randomToken(32);
  const nonce = provider.openid ? randomToken(32) : undefined;
  const codeVerifier = provider.pkce ? randomToken(32) : undefined;
  const stored = putLogin(rt.table, {
    stateHash,
    txnHash: sha256(txn),
    clientId: client.id,
    provider: provider.name,
    redirectUri,
    appState,
    appCodeChallenge,
    codeVerifier,
    nonce,
    ...(appScope.length ? { appScope: scopeString(appScope) } : {}),
    ...(appNonce !== undefined ? { appNonce } : {}),
    createdAt: now,
    expiresAt: now + rt.config.ttl.loginSeconds,
  });
  try {
    await stored;
  } catch (err) {
    // The redirect URI is trusted: even a storage outage goes back to the app, not to a JSON page.
    if (!(err instanceof BrokerError)) throw err;
    rt.log.error('login.storage_failed', errorFields(err));
    return fail(err.code, 'the broker cannot start a login right now', err);
  }

  const location = withParams(authorizationEndpoint, {
    ...provider.authorizationParams,
    ...forwarded,
    response_type: 'code',
    client_id: provider.clientId,
    redirect_uri: `${rt.config.publicUrl}/callback`,
    // `"scopes": []`: no scope parameter at all (RFC 6749 §3.3).
    scope: provider.scopes.length ? provider.scopes.join(' ') : undefined,
    state,
    nonce,
    code_challenge: codeVerifier ? s256(codeVerifier) : undefined,
    code_challenge_method: codeVerifier ? 'S256' : undefined,
  });
  // form_post arrives as a cross-site POST, which carries no SameSite=Lax cookie.
  const formPost = provider.responseMode === 'form_post';
  const cookie = serializeCookie(txnCookieName(rt.config.secureCookies, stateHash), txn, {
    maxAge: rt.config.ttl.loginSeconds,
    sameSite: formPost ? 'None' : 'Lax',
    secure: rt.config.secureCookies || formPost,
  });
  rt.log.metric('login.started', { LoginsStarted: 1 }, { client_id: client.id, provider: provider.name });
  return { location, cookie };
}
