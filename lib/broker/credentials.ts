/**
 * The opaque values the broker hands out: one-time codes, refresh handles and session cookies,
 * all `<session id>.<secret>` in base64url. Only their SHA-256 hashes are stored.
 */
import { randomToken, sha256 } from '../crypto/random.js';

/**
 * After a one-time code's expiry, a replay is refused like any unknown code and ends nothing
 * (lib/broker/redeem.ts); from then on the session no longer needs the code's fields.
 */
export const CODE_REUSE_TRACKED_SECONDS = 60;

/** Is a redeemed code past the time its replays are tracked (its stored fields can go)? */
export function codeForgettable(codeExpiresAt: number | undefined, now: number): boolean {
  return codeExpiresAt !== undefined && now > codeExpiresAt + CODE_REUSE_TRACKED_SECONDS;
}

export interface Credential {
  readonly sid: string;
  readonly value: string;
  readonly hash: string;
}

const FORMAT = /^([A-Za-z0-9_-]{22})\.([A-Za-z0-9_-]{43})$/;

/** A new session id (128 bits). */
export function newSessionId(): string {
  return randomToken(16);
}

/** A new credential for a session (256 bits of secret). */
export function newCredential(sid: string): Credential {
  const value = `${sid}.${randomToken(32)}`;
  return { sid, value, hash: sha256(value) };
}

/**
 * A native app's refresh handle: `<sid>.<generation>.<mac>.<kid>`, the mac an HMAC of
 * `<sid>.<generation>` under a key of the key ring. Each rotation is the next generation. A
 * handle with a valid mac and an older generation is an old handle of this session, never a
 * forgery, which is what lets any reuse, not only of the previous handle, revoke the session.
 */
export interface Handle extends Credential {
  readonly generation: number;
  readonly kid: string;
  readonly mac: string;
}

const HANDLE = /^([A-Za-z0-9_-]{22})\.([1-9]\d{0,8})\.([A-Za-z0-9_-]{43})\.([A-Za-z0-9._-]{1,64})$/;

export function newHandle(sid: string, generation: number, cipher: { mac(data: string): { kid: string; mac: string } }): Handle {
  const { kid, mac } = cipher.mac(`${sid}.${generation}`);
  const value = `${sid}.${generation}.${mac}.${kid}`;
  return { sid, generation, kid, mac, value, hash: sha256(value) };
}

export function readHandle(value: string | undefined): Handle | undefined {
  const m = value === undefined ? null : HANDLE.exec(value);
  if (!m || value === undefined) return undefined;
  return { sid: m[1]!, generation: Number(m[2]), mac: m[3]!, kid: m[4]!, value, hash: sha256(value) };
}

/** Is this handle one the broker made (its mac checks out)? */
export function isGenuine(handle: Handle, cipher: { verifyMac(kid: string, data: string, mac: string): boolean }): boolean {
  return cipher.verifyMac(handle.kid, `${handle.sid}.${handle.generation}`, handle.mac);
}

/** Reads a presented credential; undefined when it is not of the broker's form. */
export function readCredential(value: string | undefined): Credential | undefined {
  if (value === undefined) return undefined;
  const m = FORMAT.exec(value);
  return m ? { sid: m[1]!, value, hash: sha256(value) } : undefined;
}
