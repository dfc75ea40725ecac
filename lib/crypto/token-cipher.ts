/**
 * Encryption of tokens at rest: JWE with `dir` + `A256GCM` (RFC 7516, RFC 7518 §5.3), the key
 * chosen by `kid` from the key ring. The record key and field name are bound in as additional
 * authenticated data, so a ciphertext copied into another record or field does not decrypt.
 *
 * Stored form: the JWE Compact Serialization (protected..iv.ciphertext.tag); the AAD is not
 * stored but recomputed from where the value is read.
 *
 * AES-GCM runs through `node:crypto` directly, synchronously: on the hot path (every refresh
 * decrypts the access token and encrypts a handle) WebCrypto's job dispatch cost more than the
 * cipher. The bytes are exactly RFC 7516's (§5.1 steps 11–14: the GCM additional data is
 * `ASCII(BASE64URL(protected header) || '.' || BASE64URL(AAD))`), so values written by a JWE
 * library decrypt here and the other way round (test/unit/crypto/token-cipher.test.ts).
 */
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { DecryptionError } from '../errors.js';
import type { KeyRing } from './key-ring.js';

/** The protected header of a key id, base64url, as every JWE under that key carries it. */
const headerOf = (kid: string) => Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid }), 'utf8').toString('base64url');

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

export function createTokenCipher(ring: KeyRing): TokenCipher {
  const currentKey = ring.keys.get(ring.current);
  if (!currentKey) throw new TypeError('key ring has no current key');
  const currentHeader = headerOf(ring.current);
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
      return given.length === expected.length && timingSafeEqual(given, expected);
    },
    async encrypt(plaintext, context) {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', currentKey, iv);
      cipher.setAAD(gcmAad(currentHeader, context));
      const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
      return `${currentHeader}..${iv.toString('base64url')}.${ciphertext.toString('base64url')}.${cipher.getAuthTag().toString('base64url')}`;
    },
    unknownKey(value) {
      try {
        const header = JSON.parse(Buffer.from(value.split('.')[0] ?? '', 'base64url').toString('utf8')) as { kid?: unknown };
        return typeof header.kid === 'string' && !ring.keys.has(header.kid);
      } catch {
        return false;
      }
    },
    async decrypt(value, context) {
      const parts = value.split('.');
      if (parts.length !== 5 || parts[1] !== '') throw new DecryptionError();
      const [protectedHeader, , iv, ciphertext, tag] = parts as [string, string, string, string, string];
      try {
        const header = JSON.parse(Buffer.from(protectedHeader, 'base64url').toString('utf8')) as Record<string, unknown>;
        // RFC 7516 §5.2: only what this ring writes is accepted: dir, A256GCM, a known key, no other header.
        const key = header['alg'] === 'dir' && header['enc'] === 'A256GCM' && typeof header['kid'] === 'string' && Object.keys(header).length === 3
          ? ring.keys.get(header['kid']) : undefined;
        const ivBytes = Buffer.from(iv, 'base64url');
        const tagBytes = Buffer.from(tag, 'base64url');
        if (!key || ivBytes.length !== 12 || tagBytes.length !== 16) throw new Error('not a ciphertext of this ring');
        const decipher = createDecipheriv('aes-256-gcm', key, ivBytes, { authTagLength: 16 });
        decipher.setAAD(gcmAad(protectedHeader, context));
        decipher.setAuthTag(tagBytes);
        return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
      } catch (cause) {
        throw new DecryptionError({ cause });
      }
    },
  };
}
