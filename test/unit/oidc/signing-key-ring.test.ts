import { describe, expect, it } from 'vitest';
import { thrownBy } from '../../support/errors.js';
import { KeyRingError } from '../../../lib/crypto/key-ring.js';
import { generateSigningGenerationSync, generateSigningKeyRingText, keyIdOf, newGeneration, parseSigningKeyRing } from '../../../lib/oidc/signing-key-ring.js';

const generation = generateSigningGenerationSync('g1');
const rsa = generation['g1']!;
const ec = generation['g1.es256']!;
const ring = (over: Record<string, unknown> = {}, keys: Record<string, unknown> = { g1: rsa, 'g1.es256': ec }) => JSON.stringify({ current: 'g1', keys, ...over });

function refused(text: string): string {
  const { message } = thrownBy(() => parseSigningKeyRing(text), KeyRingError);
  // Never a key, never a private member, in a message.
  for (const member of ['d', 'p', 'q', 'n']) {
    const value = (rsa as Record<string, string>)[member]!;
    expect(message).not.toContain(value.slice(0, 16));
  }
  return message;
}

describe('parseSigningKeyRing: rejections', () => {
  it('refuses what is not a ring: not JSON, not an object, bad current, bad keys', () => {
    expect(refused('{')).toMatch(/not valid JSON/);
    expect(refused('[]')).toMatch(/JSON object/);
    expect(refused(ring({ current: 'g1.es256' }))).toMatch(/"current" must be a generation/);
    expect(refused(ring({ current: 7 }))).toMatch(/"current"/);
    expect(refused(ring({ keys: [] }))).toMatch(/"keys" must be an object/);
    expect(refused(ring({ current: 'g2' }))).toMatch(/names a generation that is not in "keys"/);
  });

  it('refuses bad key ids and a generation without both keys', () => {
    expect(refused(ring({}, { 'g 1': rsa, 'g 1.es256': ec }))).toMatch(/key id in "keys" is not valid/);
    expect(refused(ring({}, { g1: rsa }))).toMatch(/every generation needs both keys/);
    expect(refused(ring({}, { g1: rsa, 'g1.es256': ec, 'g2.es256': ec }))).toMatch(/every generation needs both keys/);
  });

  it('refuses keys that are not private JWKs of the key id\'s algorithm', () => {
    expect(refused(ring({}, { g1: ec, 'g1.es256': ec }))).toMatch(/RS256 key must have "kty": "RSA"/);
    expect(refused(ring({}, { g1: rsa, 'g1.es256': rsa }))).toMatch(/ES256 key must have "kty": "EC"/);
    expect(refused(ring({}, { g1: rsa, 'g1.es256': { ...ec, crv: 'P-384' } }))).toMatch(/"crv": "P-256"/);
    const { d: _d, ...publicRsa } = rsa as Record<string, string>;
    expect(refused(ring({}, { g1: publicRsa, 'g1.es256': ec }))).toMatch(/private JWK with "d"/);
    const { d: _e, ...publicEc } = ec as Record<string, string>;
    expect(refused(ring({}, { g1: rsa, 'g1.es256': publicEc }))).toMatch(/private JWK with "d"/);
    expect(refused(ring({}, { g1: { ...rsa, n: Buffer.alloc(128, 1).toString('base64url') }, 'g1.es256': ec }))).toMatch(/at least 2048 bits/);
    expect(refused(ring({}, { g1: { ...rsa, alg: 'PS256' }, 'g1.es256': ec }))).toMatch(/"alg" must be RS256/);
    expect(refused(ring({}, { g1: { ...rsa, use: 'enc' }, 'g1.es256': ec }))).toMatch(/"use" must be "sig"/);
    expect(refused(ring({}, { g1: { ...rsa, kid: 'other' }, 'g1.es256': ec }))).toMatch(/"kid", when present, must equal/);
    expect(refused(ring({}, { g1: 'not a jwk', 'g1.es256': ec }))).toMatch(/private JWK \(a JSON object\)/);
  });
});

describe('parseSigningKeyRing and generation', () => {
  it('reads a generated ring: one generation, RS256 <g> and ES256 <g>.es256', async () => {
    const parsed = parseSigningKeyRing(await generateSigningKeyRingText('s20250101'));
    expect(parsed.current).toBe('s20250101');
    expect([...parsed.keys.values()].map((k) => [k.kid, k.alg, k.jwk.kty])).toEqual([['s20250101', 'RS256', 'RSA'], ['s20250101.es256', 'ES256', 'EC']]);
    expect(keyIdOf('s20250101', 'ES256')).toBe('s20250101.es256');
  });

  it('names generations by date, then -2, -3, whatever their ES256 siblings', () => {
    const day = new Date('2025-01-01T12:00:00Z');
    expect(newGeneration([], day)).toBe('s20250101');
    expect(newGeneration(['s20250101', 's20250101.es256'], day)).toBe('s20250101-2');
    expect(newGeneration(['s20250101', 's20250101.es256', 's20250101-2', 's20250101-2.es256'], day)).toBe('s20250101-3');
  });
});
