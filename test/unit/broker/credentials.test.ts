import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isGenuine, newCredential, newHandle, newSessionId, readCredential, readHandle } from '../../../lib/broker/credentials.js';
import { parseKeyRing } from '../../../lib/crypto/key-ring.js';
import { createTokenCipher } from '../../../lib/crypto/token-cipher.js';

const key = () => randomBytes(32).toString('base64url');
const k1 = key();
const k2 = key();
const ring = (current: string, keys: Record<string, string>) => createTokenCipher(parseKeyRing(JSON.stringify({ current, keys })));

describe('readHandle: rejections', () => {
  it('refuses anything but <sid>.<generation>.<mac>.<kid>', () => {
    const sid = newSessionId();
    for (const bad of [undefined, '', 'x', `${sid}.${'a'.repeat(43)}`, `${sid}.0.${'a'.repeat(43)}.k1`, `${sid}.01.${'a'.repeat(43)}.k1`,
      `${sid}.1.${'a'.repeat(42)}.k1`, `${sid}.1.${'a'.repeat(43)}.`, `${sid}.1.${'a'.repeat(43)}.k 1`, `${sid}.1234567890.${'a'.repeat(43)}.k1`]) {
      expect(readHandle(bad)).toBeUndefined();
    }
  });
  it('is not a code or cookie, and they are not handles', () => {
    const c = newCredential(newSessionId());
    expect(readHandle(c.value)).toBeUndefined();
    expect(readCredential(newHandle(c.sid, 1, ring('k1', { k1 })).value)).toBeUndefined();
  });
});

describe('handles', () => {
  it('are genuine only with the right generation, session and key', () => {
    const cipher = ring('k1', { k1 });
    const sid = newSessionId();
    const h = newHandle(sid, 3, cipher);
    const read = readHandle(h.value)!;
    expect(read).toEqual(h);
    expect(isGenuine(read, cipher)).toBe(true);
    expect(isGenuine({ ...read, generation: 4 }, cipher)).toBe(false);
    expect(isGenuine({ ...read, sid: newSessionId() }, cipher)).toBe(false);
    expect(isGenuine({ ...read, mac: 'A'.repeat(43) }, cipher)).toBe(false);
    // Made under k1; a ring without k1 cannot vouch for it; a rotated ring with k1 still can.
    expect(isGenuine(read, ring('k2', { k2 }))).toBe(false);
    expect(isGenuine(read, ring('k2', { k1, k2 }))).toBe(true);
    expect(newHandle(sid, 1, ring('k2', { k1, k2 })).kid).toBe('k2');
  });

  it('are genuine only in their canonical spelling: a last mac character with other spare bits (the same bytes) is not', () => {
    const cipher = ring('k1', { k1 });
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const h = newHandle(newSessionId(), 2, cipher);
    const last = alphabet.indexOf(h.mac.at(-1)!);
    // 43 characters carry 258 bits for 256: the last one's low two bits are spare.
    const variants = [1, 2, 3].map((bits) => `${h.mac.slice(0, -1)}${alphabet[last | bits]}`).filter((mac) => mac !== h.mac);
    expect(variants.length).toBeGreaterThan(0);
    for (const mac of variants) {
      expect(Buffer.from(mac, 'base64url')).toEqual(Buffer.from(h.mac, 'base64url'));
      const variant = readHandle(`${h.sid}.${h.generation}.${mac}.${h.kid}`)!;
      expect(variant.hash).not.toBe(h.hash);
      expect(isGenuine(variant, cipher)).toBe(false);
    }
  });
});
