/**
 * Logout token validation (OpenID Connect Back-Channel Logout 1.0 §2.6), in a fixed order, cheap
 * to expensive: the token's shape, its header (`alg` among the provider's asymmetric algorithms,
 * never `none` or HMAC; `typ` `logout+jwt` when present), then the signature with the provider's
 * JWKS together with `iss` and `aud` (jose), and only then the other claims: `iat` recent, `exp`
 * not passed, `jti`, `events`, `sid` / `sub`, no `nonce`. No claim is read before the signature is
 * checked. Every failure is `400 invalid_request` naming the field; a JWKS that cannot be fetched
 * is the provider being unavailable (`503`), not the token being wrong.
 *
 * Replay (`jti` seen before) is the caller's next step: it needs storage
 * (lib/store/logout-tokens.ts).
 */
import { decodeProtectedHeader, type JWTPayload, type ProtectedHeaderParameters } from 'jose';
import type { Provider } from '../config/parse.js';
import { InvalidRequestError, UpstreamUnavailableError } from '../errors.js';
import { isKeyFetchFailure, type JwksResolver } from './id-token.js';
import { joseVerify } from './jwt-verify.js';
import type { ProviderMetadata } from './metadata.js';

/** §2.4: the member of `events` that makes a JWT a logout token. */
export const BACKCHANNEL_LOGOUT_EVENT = 'http://schemas.openid.net/event/backchannel-logout';
/** How old a logout token may be (`iat`), and how far ahead of the broker's clock. */
export const MAX_AGE_SECONDS = 300;
export const MAX_FUTURE_SECONDS = 60;
/** Clock tolerance for `exp`, as for ID tokens. */
const EXP_TOLERANCE_SECONDS = 60;
/** No provider's logout token comes near this; a larger body is not worth parsing. */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** As for the claims a session keeps (lib/oidc/session-identity.ts). */
const MAX_CLAIM_LENGTH = 2048;

export interface LogoutTokenContext {
  readonly provider: Provider;
  readonly metadata: ProviderMetadata;
  readonly jwks: JwksResolver;
  /** Seconds since the epoch. */
  readonly now: number;
}

declare const validated: unique symbol;
/** A logout token that passed every check of §2.6 but the replay check; only `validateLogoutToken` makes one. */
export interface ValidatedLogoutToken {
  readonly [validated]: true;
  readonly provider: string;
  readonly jti: string;
  /** The provider's subject (`idp_sub`). */
  readonly sub: string | undefined;
  /** The provider's session id. */
  readonly sid: string | undefined;
  /** Until when this token could be accepted (epoch seconds): how long its `jti` must be remembered. */
  readonly acceptableUntil: number;
}

const refuse = (description: string, cause?: unknown): never => {
  throw new InvalidRequestError(`the logout token ${description}`, cause === undefined ? undefined : { cause });
};

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

/** A string claim: absent, or a non-empty string of sane length. */
function optionalString(payload: JWTPayload, claim: string): string | undefined {
  const value = payload[claim];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '' || value.length > MAX_CLAIM_LENGTH) refuse(`"${claim}" is not a non-empty string`);
  return value as string;
}

/**
 * `logout+jwt` (§2.4 recommends it; RFC 7515 §4.1.9: the `application/` prefix may be left out,
 * and media types are case-insensitive), or the plain `JWT` that Keycloak before version 25
 * writes. §2.6 does not judge `typ`; what keeps another JWT of the provider's from passing for a
 * logout token is its `events` claim and the absence of `nonce`, both checked below. Any other
 * type (`at+jwt`, an ID token's own) names something else and is refused.
 */
function isLogoutType(typ: string): boolean {
  const t = typ.toLowerCase().replace(/^application\//, '');
  return t === 'logout+jwt' || t === 'jwt';
}

/** @see https://openid.net/specs/openid-connect-backchannel-1_0.html#Validation */
export async function validateLogoutToken(ctx: LogoutTokenContext, token: string): Promise<ValidatedLogoutToken> {
  // 1. Shape: a compact JWS (three parts). An encrypted token (five parts) is not registered for.
  if (token.length > MAX_TOKEN_LENGTH) refuse('is too long');
  if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token)) refuse('is not a signed JWT (JWS compact serialization)');

  // 2. Header (§2.6 step 2, §2.4): not a claim, so it may be read before the signature.
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(token);
  } catch (cause) {
    return refuse('has an unreadable header', cause);
  }
  const algorithms = ctx.metadata.idTokenSigningAlgs;
  if (typeof header.alg !== 'string' || header.alg === 'none') refuse('is not signed ("alg" is "none" or absent)');
  if (!algorithms.includes(header.alg!)) refuse(`is signed with "${/^[A-Za-z0-9+-]{1,16}$/.test(header.alg!) ? header.alg : '?'}", not an asymmetric algorithm the provider advertises`);
  if (header.typ !== undefined && (typeof header.typ !== 'string' || !isLogoutType(header.typ))) refuse('has a "typ" other than "logout+jwt" or "JWT"');

  // 3. Signature with the provider's keys, then `iss` and `aud` (§2.6 steps 3-4).
  let payload: JWTPayload;
  try {
    payload = await joseVerify(token, ctx.jwks, {
      algorithms: [...algorithms],
      issuer: ctx.provider.issuer!,
      audience: ctx.provider.clientId,
      requiredClaims: ['iss', 'aud', 'iat'],
      clockTolerance: EXP_TOLERANCE_SECONDS,
      currentDate: new Date(ctx.now * 1000),
    });
  } catch (cause) {
    if (isKeyFetchFailure(cause)) throw new UpstreamUnavailableError('the identity provider\'s signing keys could not be fetched', { cause });
    const claim = (cause as { claim?: unknown }).claim;
    const code = (cause as { code?: unknown }).code;
    if (code === 'ERR_JWT_CLAIM_VALIDATION_FAILED' && typeof claim === 'string') return refuse(`failed its "${claim}" check`, cause);
    if (code === 'ERR_JWT_EXPIRED') return refuse('has expired ("exp")', cause);
    return refuse(`failed validation (${typeof code === 'string' ? code : 'ERR_JWT_INVALID'})`, cause);
  }

  // 4. The other claims, now that they are the provider's.
  const iat = payload.iat;
  if (typeof iat !== 'number' || !Number.isFinite(iat)) return refuse('"iat" is not a number');
  if (ctx.now - iat > MAX_AGE_SECONDS) refuse(`"iat" is more than ${MAX_AGE_SECONDS} s old`);
  if (iat - ctx.now > MAX_FUTURE_SECONDS) refuse(`"iat" is more than ${MAX_FUTURE_SECONDS} s in the future`);
  if (payload.exp !== undefined && (typeof payload.exp !== 'number' || payload.exp + EXP_TOLERANCE_SECONDS <= ctx.now)) refuse('has expired ("exp")');
  const jti = optionalString(payload, 'jti');
  if (jti === undefined) refuse('has no "jti"');
  const events = payload['events'];
  if (!isObject(events) || !Object.hasOwn(events, BACKCHANNEL_LOGOUT_EVENT) || !isObject(events[BACKCHANNEL_LOGOUT_EVENT])) {
    refuse(`"events" does not hold "${BACKCHANNEL_LOGOUT_EVENT}" with an object value`);
  }
  const sub = optionalString(payload, 'sub');
  const sid = optionalString(payload, 'sid');
  if (sub === undefined && sid === undefined) refuse('has neither "sub" nor "sid"');
  // §2.4: a logout token must not hold a nonce, so an ID token can never pass for one.
  if (Object.hasOwn(payload, 'nonce')) refuse('holds a "nonce"');

  const until = Math.min(iat + MAX_AGE_SECONDS, typeof payload.exp === 'number' ? payload.exp + EXP_TOLERANCE_SECONDS : Infinity);
  return { provider: ctx.provider.name, jti: jti!, sub, sid, acceptableUntil: Math.max(until, ctx.now) + 1 } as ValidatedLogoutToken;
}
