/**
 * Turning provider token sets into stored session fields (encrypted, with expiries), and stored
 * sessions back into what apps receive.
 */
import { decodeJwt } from 'jose';
import type { Runtime } from '../runtime.js';
import type { TokenCipher } from '../crypto/token-cipher.js';
import { MAX_LIFETIME_SECONDS, type TokenSet } from '../oauth/token-response.js';
import { sessionKey, type SessionRecord } from '../store/sessions.js';

/** Used when the provider states no lifetime and the token is not a JWT with `exp`. */
const DEFAULT_ACCESS_TOKEN_SECONDS = 300;

/** The AAD of a stored field: the record's key and the field's name. */
export const fieldContext = (sid: string, field: string) => `${sessionKey(sid)}#${field}`;

export function accessTokenExpiry(tokens: TokenSet, now: number): number {
  if (tokens.expiresIn !== undefined) return now + tokens.expiresIn;
  try {
    // Only a scheduling hint for when to refresh, never trusted for anything else: a whole
    // second within the lifetimes an answer may state (JSON's 1e400 is Infinity, 1e300 no
    // number DynamoDB stores, a fraction no expiry the session record reads).
    const exp = decodeJwt(tokens.accessToken).exp;
    if (typeof exp === 'number' && Number.isFinite(exp) && exp > now && exp <= now + MAX_LIFETIME_SECONDS) return Math.floor(exp);
  } catch {
    // an opaque access token
  }
  return now + DEFAULT_ACCESS_TOKEN_SECONDS;
}

export interface StoredTokens {
  accessToken: string;
  atExpiresAt: number;
  refreshToken?: string;
  idToken?: string;
  scope?: string;
  hardExpiresAt: number;
}

/**
 * The fields to store for a token set. A refresh answer without a refresh token keeps the
 * stored one (RFC 6749 §6); without an ID token keeps the stored one. The session ends at
 * `maxExpiresAt`, or earlier at the provider's `refresh_expires_in`, or, with no refresh token
 * at all, when the access token expires.
 */
export async function storedTokens(
  cipher: TokenCipher, sid: string, tokens: TokenSet, now: number, maxExpiresAt: number, hasStoredRefreshToken: boolean,
): Promise<StoredTokens> {
  const atExpiresAt = accessTokenExpiry(tokens, now);
  let hardExpiresAt = maxExpiresAt;
  if (tokens.refreshExpiresIn !== undefined && tokens.refreshExpiresIn > 0) hardExpiresAt = Math.min(hardExpiresAt, now + tokens.refreshExpiresIn);
  if (!tokens.refreshToken && !hasStoredRefreshToken) hardExpiresAt = Math.min(hardExpiresAt, atExpiresAt);
  const out: StoredTokens = {
    accessToken: await cipher.encrypt(tokens.accessToken, fieldContext(sid, 'accessToken')),
    atExpiresAt,
    hardExpiresAt,
  };
  if (tokens.refreshToken) out.refreshToken = await cipher.encrypt(tokens.refreshToken, fieldContext(sid, 'refreshToken'));
  if (tokens.idToken) out.idToken = await cipher.encrypt(tokens.idToken, fieldContext(sid, 'idToken'));
  if (tokens.scope !== undefined) out.scope = tokens.scope;
  return out;
}

/**
 * What an app receives from a session: plaintext tokens and lifetimes in seconds. The provider's
 * ID token is not part of it: apps get the broker's own (lib/oidc/id-token-issuer.ts).
 */
export interface TokenGrant {
  readonly accessToken: string;
  readonly expiresIn: number;
  /** The scope the provider reported for the access token (`provider_scope` in answers). */
  readonly scope: string | undefined;
  /** Seconds until the session (and so the broker handle) ends. */
  readonly sessionExpiresIn: number;
  readonly extras: Readonly<Record<string, string | number>>;
}

export function sessionEndsAt(s: SessionRecord): number {
  return Math.min(s.hardExpiresAt, s.idleExpiresAt);
}

/** `accessToken`: the session's access token in plaintext when the caller has just had it (saves a decrypt). */
export async function grantOf(rt: Runtime, s: SessionRecord, accessTokenPlain?: string): Promise<TokenGrant> {
  const cipher = await rt.cipher();
  const now = rt.now();
  const [accessToken, extras] = await Promise.all([
    accessTokenPlain ?? cipher.decrypt(s.accessToken, fieldContext(s.sid, 'accessToken')),
    s.extras ? cipher.decrypt(s.extras, fieldContext(s.sid, 'extras')) : undefined,
  ]);
  return {
    accessToken,
    expiresIn: Math.max(0, s.atExpiresAt - now),
    scope: s.scope,
    sessionExpiresIn: Math.max(0, sessionEndsAt(s) - now),
    extras: extras ? { ...(JSON.parse(extras) as Record<string, string>), ...extrasLifetimes(s, now) } : {},
  };
}

/** `<name>_expires_in` for each downstream token, e.g. `vms_token_expires_in`. */
function extrasLifetimes(s: SessionRecord, now: number): Record<string, number> {
  return s.extrasExpiresAt === undefined ? {} : { vms_token_expires_in: Math.max(0, s.extrasExpiresAt - now) };
}
