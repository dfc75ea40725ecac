/** Which index lookups and delete conditions a logout becomes (lib/broker/session-lookup.ts). */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { lookupAttributes, sessionMatches } from '../../../lib/broker/session-lookup.js';
import { parseKeyRing } from '../../../lib/crypto/key-ring.js';
import { createTokenCipher } from '../../../lib/crypto/token-cipher.js';

const k1 = randomBytes(32).toString('base64url');
const k2 = randomBytes(32).toString('base64url');
const before = createTokenCipher(parseKeyRing(JSON.stringify({ current: 'k1', keys: { k1 } })));
const during = createTokenCipher(parseKeyRing(JSON.stringify({ current: 'k2', keys: { k1, k2 } })));

describe('sessionMatches: refusals', () => {
  it('needs a sub or a sid (a programming error otherwise: the token check requires one)', () => {
    expect(() => sessionMatches(before, 'op', {})).toThrow(TypeError);
  });
});

describe('lookupAttributes and sessionMatches', () => {
  it('a login stores both keys; one without an ID token stores none', () => {
    const attrs = lookupAttributes(before, 'op', { sub: 'alice', sid: 's1' });
    expect(Object.keys(attrs).sort()).toEqual(['idpSidKey', 'idpSubKey']);
    expect(lookupAttributes(before, 'op', {})).toEqual({});
    expect(lookupAttributes(before, 'op', { sub: 'alice' })).toEqual({ idpSubKey: attrs.idpSubKey });
  });

  it('keys depend on the provider and on the kind: the same value at two providers, or as sub and sid, never collide', () => {
    const a = lookupAttributes(before, 'op', { sub: 'x', sid: 'x' });
    const b = lookupAttributes(before, 'op2', { sub: 'x', sid: 'x' });
    expect(new Set([a.idpSubKey, a.idpSidKey, b.idpSubKey, b.idpSidKey]).size).toBe(4);
  });

  it('sub only: every session of the user at that provider; sid: that provider session, with sub also checked', () => {
    const stored = lookupAttributes(before, 'op', { sub: 'alice', sid: 's1' });
    expect(sessionMatches(before, 'op', { sub: 'alice' })).toEqual([{ provider: 'op', subKey: stored.idpSubKey }]);
    expect(sessionMatches(before, 'op', { sid: 's1' })).toEqual([{ provider: 'op', sidKey: stored.idpSidKey }]);
    expect(sessionMatches(before, 'op', { sub: 'alice', sid: 's1' })).toEqual([{ provider: 'op', sidKey: stored.idpSidKey, subKey: stored.idpSubKey }]);
  });

  it('during a key rotation, one match per ring key: sessions made under the old key are still found', () => {
    const old = lookupAttributes(before, 'op', { sub: 'alice', sid: 's1' });
    const matches = sessionMatches(during, 'op', { sub: 'alice', sid: 's1' });
    expect(matches).toHaveLength(2);
    expect(matches[1]).toEqual({ provider: 'op', sidKey: old.idpSidKey, subKey: old.idpSubKey });
    const current = lookupAttributes(during, 'op', { sub: 'alice', sid: 's1' });
    expect(matches[0]).toEqual({ provider: 'op', sidKey: current.idpSidKey, subKey: current.idpSubKey });
  });
});
