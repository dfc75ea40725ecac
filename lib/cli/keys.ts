/**
 * Key-ring chores for operators (`npm run broker -- keys ...`): rotation without logging anyone
 * out is add (a new key, not yet used), promote (new ciphertexts use it), and, once every session
 * sealed with the old key has ended (`ttl.sessionMaxSeconds` after promotion), retire.
 */
import { randomBytes } from 'node:crypto';
import { KeyRingError, parseKeyRing } from '../crypto/key-ring.js';

interface RingJson {
  current: string;
  keys: Record<string, string>;
}

function read(text: string): RingJson {
  parseKeyRing(text); // every check of the runtime, with its messages
  return JSON.parse(text) as RingJson;
}

const write = (ring: RingJson) => `${JSON.stringify(ring, null, 2)}\n`;

export function newKid(existing: Iterable<string>, date = new Date()): string {
  const base = `k${date.toISOString().slice(0, 10).replaceAll('-', '')}`;
  const taken = new Set(existing);
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

/** A fresh ring with one key. */
export function generateRing(kid?: string): string {
  const id = kid ?? newKid([]);
  return write({ current: id, keys: { [id]: randomBytes(32).toString('base64url') } });
}

/** Adds a new key (not current); resolves the new ring text and the key's id. */
export function addKey(text: string, kid?: string): { ring: string; kid: string } {
  const ring = read(text);
  const id = kid ?? newKid(Object.keys(ring.keys));
  if (Object.hasOwn(ring.keys, id)) throw new KeyRingError(`the ring already has a key "${id}"`);
  const next = { ...ring, keys: { ...ring.keys, [id]: randomBytes(32).toString('base64url') } };
  read(JSON.stringify(next));
  return { ring: write(next), kid: id };
}

/** Makes a listed key current. */
export function promoteKey(text: string, kid: string): string {
  const ring = read(text);
  if (!Object.hasOwn(ring.keys, kid)) throw new KeyRingError(`the ring has no key "${kid}"`);
  return write({ ...ring, current: kid });
}

/** Removes a key that is not current: sessions sealed with it end (invalid_grant). */
export function retireKey(text: string, kid: string): string {
  const ring = read(text);
  if (!Object.hasOwn(ring.keys, kid)) throw new KeyRingError(`the ring has no key "${kid}"`);
  if (ring.current === kid) throw new KeyRingError(`"${kid}" is current: promote another key first`);
  const keys = { ...ring.keys };
  delete keys[kid];
  return write({ ...ring, keys });
}
