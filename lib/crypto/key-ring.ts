/**
 * The token-encryption key ring of CONTRACT.md:
 * `{"current": "<kid>", "keys": {"<kid>": "<base64url of 32 random bytes>", ...}}`.
 */
import { randomBytes } from 'node:crypto';

export interface KeyRing {
  readonly current: string;
  readonly keys: ReadonlyMap<string, Uint8Array>;
}

export class KeyRingError extends Error {
  override readonly name = 'KeyRingError';
}

/** A key id: never `~` (token-cipher.ts ends a compact value's key id with it). */
export const KID = /^[A-Za-z0-9._-]{1,64}$/;

/**
 * Parses and checks a key ring JSON text. Messages never quote a key id or `current`: an
 * operator who swaps a key and its id would otherwise see the key in a log line.
 */
export function parseKeyRing(text: string): KeyRing {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyRingError('the key ring is not valid JSON');
  }
  if (typeof json !== 'object' || json === null) throw new KeyRingError('the key ring must be a JSON object');
  const { current, keys } = json as { current?: unknown; keys?: unknown };
  if (typeof current !== 'string' || !KID.test(current)) throw new KeyRingError('"current" must be a key id (A-Z a-z 0-9 . _ -, at most 64)');
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) throw new KeyRingError('"keys" must be an object of key id to key');
  const map = new Map<string, Uint8Array>();
  for (const [kid, value] of Object.entries(keys)) {
    if (!KID.test(kid)) throw new KeyRingError('a key id in "keys" is not valid (A-Z a-z 0-9 . _ -, at most 64)');
    if (typeof value !== 'string' || !/^[A-Za-z0-9_-]+$/.test(value)) throw new KeyRingError('every key in "keys" must be a base64url string');
    const bytes = Buffer.from(value, 'base64url');
    if (bytes.length !== 32) throw new KeyRingError(`every key in "keys" must decode to 32 bytes (one decodes to ${bytes.length})`);
    map.set(kid, new Uint8Array(bytes));
  }
  if (!map.has(current)) throw new KeyRingError('"current" names a key id that is not in "keys"');
  return { current, keys: map };
}

/** A fresh ring with one key, as JSON text. */
export function generateKeyRingText(kid = `k${new Date().toISOString().slice(0, 10).replaceAll('-', '')}`): string {
  return JSON.stringify({ current: kid, keys: { [kid]: randomBytes(32).toString('base64url') } });
}
