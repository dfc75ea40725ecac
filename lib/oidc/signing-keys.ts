/**
 * The signing key ring in use: private keys imported once per container (on first use, then
 * kept), the public JWKS `/jwks` publishes, and the cache that reads the ring from its secret
 * (again after `maxAgeMs`, and at once, at most every 30 s, for a key id it lacks).
 */
import { createPrivateKey, type JsonWebKey, type KeyObject } from 'node:crypto';
import { importJWK, type JWK } from 'jose';
import type { SecretRef } from '../config/schema.js';
import type { Logger } from '../log.js';
import type { SecretResolver } from '../secrets/secrets.js';
import { generateSigningKeyRingText, keyIdOf, parseSigningKeyRing, type IdTokenAlg, type SigningKeyRing } from './signing-key-ring.js';

type Key = CryptoKey | KeyObject | Uint8Array;

/** A public key as `/jwks` publishes it (RFC 7517), with `kid`, `use` and `alg`. */
export interface PublicJwk {
  readonly kty: string;
  readonly kid: string;
  readonly use: 'sig';
  readonly alg: IdTokenAlg;
  readonly [member: string]: string;
}

export interface SigningKeys {
  /** The current generation. */
  readonly current: string;
  /** Every key of the ring, public members only: the current, the next and the previous generations. */
  readonly jwks: { readonly keys: readonly PublicJwk[] };
  has(kid: string): boolean;
  /** The current private key for `alg`, imported once and kept (a node:crypto key: signing is synchronous). */
  signingKey(alg: IdTokenAlg): Promise<{ readonly kid: string; readonly key: KeyObject }>;
  /** The public key of `kid` and its algorithm, or undefined for a key id not in the ring. */
  verificationKey(kid: string): Promise<{ readonly alg: IdTokenAlg; readonly key: Key } | undefined>;
}

const PUBLIC_MEMBERS: Record<string, readonly string[]> = { RSA: ['kty', 'n', 'e'], EC: ['kty', 'crv', 'x', 'y'] };

export function createSigningKeys(ring: SigningKeyRing): SigningKeys {
  // node:crypto private keys: the broker signs synchronously (lib/oidc/id-token-issuer.ts).
  const privateKeys = new Map<string, KeyObject>();
  const publicKeys = new Map<string, Promise<Key>>();
  const publicJwk = (kid: string): PublicJwk => {
    const entry = ring.keys.get(kid)!;
    const out: Record<string, string> = {};
    for (const m of PUBLIC_MEMBERS[entry.jwk.kty]!) out[m] = (entry.jwk as Record<string, string>)[m]!;
    return { ...out, kid, use: 'sig', alg: entry.alg } as PublicJwk;
  };
  // The current generation first, then the others by key id.
  const isCurrent = (kid: string) => kid === ring.current || kid === keyIdOf(ring.current, 'ES256');
  // Code-unit order, not localeCompare: its first call loads ICU collation data (~7 ms of cold start).
  const kids = [...ring.keys.keys()].sort((a, b) => Number(isCurrent(b)) - Number(isCurrent(a)) || (a < b ? -1 : a > b ? 1 : 0));
  const jwks = Object.freeze({ keys: Object.freeze(kids.map(publicJwk)) });
  const cached = (map: Map<string, Promise<Key>>, kid: string, load: () => Promise<Key>) => {
    let hit = map.get(kid);
    if (!hit) {
      hit = load();
      map.set(kid, hit);
      hit.catch(() => map.get(kid) === hit && map.delete(kid));
    }
    return hit;
  };
  return {
    current: ring.current,
    jwks,
    has: (kid) => ring.keys.has(kid),
    async signingKey(alg) {
      const kid = keyIdOf(ring.current, alg);
      let key = privateKeys.get(kid);
      if (!key) privateKeys.set(kid, (key = createPrivateKey({ key: ring.keys.get(kid)!.jwk as JsonWebKey, format: 'jwk' })));
      return { kid, key };
    },
    async verificationKey(kid) {
      const entry = ring.keys.get(kid);
      if (!entry) return undefined;
      return { alg: entry.alg, key: await cached(publicKeys, kid, () => importJWK(publicJwk(kid) as unknown as JWK, entry.alg)) };
    },
  };
}

export interface SigningKeyCache {
  /** The ring: read on first use and again after `maxAgeMs`. */
  get(): Promise<SigningKeys>;
  /**
   * The ring, read again first (at most every 30 s) when it lacks `kid`: another container may
   * already sign with a generation this one has not read yet.
   */
  withKey(kid: string): Promise<SigningKeys>;
  clear(): void;
}

export interface SigningKeyCacheOptions {
  /** The configuration's `signingKeys`; undefined: a ring is generated for this process (local runs). */
  readonly ref: SecretRef | undefined;
  readonly secrets: SecretResolver;
  readonly log: Logger;
  readonly maxAgeMs: number;
}

export function createSigningKeyCache(options: SigningKeyCacheOptions): SigningKeyCache {
  let entry: { at: number; keys: Promise<SigningKeys> } | undefined;
  let lastReload = 0;
  // The first read takes what the cold start already read (started by functions/handler.ts, taken by functions/serve.ts);
  // every later one, a reload, reads the secret again.
  let reload = false;
  const load = async (): Promise<SigningKeys> => {
    if (!options.ref) {
      const text = await generateSigningKeyRingText();
      options.log.warn('signing_keys.generated', { message: 'no signingKeys configured: generated ID-token signing keys for this process; apps must fetch /jwks again after a restart' });
      return createSigningKeys(parseSigningKeyRing(text));
    }
    if (reload) options.secrets.invalidate(options.ref);
    reload = true;
    return createSigningKeys(parseSigningKeyRing(await options.secrets.resolve(options.ref)));
  };
  const get = (): Promise<SigningKeys> => {
    if (!entry || (options.ref && Date.now() - entry.at > options.maxAgeMs)) {
      const next = { at: Date.now(), keys: load() };
      entry = next;
      next.keys.catch(() => entry === next && (entry = undefined));
    }
    return entry.keys;
  };
  return {
    get,
    async withKey(kid) {
      const keys = await get();
      if (keys.has(kid) || !options.ref || Date.now() - lastReload < 30_000) return keys;
      lastReload = Date.now();
      entry = undefined;
      options.log.info('signing_keys.reloaded', { reason: 'an ID token names a key this container does not know' });
      return get();
    },
    clear() {
      entry = undefined;
      lastReload = 0;
    },
  };
}
