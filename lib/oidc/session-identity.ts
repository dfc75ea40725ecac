/**
 * What a session keeps for the broker's own ID tokens: the scope the app was granted, its nonce,
 * and, from the provider's ID token as validated at login, only the claims the broker's ID token
 * copies (`sub`, `auth_time`, `acr`, `amr`, the profile and email claims the app's scope asks
 * for) plus the provider's `sid`. Stored as one encrypted attribute (`identity`, JWE like the
 * tokens: these are personal data), written once at login and never changed by a refresh, so
 * `auth_time` and the claims are the same in every ID token of the session.
 */
import type { JWTPayload } from 'jose';
import type { TokenCipher } from '../crypto/token-cipher.js';
import { DecryptionError } from '../errors.js';
import { fieldContext } from '../broker/session-tokens.js';
import { parseScopeString, SCOPE_CLAIMS, scopeString, type AppScope } from './scope.js';

export interface SessionIdentity {
  /** The scope the broker granted the app. */
  readonly scope: readonly AppScope[];
  /** The app's nonce from `/login`, for the ID token of the code exchange. */
  readonly nonce?: string;
  /** The provider's subject; absent for a provider without `openid`. */
  readonly idpSub?: string;
  /** The provider's `auth_time`, else the time of the login (epoch seconds). */
  readonly authTime: number;
  readonly acr?: string;
  readonly amr?: readonly string[];
  /** The provider's session id (`sid` of its ID token), for back-channel logout. */
  readonly idpSid?: string;
  /** Profile and email claims, only those the granted scope asks for. */
  readonly claims: Readonly<Record<string, string | boolean>>;
}

/** The stored form: short, stable names. */
interface StoredIdentity {
  scope: string;
  nonce?: string;
  sub?: string;
  auth_time: number;
  acr?: string;
  amr?: string[];
  sid?: string;
  claims?: Record<string, string | boolean>;
}

export const IDENTITY_FIELD = 'identity';

/** A claim value longer than this is not copied: item size is cost, and no real name is that long. */
const MAX_CLAIM_LENGTH = 2048;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' && v.length <= MAX_CLAIM_LENGTH ? v : undefined);

/**
 * The identity of a login. `payload` is the provider's ID token, already validated
 * (`validateLoginIdToken`), or undefined for a provider without `openid`.
 */
export function identityOfLogin(scope: readonly AppScope[], nonce: string | undefined, payload: JWTPayload | undefined, now: number): SessionIdentity {
  const claims: Record<string, string | boolean> = {};
  if (payload) {
    for (const s of scope) {
      for (const name of s === 'profile' || s === 'email' ? SCOPE_CLAIMS[s] : []) {
        const value = payload[name];
        if (name === 'email_verified') {
          // Some providers send it as a string.
          if (typeof value === 'boolean') claims[name] = value;
          else if (value === 'true' || value === 'false') claims[name] = value === 'true';
        } else if (str(value) !== undefined) claims[name] = value as string;
      }
    }
  }
  const amr = Array.isArray(payload?.['amr']) ? (payload!['amr'] as unknown[]).filter((m): m is string => str(m) !== undefined) : undefined;
  return {
    scope,
    ...(nonce !== undefined ? { nonce } : {}),
    ...(payload?.sub !== undefined ? { idpSub: payload.sub } : {}),
    authTime: typeof payload?.['auth_time'] === 'number' ? payload['auth_time'] : now,
    ...(str(payload?.['acr']) !== undefined ? { acr: payload!['acr'] as string } : {}),
    ...(amr && amr.length ? { amr } : {}),
    ...(str(payload?.['sid']) !== undefined ? { idpSid: payload!['sid'] as string } : {}),
    claims,
  };
}

export async function sealIdentity(cipher: TokenCipher, sid: string, identity: SessionIdentity): Promise<string> {
  const stored: StoredIdentity = {
    scope: scopeString(identity.scope),
    ...(identity.nonce !== undefined ? { nonce: identity.nonce } : {}),
    ...(identity.idpSub !== undefined ? { sub: identity.idpSub } : {}),
    auth_time: identity.authTime,
    ...(identity.acr !== undefined ? { acr: identity.acr } : {}),
    ...(identity.amr !== undefined ? { amr: [...identity.amr] } : {}),
    ...(identity.idpSid !== undefined ? { sid: identity.idpSid } : {}),
    ...(Object.keys(identity.claims).length ? { claims: { ...identity.claims } } : {}),
  };
  return cipher.encrypt(JSON.stringify(stored), fieldContext(sid, IDENTITY_FIELD));
}

/**
 * Reads a session's identity; undefined for a session stored before the broker kept one.
 * Throws `DecryptionError` for one it cannot read (the same error for every cause).
 */
export async function openIdentity(cipher: TokenCipher, sid: string, sealed: string | undefined): Promise<SessionIdentity | undefined> {
  if (sealed === undefined) return undefined;
  const text = await cipher.decrypt(sealed, fieldContext(sid, IDENTITY_FIELD));
  let stored: StoredIdentity;
  try {
    stored = JSON.parse(text) as StoredIdentity;
  } catch (cause) {
    throw new DecryptionError({ cause });
  }
  if (typeof stored !== 'object' || stored === null || typeof stored.scope !== 'string' || typeof stored.auth_time !== 'number') throw new DecryptionError();
  return {
    scope: parseScopeString(stored.scope),
    ...(typeof stored.nonce === 'string' ? { nonce: stored.nonce } : {}),
    ...(typeof stored.sub === 'string' ? { idpSub: stored.sub } : {}),
    authTime: stored.auth_time,
    ...(typeof stored.acr === 'string' ? { acr: stored.acr } : {}),
    ...(Array.isArray(stored.amr) ? { amr: stored.amr.filter((m) => typeof m === 'string') } : {}),
    ...(typeof stored.sid === 'string' ? { idpSid: stored.sid } : {}),
    claims: typeof stored.claims === 'object' && stored.claims !== null ? stored.claims : {},
  };
}
