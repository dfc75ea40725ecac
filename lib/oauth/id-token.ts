/**
 * ID token validation (OIDC Core §3.1.3.7), in a fixed order: signature first (key from the
 * provider's JWKS, algorithm among those it advertises, never `none`), then `iss`, `aud`, `exp`,
 * `iat` (jose's checks, `jwt-verify.ts`), then `azp` and `nonce` here. No claim is read before
 * the signature is checked.
 *
 * ID tokens in refresh answers (OIDC Core §12.2) must keep `iss`, `sub`, `aud`, `azp` and
 * `auth_time` of the login's.
 */
import { createLocalJWKSet, decodeJwt, type JSONWebKeySet, type JWTPayload } from 'jose';
// The classes themselves, not jose's `errors` namespace: a namespace object would put a helper in
// a chunk of its own, which every function would load before its secret reads (functions/handler.ts).
import { JOSEError, JWKSNoMatchingKey } from 'jose/errors';
import type { Provider } from '../config/parse.js';
import { TokenValidationError, UpstreamUnavailableError } from '../errors.js';
import { upstreamRequest } from './http.js';
import { verifyJwt, type KeyResolver } from './jwt-verify.js';
import type { ProviderMetadata } from './metadata.js';

/** The key for a JWS header, from a provider's JWKS (jose's key-resolver shape). */
export type JwksResolver = KeyResolver;

export interface JwksCache {
  get(provider: Provider, metadata: ProviderMetadata): JwksResolver;
  clear(): void;
}

/** One remote JWKS per provider; fetched again at once on an unknown `kid`, at most every 5 s. */
export function createJwksCache(options: { timeoutMs?: number } = {}): JwksCache {
  const cache = new Map<string, { uri: string; jwks: JwksResolver }>();
  return {
    get(provider, metadata) {
      const uri = metadata.jwksUri;
      if (!uri) throw new TokenValidationError('the provider has no JWKS to check ID tokens with');
      const hit = cache.get(provider.name);
      if (hit && hit.uri === uri) return hit.jwks;
      const jwks = remoteJwks(uri, { cooldownMs: 5_000, maxAgeMs: 10 * 60_000, timeoutMs: options.timeoutMs ?? 5_000 });
      cache.set(provider.name, { uri, jwks });
      return jwks;
    },
    clear() {
      cache.clear();
    },
  };
}

/**
 * jose's remote JWKS (`createRemoteJWKSet`: kept `maxAgeMs`, fetched again at once for a `kid` it
 * lacks unless fetched within `cooldownMs`, concurrent fetches shared), fetched over the kept-alive
 * node:http connections of lib/oauth/http.ts instead of `fetch`: jose's own builds a `Headers` and
 * calls `fetch`, whose first use loads undici (12-30 ms on this machine), on the first ID token
 * each container checks. A fetch that fails or times out throws `JwksFetchError`, a non-200 or
 * non-JSON answer jose's own error for it (both `isKeyFetchFailure`). A failed fetch is the
 * answer for the next `cooldownMs`; keys past `maxAgeMs` serve on while a fetch fails.
 */
function remoteJwks(uri: string, options: { cooldownMs: number; maxAgeMs: number; timeoutMs: number }): JwksResolver {
  let local: JwksResolver | undefined;
  let fetchedAt: number | undefined;
  let pending: Promise<void> | undefined;
  // A fetch that failed, and when: within the cooldown its error is the answer, not another fetch
  // (a provider whose JWKS is down is not asked again by every login and refresh).
  let failed: { at: number; error: unknown } | undefined;
  // Within the cooldown after a failure its error is the answer, outside the shared fetch: a
  // rejection inside it would skip the `finally` that clears it, and stick.
  const reload = () => (failed && Date.now() < failed.at + options.cooldownMs ? Promise.reject(failed.error) : (pending ??= (async () => {
    try {
      let res;
      try {
        res = await upstreamRequest(uri, { headers: { accept: 'application/json, application/jwk-set+json' } }, { timeoutMs: options.timeoutMs });
      } catch (cause) {
        throw new JwksFetchError('the JSON Web Key Set could not be fetched', { cause });
      }
      if (res.status !== 200) throw new JOSEError('Expected 200 OK from the JSON Web Key Set HTTP response');
      let json: unknown;
      try {
        json = JSON.parse(res.text);
      } catch (cause) {
        throw new JOSEError('Failed to parse the JSON Web Key Set HTTP response as JSON', { cause });
      }
      local = createLocalJWKSet(json as JSONWebKeySet);
      fetchedAt = Date.now();
      failed = undefined;
    } catch (error) {
      failed = { at: Date.now(), error };
      throw error;
    } finally {
      pending = undefined;
    }
  })()));
  return async (header, token) => {
    if (!local || fetchedAt === undefined) await reload();
    else if (Date.now() >= fetchedAt + options.maxAgeMs) {
      // Past its age the set is fetched again; while the provider cannot give it, the keys it
      // gave last still check the tokens they signed.
      await reload().catch(() => undefined);
    }
    try {
      return await local!(header, token);
    } catch (err) {
      if (err instanceof JWKSNoMatchingKey && !(fetchedAt !== undefined && Date.now() < fetchedAt + options.cooldownMs)) {
        await reload();
        return local!(header, token);
      }
      throw err;
    }
  };
}

export interface IdTokenContext {
  readonly provider: Provider;
  readonly metadata: ProviderMetadata;
  readonly jwks: JwksResolver;
  /** Seconds since the epoch; jose's clock otherwise. */
  readonly now?: number;
}

/** Identity claims an ID token must keep across refreshes. */
export interface IdentityClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string | readonly string[];
  readonly azp?: string;
  readonly auth_time?: number;
}

const CLOCK_TOLERANCE_SECONDS = 60;

async function verifyCommon(ctx: IdTokenContext, idToken: string): Promise<JWTPayload> {
  let payload: JWTPayload;
  try {
    // jose's checks; the signature by node:crypto when the token is plainly valid (jwt-verify.ts).
    payload = await verifyJwt(idToken, ctx.jwks, {
      algorithms: ctx.metadata.idTokenSigningAlgs,
      issuer: ctx.provider.issuer!,
      audience: ctx.provider.clientId,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
      clockTolerance: CLOCK_TOLERANCE_SECONDS,
      ...(ctx.now !== undefined ? { currentDate: new Date(ctx.now * 1000) } : {}),
    });
  } catch (cause) {
    // Not getting the keys is the provider being unavailable, not the token being wrong: the
    // caller must not end a session over a JWKS timeout or a key rollover inside the cooldown.
    if (isKeyFetchFailure(cause)) throw new UpstreamUnavailableError('the identity provider\'s signing keys could not be fetched', { cause });
    const code = (cause as { code?: string }).code ?? 'ERR_JWT_INVALID';
    throw new TokenValidationError(`the ID token failed validation (${code})`, { cause });
  }
  const aud = payload.aud!;
  const audiences = Array.isArray(aud) ? aud : [aud];
  // OIDC Core §3.1.3.7 items 3-5: other audiences only when `azp` names this client.
  if (payload.azp !== undefined && payload.azp !== ctx.provider.clientId) {
    throw new TokenValidationError('the ID token "azp" is not this client');
  }
  if (audiences.some((a) => a !== ctx.provider.clientId) && payload.azp !== ctx.provider.clientId) {
    throw new TokenValidationError('the ID token has another audience and no "azp" for this client');
  }
  if (payload.auth_time !== undefined && typeof payload.auth_time !== 'number') {
    throw new TokenValidationError('the ID token "auth_time" is not a number');
  }
  // OIDC Core §2: `sub` is a string of at most 255 characters (jose checks only that it is there);
  // `sid` (OIDC Back-Channel Logout §2.1), when present, a string.
  if (typeof payload.sub !== 'string' || payload.sub.length === 0 || payload.sub.length > 255) {
    throw new TokenValidationError('the ID token "sub" is not a string of 1 to 255 characters');
  }
  if (payload['sid'] !== undefined && typeof payload['sid'] !== 'string') {
    throw new TokenValidationError('the ID token "sid" is not a string');
  }
  return payload;
}

/** The provider's JWKS could not be fetched at all (unreachable, timed out, broken off). */
class JwksFetchError extends Error {
  override readonly name = 'JwksFetchError';
}

/**
 * A JWKS that could not be fetched or read: the provider unavailable, not a verdict on the token.
 * Only these: a failed fetch, a non-200 or non-JSON answer, a set that is not a JWKS, jose's
 * timeout. Anything else (a `kid` the set lacks, a key jose refuses, such as RSA under 2048 bits
 * or key data WebCrypto cannot import) is a validation failure.
 */
export function isKeyFetchFailure(err: unknown): boolean {
  if (err instanceof JwksFetchError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'ERR_JWKS_TIMEOUT' || code === 'ERR_JWKS_INVALID') return true;
  return code === 'ERR_JOSE_GENERIC' && /JSON Web Key Set/i.test(String((err as Error).message));
}

/** Validates the ID token of a login; `expectedNonce` is the one sent on the authorization request. */
export async function validateLoginIdToken(ctx: IdTokenContext, idToken: string, expectedNonce: string): Promise<JWTPayload> {
  const payload = await verifyCommon(ctx, idToken);
  // OIDC Core §3.1.3.7 item 11.
  if (typeof payload['nonce'] !== 'string' || payload['nonce'] !== expectedNonce) {
    throw new TokenValidationError('the ID token "nonce" is missing or does not match');
  }
  return payload;
}

/** Validates an ID token from a refresh answer against the session's identity (OIDC Core §12.2). */
export async function validateRefreshIdToken(ctx: IdTokenContext, idToken: string, session: IdentityClaims): Promise<JWTPayload> {
  const payload = await verifyCommon(ctx, idToken);
  const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
  // RFC 7519 §4.1.3: one audience may be a string or a list of one; the order of a list is no meaning.
  const audiences = (aud: unknown) => (Array.isArray(aud) ? [...(aud as unknown[])].map(String).sort() : aud === undefined ? [] : [String(aud)]);
  for (const claim of ['iss', 'sub', 'aud', 'azp', 'auth_time'] as const) {
    if (claim === 'aud' ? !same(audiences(payload.aud), audiences(session.aud)) : !same(payload[claim], session[claim])) {
      throw new TokenValidationError(`the refreshed ID token changed "${claim}"`);
    }
  }
  return payload;
}

/**
 * A refreshed ID token the provider's keys cannot check: signed with a key the JWKS does not list
 * yet (within jose's refetch cooldown, what a provider's key rollover looks like), or by a key it
 * lists that checks nothing (RSA under 2048 bits, key data WebCrypto cannot import). The keys are
 * at fault, not the token the token endpoint just gave: a refresh keeps the session, unchecked.
 */
export function isUnknownSigningKey(err: unknown): boolean {
  if (!(err instanceof TokenValidationError)) return false;
  const cause = err.cause as { code?: unknown; name?: unknown } | undefined;
  return cause?.code === 'ERR_JWKS_NO_MATCHING_KEY' || cause instanceof TypeError || cause?.name === 'DataError';
}

/** Identity claims of an ID token the broker validated and stored earlier. */
export function identityOf(idToken: string): IdentityClaims & JWTPayload {
  return decodeJwt(idToken) as IdentityClaims & JWTPayload;
}
