/**
 * Encryption of tokens at rest: JWE with `dir` + `A256GCM` (RFC 7516, RFC 7518 §5.3), the key
 * chosen by `kid` from the key ring. The record key and field name are bound in as additional
 * authenticated data, so a ciphertext copied into another record or field does not decrypt.
 *
 * Stored forms, both always read; `form` chooses which new values take (the AAD is never stored
 * but recomputed from where the value is read):
 * - `jwe`: the JWE Compact Serialization, `protected..iv.ciphertext.tag`.
 * - `compact`: `kid~iv.ciphertext.tag`, the same JWE with its protected header named by its key
 *   id instead of spelled out: 55 bytes less per value with a key id like `k20261130`, and a
 *   session holds up to six. The protected header is the one `jwe` writes for that key id, in
 *   the GCM additional data as RFC 7516 puts it there, so each form converts to the other
 *   without the key. `~` is in neither a key id nor base64url: a value with one is compact, and
 *   must be exactly that; a JWE never has one.
 *
 * A reader that knows only `jwe` (a release before the compact form) cannot read `compact`
 * values: a deployment turns `compact` on only once every function it runs reads it
 * (docs/deploy.md, "Compact ciphertexts").
 *
 * AES-GCM runs through `node:crypto` directly, synchronously: on the hot path (every refresh
 * decrypts the access token and encrypts a handle) WebCrypto's job dispatch cost more than the
 * cipher. The bytes are exactly RFC 7516's (§5.1 steps 11–14: the GCM additional data is
 * `ASCII(BASE64URL(protected header) || '.' || BASE64URL(AAD))`), so values written by a JWE
 * library decrypt here and the other way round (test/unit/crypto/token-cipher.test.ts).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { DecryptionError } from '../errors.js';
import { KID, type KeyRing } from './key-ring.js';

/** The protected header of a key id, base64url, as every JWE under that key carries it. */
const headerOf = (kid: string) => Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid }), 'utf8').toString('base64url');

/** How new ciphertexts are written; every form is read. */
export type CiphertextForm = 'jwe' | 'compact';

/** Ends the key id of a compact value: in neither a key id (key-ring.ts) nor base64url. */
const KID_END = '~';

/** A stored value's parts, either form; undefined for a value of neither form. */
interface Sealed {
  /** The key id, from a compact value; a JWE's is in its header. */
  readonly kid: string | undefined;
  /** The protected header: as stored (JWE), or undefined until the key id's is made (compact). */
  readonly protectedHeader: string | undefined;
  readonly iv: string;
  readonly ciphertext: string;
  readonly tag: string;
}

/**
 * A compact value, exactly: a key id, its end, a 12-byte IV, the ciphertext, a 16-byte tag, all
 * base64url without padding (`Buffer.from` would skip anything else, so it is refused here).
 */
const COMPACT = /^([A-Za-z0-9._-]{1,64})~([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]*)\.([A-Za-z0-9_-]{22})$/;

/** Any value with `~` is taken as compact, and must be one exactly; any other, as a JWE (read as before the compact form). */
function partsOf(value: unknown): Sealed | undefined {
  if (typeof value !== 'string') return undefined;
  if (value.includes(KID_END)) {
    const m = COMPACT.exec(value);
    return m ? { kid: m[1]!, protectedHeader: undefined, iv: m[2]!, ciphertext: m[3]!, tag: m[4]! } : undefined;
  }
  const parts = value.split('.');
  if (parts.length !== 5 || parts[1] !== '') return undefined;
  const [protectedHeader, , iv, ciphertext, tag] = parts as [string, string, string, string, string];
  return { kid: undefined, protectedHeader, iv, ciphertext, tag };
}

/** The key id a JWE's protected header names, when it is exactly what this ring writes (RFC 7516 §5.2: no other header). */
function kidOfHeader(protectedHeader: string): string | undefined {
  const header = JSON.parse(Buffer.from(protectedHeader, 'base64url').toString('utf8')) as Record<string, unknown>;
  return header['alg'] === 'dir' && header['enc'] === 'A256GCM' && typeof header['kid'] === 'string' && Object.keys(header).length === 3 ? header['kid'] : undefined;
}

/** RFC 7516 §5.1 step 14: the additional authenticated data of the GCM operation. */
const gcmAad = (protectedHeader: string, context: string) => Buffer.from(`${protectedHeader}.${Buffer.from(context, 'utf8').toString('base64url')}`, 'ascii');

export interface TokenCipher {
  encrypt(plaintext: string, context: string): Promise<string>;
  /** Throws `DecryptionError`, the same for every cause. */
  decrypt(jwe: string, context: string): Promise<string>;
  /** Does the ciphertext name a key id this ring does not hold? (Its header is not secret.) */
  unknownKey(jwe: string): boolean;
  /** HMAC-SHA-256 of `data` under a key derived (HKDF) from the current ring key, base64url. */
  mac(data: string): { kid: string; mac: string };
  /** Checks a `mac` made under key `kid`; false for a key the ring no longer holds. */
  verifyMac(kid: string, data: string, mac: string): boolean;
  /**
   * A lookup key for `data`: HMAC-SHA-256 under a key derived (HKDF, its own purpose) from the
   * current ring key, base64url. What the session index stores instead of the provider's `sub`
   * and `sid`, so a copy of the table names no one.
   */
  lookupKey(data: string): string;
  /** The lookup keys of `data` under every key of the ring (current first): what a search tries. */
  lookupKeys(data: string): string[];
}

export function createTokenCipher(ring: KeyRing, form: CiphertextForm = 'jwe'): TokenCipher {
  const currentKey = ring.keys.get(ring.current);
  if (!currentKey) throw new TypeError('key ring has no current key');
  const currentHeader = headerOf(ring.current);
  const prefix = form === 'compact' ? `${ring.current}${KID_END}` : `${currentHeader}..`;
  // The protected header of each key id of the ring, both ways: made and checked once, not per value.
  const headers = new Map<string, string>();
  const kids = new Map<string, string>();
  for (const kid of ring.keys.keys()) {
    const header = headerOf(kid);
    headers.set(kid, header);
    kids.set(header, kid);
  }
  const derivedKeys = new Map<string, Buffer>();
  const derive = (kid: string, purpose: string): Buffer | undefined => {
    const key = ring.keys.get(kid);
    if (!key) return undefined;
    let derived = derivedKeys.get(`${purpose}\0${kid}`);
    if (!derived) {
      // A separate key per purpose: the encryption key itself never signs anything.
      derived = Buffer.from(hkdfSync('sha256', key, new Uint8Array(0), purpose, 32));
      derivedKeys.set(`${purpose}\0${kid}`, derived);
    }
    return derived;
  };
  const macKey = (kid: string) => derive(kid, 'broker handle mac v1');
  const lookupKey = (kid: string) => derive(kid, 'broker session lookup v1')!;
  const hmac = (key: Buffer, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
  return {
    mac(data) {
      return { kid: ring.current, mac: hmac(macKey(ring.current)!, data).toString('base64url') };
    },
    lookupKey(data) {
      return hmac(lookupKey(ring.current), data).toString('base64url');
    },
    lookupKeys(data) {
      const kids = [ring.current, ...[...ring.keys.keys()].filter((k) => k !== ring.current)];
      return kids.map((kid) => hmac(lookupKey(kid), data).toString('base64url'));
    },
    verifyMac(kid, data, mac) {
      const key = macKey(kid);
      if (!key) return false;
      const given = Buffer.from(mac, 'base64url');
      const expected = hmac(key, data);
      // Only the canonical spelling (RFC 4648 §3.5): base64url decoding ignores a last character's
      // spare bits, and a handle's variant must not pass for the handle, whose lookups hash its text.
      return given.length === expected.length && given.toString('base64url') === mac && timingSafeEqual(given, expected);
    },
    async encrypt(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', currentKey, iv);
      cipher.setAAD(gcmAad(currentHeader, context));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${prefix}${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
    },
    unknownKey(value) {
      const sealed = partsOf(value);
      if (!sealed) return false;
      try {
        const kid = sealed.kid ?? kidOfHeader(sealed.protectedHeader!);
        return kid !== undefined && KID.test(kid) && !ring.keys.has(kid);
      } catch {
        return false;
      }
    },
    async decrypt(value, context) {
      const sealed = partsOf(value);
      if (!sealed) throw new DecryptionError();
      try {
        // RFC 7516 §5.2: only what this ring writes is accepted: dir, A256GCM, a known key, no other header.
        const kid = sealed.kid ?? kids.get(sealed.protectedHeader!) ?? kidOfHeader(sealed.protectedHeader!);
        const protectedHeader = sealed.protectedHeader ?? (kid === undefined ? undefined : headers.get(kid));
        const key = kid === undefined ? undefined : ring.keys.get(kid);
        const ivBytes = Buffer.from(sealed.iv, 'base64url');
        const tagBytes = Buffer.from(sealed.tag, 'base64url');
        if (!key || !protectedHeader || ivBytes.length !== 12 || tagBytes.length !== 16) throw new Error('not a ciphertext of this ring');
        const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: 16 });
        decipher.setAAD(gcmAad(protectedHeader, context));
        decipher.setAuthTag(tagBytes);
        return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'base64url')), decipher.final()]).toString('utf8');
      } catch (cause) {
        throw new DecryptionError({ cause });
      }
    },
  };
}
