/**
 * Parsing of a token endpoint answer (RFC 6749 §5.1), in a fixed order: status and OAuth error
 * body, then content type and JSON, then required fields and their types.
 */
import { UpstreamMalformedError } from '../errors.js';
import { checkOAuthStatus, parseJsonObject, type UpstreamResponse } from './http.js';

export interface TokenSet {
  readonly accessToken: string;
  /** Seconds, from `expires_in`; undefined when the provider did not say. */
  readonly expiresIn: number | undefined;
  readonly refreshToken: string | undefined;
  /** Keycloak's `refresh_expires_in`, in seconds; 0 means no limit. */
  readonly refreshExpiresIn: number | undefined;
  readonly idToken: string | undefined;
  readonly scope: string | undefined;
}

const MAX_TOKEN_LENGTH = 16 * 1024;
/** The longest lifetime a provider may state: beyond it an answer is malformed, not a token to keep. */
export const MAX_LIFETIME_SECONDS = 10 * 365 * 24 * 3600;

/**
 * RFC 6749 Appendix A.12, A.17: a token is one or more VSCHAR (%x20-7E). Anything else could
 * not go into an `Authorization` header (a line break would even split it), so it is refused here.
 */
const VSCHARS = /^[\x20-\x7E]+$/;

/** A token as an answer may carry one: 1 to 16 KiB of VSCHAR. */
export const isTokenText = (value: unknown): value is string => typeof value === 'string' && value.length > 0 && value.length <= MAX_TOKEN_LENGTH && VSCHARS.test(value);

function optionalString(json: Record<string, unknown>, key: string): string | undefined {
  const value = json[key];
  if (value === undefined || value === null) return undefined;
  if (!isTokenText(value)) {
    throw new UpstreamMalformedError(`the token response's "${key}" must be a non-empty string of visible ASCII characters`);
  }
  return value;
}

function optionalSeconds(json: Record<string, unknown>, key: string): number | undefined {
  const raw = json[key];
  if (raw === undefined || raw === null) return undefined;
  // Some providers send numbers as strings; accept digits only.
  const value = typeof raw === 'string' && /^\d{1,10}$/.test(raw) ? Number(raw) : raw;
  // At most ten years: a lifetime beyond that is a malformed answer, not a token to keep.
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_LIFETIME_SECONDS) {
    throw new UpstreamMalformedError(`the token response's "${key}" must be a number of seconds from 0 to ${MAX_LIFETIME_SECONDS}`);
  }
  return Math.floor(value);
}

/** @see RFC 6749 §5.1, §5.2 */
export function parseTokenResponse(res: UpstreamResponse, options: { defaultTokenType?: 'Bearer' } = {}): TokenSet {
  checkOAuthStatus(res, 'token endpoint');
  const json = parseJsonObject(res, 'token response');
  const accessToken = optionalString(json, 'access_token');
  if (accessToken === undefined) throw new UpstreamMalformedError('the token response has no "access_token"');
  const tokenType = json['token_type'] ?? options.defaultTokenType;
  // RFC 6749 §7.1: the type is case-insensitive; the broker hands out Bearer tokens only.
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') {
    throw new UpstreamMalformedError('the token response\'s "token_type" is not Bearer');
  }
  return {
    accessToken,
    expiresIn: optionalSeconds(json, 'expires_in'),
    refreshToken: optionalString(json, 'refresh_token'),
    refreshExpiresIn: optionalSeconds(json, 'refresh_expires_in'),
    idToken: optionalString(json, 'id_token'),
    scope: typeof json['scope'] === 'string' ? json['scope'] : undefined,
  };
}
