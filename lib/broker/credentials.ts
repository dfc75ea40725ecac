/**
 * The opaque values the broker hands out: one-time codes, refresh handles and session cookies,
 * all `<session id>.<secret>` in base64url. Only their SHA-256 hashes are stored.
 */
import { randomToken, sha256 } from '../crypto/random.js';

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

/** Reads a presented credential; undefined when it is not of the broker's form. */
export function readCredential(value: string | undefined): Credential | undefined {
  if (value === undefined) return undefined;
  const m = FORMAT.exec(value);
  return m ? { sid: m[1]!, value, hash: sha256(value) } : undefined;
}
