/**
 * The broker's ID-token signing key ring (CONTRACT.md, "Signing keys"):
 * `{"current": "<kid>", "keys": {"<kid>": <private JWK>, ...}}`.
 *
 * Apps choose between two algorithms (a client's `idTokenSigningAlg`), so the ring holds keys in
 * **generations**: a generation `<g>` is an RS256 key with key id `<g>` and an ES256 key (P-256)
 * with key id `<g>.es256`. `current` names the current generation, which is also the key id of
 * its RS256 key, so the document keeps the contract's shape. Rotation adds, promotes and retires
 * whole generations (`npm run broker -- signing-keys ...`); `/jwks` publishes every key listed.
 */
import { generateKeyPair as generateKeyPairCb, generateKeyPairSync, type JsonWebKey, type KeyObject } from 'node:crypto';
import { KeyRingError } from '../crypto/key-ring.js';

export type IdTokenAlg = 'RS256' | 'ES256';
export const ID_TOKEN_ALGS: readonly IdTokenAlg[] = ['RS256', 'ES256'];

/** The key id suffix of a generation's ES256 key. */
export const ES256_SUFFIX = '.es256';

/** A private JWK as the ring stores it. */
export type PrivateJwk = JsonWebKey & { kty: string; alg?: string; use?: string; kid?: string };

export interface SigningKeyEntry {
  readonly kid: string;
  readonly alg: IdTokenAlg;
  readonly jwk: PrivateJwk;
}

export interface SigningKeyRing {
  /** The current generation: the key id of its RS256 key. */
  readonly current: string;
  /** Every key, by key id. */
  readonly keys: ReadonlyMap<string, SigningKeyEntry>;
}

const GENERATION = /^[A-Za-z0-9_-]{1,56}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;
const RSA_MEMBERS = ['n', 'e', 'd', 'p', 'q', 'dp', 'dq', 'qi'] as const;
const EC_MEMBERS = ['x', 'y', 'd'] as const;
/** RFC 7518 §3.3: at least 2048 bits for RS256. */
const MIN_RSA_BYTES = 256;

/** The key id of a generation's key for `alg`. */
export function keyIdOf(generation: string, alg: IdTokenAlg): string {
  return alg === 'RS256' ? generation : `${generation}${ES256_SUFFIX}`;
}

/**
 * Parses and checks a signing key ring. Like the token key ring's parser, messages never quote
 * a key id or a key.
 */
export function parseSigningKeyRing(text: string): SigningKeyRing {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new KeyRingError('the signing key ring is not valid JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new KeyRingError('the signing key ring must be a JSON object');
  const { current, keys } = json as { current?: unknown; keys?: unknown };
  if (typeof current !== 'string' || !GENERATION.test(current)) {
    throw new KeyRingError('"current" must be a generation key id (A-Z a-z 0-9 _ -, at most 56)');
  }
  if (typeof keys !== 'object' || keys === null || Array.isArray(keys)) throw new KeyRingError('"keys" must be an object of key id to private JWK');
  const map = new Map<string, SigningKeyEntry>();
  for (const [kid, value] of Object.entries(keys)) {
    const es = kid.endsWith(ES256_SUFFIX);
    const generation = es ? kid.slice(0, -ES256_SUFFIX.length) : kid;
    if (!GENERATION.test(generation)) {
      throw new KeyRingError('a key id in "keys" is not valid: "<generation>" for RS256 or "<generation>.es256" for ES256, generation A-Z a-z 0-9 _ - (at most 56)');
    }
    map.set(kid, { kid, alg: es ? 'ES256' : 'RS256', jwk: checkJwk(value, es ? 'ES256' : 'RS256', kid) });
  }
  for (const { kid, alg } of map.values()) {
    const sibling = alg === 'RS256' ? `${kid}${ES256_SUFFIX}` : kid.slice(0, -ES256_SUFFIX.length);
    if (!map.has(sibling)) throw new KeyRingError('every generation needs both keys: "<generation>" (RS256) and "<generation>.es256" (ES256)');
  }
  if (!map.has(current)) throw new KeyRingError('"current" names a generation that is not in "keys"');
  return { current, keys: map };
}

function checkJwk(value: unknown, alg: IdTokenAlg, kid: string): PrivateJwk {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new KeyRingError('every key in "keys" must be a private JWK (a JSON object)');
  const jwk = value as Record<string, unknown>;
  const rsa = alg === 'RS256';
  if (jwk['kty'] !== (rsa ? 'RSA' : 'EC')) throw new KeyRingError(`an ${alg} key must have "kty": "${rsa ? 'RSA' : 'EC'}"`);
  if (!rsa && jwk['crv'] !== 'P-256') throw new KeyRingError('an ES256 key must have "crv": "P-256"');
  for (const member of rsa ? RSA_MEMBERS : EC_MEMBERS) {
    if (typeof jwk[member] !== 'string' || !B64URL.test(jwk[member] as string)) {
      throw new KeyRingError(`every ${alg} key must be a private JWK with "${member}" (base64url)`);
    }
  }
  if (rsa && Buffer.from(jwk['n'] as string, 'base64url').length < MIN_RSA_BYTES) throw new KeyRingError('an RS256 key must have at least 2048 bits');
  if (jwk['alg'] !== undefined && jwk['alg'] !== alg) throw new KeyRingError(`a key's "alg" must be ${alg}, as its key id says`);
  if (jwk['use'] !== undefined && jwk['use'] !== 'sig') throw new KeyRingError('a key\'s "use" must be "sig"');
  if (jwk['kid'] !== undefined && jwk['kid'] !== kid) throw new KeyRingError('a key\'s "kid", when present, must equal its key id in "keys"');
  return jwk as PrivateJwk;
}

/**
 * The private key of a new pair, from node's callback API. (`promisify` would bring `node:util`
 * into every function's bundle: its ES module facade loads more of Node.js, about 0.5 ms of each
 * cold start.)
 */
function privateKeyOf(generate: (done: (err: Error | null, publicKey: KeyObject, privateKey: KeyObject) => void) => void): Promise<KeyObject> {
  return new Promise((resolve, reject) => generate((err, _publicKey, privateKey) => (err ? reject(err) : resolve(privateKey))));
}

const generationOf = (generation: string, rsa: KeyObject, ec: KeyObject): Record<string, PrivateJwk> => ({
  [keyIdOf(generation, 'RS256')]: { ...(rsa.export({ format: 'jwk' }) as PrivateJwk), alg: 'RS256', use: 'sig' },
  [keyIdOf(generation, 'ES256')]: { ...(ec.export({ format: 'jwk' }) as PrivateJwk), alg: 'ES256', use: 'sig' },
});

/** A fresh generation: an RSA 2048 key for RS256 and a P-256 key for ES256, as private JWKs. */
export async function generateSigningGeneration(generation: string): Promise<Record<string, PrivateJwk>> {
  const [rsa, ec] = await Promise.all([
    privateKeyOf((done) => generateKeyPairCb('rsa', { modulusLength: 2048 }, done)),
    privateKeyOf((done) => generateKeyPairCb('ec', { namedCurve: 'P-256' }, done)),
  ]);
  return generationOf(generation, rsa, ec);
}

/** The same, synchronously (the operator CLI). */
export function generateSigningGenerationSync(generation: string): Record<string, PrivateJwk> {
  return generationOf(generation, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey);
}

/** A generation id from the date, as the token key ring's (`s20250101`, then `-2`, `-3`...). */
export function newGeneration(existing: Iterable<string>, date = new Date()): string {
  const base = `s${date.toISOString().slice(0, 10).replaceAll('-', '')}`;
  const taken = new Set([...existing].map((kid) => (kid.endsWith(ES256_SUFFIX) ? kid.slice(0, -ES256_SUFFIX.length) : kid)));
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

/** A fresh ring with one generation, as JSON text. */
export async function generateSigningKeyRingText(generation = newGeneration([])): Promise<string> {
  return JSON.stringify({ current: generation, keys: await generateSigningGeneration(generation) });
}
