import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { rejectionOf } from '../../support/errors.js';
import { flattenedDecrypt, FlattenedEncrypt } from 'jose';
import { parseKeyRing, type KeyRing } from '../../../lib/crypto/key-ring.js';
import { createTokenCipher } from '../../../lib/crypto/token-cipher.js';
import { DecryptionError } from '../../../lib/errors.js';

const k1 = randomBytes(32).toString('base64url');
const k2 = randomBytes(32).toString('base64url');

const ring = (current: string, keys: Record<string, string>): KeyRing => parseKeyRing(JSON.stringify({ current, keys }));

const ringA = ring('k1', { k1 });
const ringB = ring('k2', { k1, k2 });
const ringOnlyK2 = ring('k2', { k2 });

const CONTEXT = 'session:abc#refresh';
const PLAINTEXT = 'refresh-token-üñí-' + 'x'.repeat(100);

/** Awaits `promise`, which must reject, and returns the error. */
const rejection = (promise: Promise<unknown>): Promise<DecryptionError> => rejectionOf(promise, DecryptionError);

/** Flips one character of the given part of a compact JWE. */
function tamper(jwe: string, part: number): string {
  const parts = jwe.split('.');
  const s = parts[part]!;
  const i = Math.floor(s.length / 2);
  parts[part] = s.slice(0, i) + (s[i] === 'A' ? 'B' : 'A') + s.slice(i + 1);
  return parts.join('.');
}

describe('createTokenCipher: failures', () => {
  it('refuses a ring without its current key', () => {
    expect(() => createTokenCipher({ current: 'k9', keys: new Map() })).toThrow(TypeError);
  });

  it('fails to decrypt under a different context (AAD)', async () => {
    const cipher = createTokenCipher(ringA);
    const jwe = await cipher.encrypt(PLAINTEXT, CONTEXT);
    await rejection(cipher.decrypt(jwe, 'session:abc#access'));
    await rejection(cipher.decrypt(jwe, 'session:abd#refresh'));
    await rejection(cipher.decrypt(jwe, ''));
  });

  it.each([
    ['protected header', 0],
    ['iv', 2],
    ['ciphertext', 3],
    ['tag', 4],
  ])('fails to decrypt a tampered %s', async (_what, part) => {
    const cipher = createTokenCipher(ringA);
    const jwe = await cipher.encrypt(PLAINTEXT, CONTEXT);
    await rejection(cipher.decrypt(tamper(jwe, part), CONTEXT));
  });

  it.each([
    ['an empty string', ''],
    ['garbage', 'not-a-jwe'],
    ['four parts', 'a..b.c'],
    ['an encrypted key part', 'a.b.c.d.e'],
  ])('fails to decrypt %s', async (_what, value) => {
    await rejection(createTokenCipher(ringA).decrypt(value, CONTEXT));
  });

  it('fails when the ring no longer has the kid', async () => {
    const jwe = await createTokenCipher(ringA).encrypt(PLAINTEXT, CONTEXT);
    await rejection(createTokenCipher(ringOnlyK2).decrypt(jwe, CONTEXT));
  });

  it('fails when the kid names a different key', async () => {
    const jwe = await createTokenCipher(ringA).encrypt(PLAINTEXT, CONTEXT);
    const impostor = ring('k1', { k1: k2 });
    await rejection(createTokenCipher(impostor).decrypt(jwe, CONTEXT));
  });

  it('fails every way with the same class and message', async () => {
    const cipher = createTokenCipher(ringA);
    const jwe = await cipher.encrypt(PLAINTEXT, CONTEXT);
    const errors = [
      await rejection(cipher.decrypt(jwe, 'other')),
      await rejection(cipher.decrypt(tamper(jwe, 3), CONTEXT)),
      await rejection(createTokenCipher(ringOnlyK2).decrypt(jwe, CONTEXT)),
      await rejection(cipher.decrypt('garbage', CONTEXT)),
    ];
    for (const err of errors) {
      expect(err.constructor).toBe(DecryptionError);
      expect(err.message).toBe(errors[0]!.message);
      expect(err.code).toBe('invalid_grant');
      expect(err.status).toBe(400);
      expect(err.message).not.toContain(PLAINTEXT);
    }
  });
});

describe('createTokenCipher: round trips', () => {
  it('decrypts what it encrypted, in compact form with the current kid', async () => {
    const cipher = createTokenCipher(ringA);
    const jwe = await cipher.encrypt(PLAINTEXT, CONTEXT);
    const parts = jwe.split('.');
    expect(parts).toHaveLength(5);
    expect(parts[1]).toBe('');
    expect(JSON.parse(Buffer.from(parts[0]!, 'base64url').toString('utf8'))).toEqual({ alg: 'dir', enc: 'A256GCM', kid: 'k1' });
    expect(jwe).not.toContain(Buffer.from(PLAINTEXT).toString('base64url').slice(0, 20));
    expect(await cipher.decrypt(jwe, CONTEXT)).toBe(PLAINTEXT);
  });

  it('produces a fresh ciphertext on every call', async () => {
    const cipher = createTokenCipher(ringA);
    const a = await cipher.encrypt(PLAINTEXT, CONTEXT);
    const b = await cipher.encrypt(PLAINTEXT, CONTEXT);
    expect(a).not.toBe(b);
    expect(await cipher.decrypt(b, CONTEXT)).toBe(PLAINTEXT);
  });

  it('round-trips an empty plaintext', async () => {
    const cipher = createTokenCipher(ringA);
    expect(await cipher.decrypt(await cipher.encrypt('', CONTEXT), CONTEXT)).toBe('');
  });

  it('decrypts after rotation: ring A (k1) encrypts, ring B (k1, current k2) decrypts', async () => {
    const jwe = await createTokenCipher(ringA).encrypt(PLAINTEXT, CONTEXT);
    const cipherB = createTokenCipher(ringB);
    expect(await cipherB.decrypt(jwe, CONTEXT)).toBe(PLAINTEXT);
    const fresh = await cipherB.encrypt(PLAINTEXT, CONTEXT);
    expect(JSON.parse(Buffer.from(fresh.split('.')[0]!, 'base64url').toString('utf8')).kid).toBe('k2');
    await rejection(createTokenCipher(ringA).decrypt(fresh, CONTEXT));
  });
});

describe('createTokenCipher: the bytes are RFC 7516 JWE', () => {
  const key = Buffer.from(k1, 'base64url');
  const aad = (context: string) => new TextEncoder().encode(context);

  it('decrypts a value a JWE library wrote (dir, A256GCM, AAD = the context), as sessions stored before hold', async () => {
    const jwe = await new FlattenedEncrypt(new TextEncoder().encode(PLAINTEXT))
      .setProtectedHeader({ alg: 'dir', enc: 'A256GCM', kid: 'k1' })
      .setAdditionalAuthenticatedData(aad(CONTEXT))
      .encrypt(key);
    const compact = `${jwe.protected}..${jwe.iv}.${jwe.ciphertext}.${jwe.tag}`;
    expect(await createTokenCipher(ringA).decrypt(compact, CONTEXT)).toBe(PLAINTEXT);
  });

  it('decrypts a JWE whose header has the same three fields in another order (not the bytes this ring writes)', async () => {
    const jwe = await new FlattenedEncrypt(new TextEncoder().encode(PLAINTEXT))
      .setProtectedHeader({ kid: 'k1', enc: 'A256GCM', alg: 'dir' })
      .setAdditionalAuthenticatedData(aad(CONTEXT))
      .encrypt(key);
    expect(Buffer.from(jwe.protected!, 'base64url').toString('utf8')).toBe('{"kid":"k1","enc":"A256GCM","alg":"dir"}');
    for (const form of ['jwe', 'compact'] as const) {
      expect(await createTokenCipher(ringA, form).decrypt(`${jwe.protected}..${jwe.iv}.${jwe.ciphertext}.${jwe.tag}`, CONTEXT)).toBe(PLAINTEXT);
    }
  });

  it('writes values a JWE library decrypts with the same AAD', async () => {
    const [protectedHeader, , iv, ciphertext, tag] = (await createTokenCipher(ringA).encrypt(PLAINTEXT, CONTEXT)).split('.') as [string, string, string, string, string];
    const { plaintext, protectedHeader: header } = await flattenedDecrypt(
      { protected: protectedHeader, iv, ciphertext, tag, aad: Buffer.from(CONTEXT).toString('base64url') }, key,
      { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] },
    );
    expect(new TextDecoder().decode(plaintext)).toBe(PLAINTEXT);
    expect(header).toEqual({ alg: 'dir', enc: 'A256GCM', kid: 'k1' });
  });

  it.each([
    { alg: 'dir', enc: 'A128GCM', kid: 'k1' },
    { alg: 'A256KW', enc: 'A256GCM', kid: 'k1' },
    { alg: 'dir', enc: 'A256GCM', kid: 'k1', zip: 'DEF' },
    { alg: 'dir', enc: 'A256GCM' },
  ])('refuses a header other than dir, A256GCM and a known kid (RFC 7516 §5.2): %j', async (header) => {
    const [, , iv, ct, tag] = (await createTokenCipher(ringA).encrypt(PLAINTEXT, CONTEXT)).split('.');
    const forged = `${Buffer.from(JSON.stringify(header)).toString('base64url')}..${iv}.${ct}.${tag}`;
    await expect(createTokenCipher(ringA).decrypt(forged, CONTEXT)).rejects.toBeInstanceOf(DecryptionError);
  });
});

describe('(v2) lookup keys: keyed hashes the session index stores', () => {
  it('are deterministic per key, differ between keys and from the handle mac, and name no input', () => {
    const a = createTokenCipher(ringA);
    const b = createTokenCipher(ringB);
    expect(a.lookupKey('sub\u0000op\u0000alice')).toBe(a.lookupKey('sub\u0000op\u0000alice'));
    expect(a.lookupKey('sub\u0000op\u0000alice')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a.lookupKey('sub\u0000op\u0000alice')).not.toBe(a.lookupKey('sub\u0000op\u0000bob'));
    expect(b.lookupKey('x')).not.toBe(a.lookupKey('x'));
    expect(a.lookupKey('x')).not.toBe(a.mac('x').mac);
  });

  it('lookupKeys gives the key under every ring key, the current one first, so a search finds sessions made before a rotation', () => {
    const before = createTokenCipher(ringA);
    const after = createTokenCipher(ringB);
    expect(after.lookupKeys('x')).toEqual([after.lookupKey('x'), before.lookupKey('x')]);
    expect(createTokenCipher(ringOnlyK2).lookupKeys('x')).toEqual([after.lookupKey('x')]);
  });
});

describe('compact ciphertexts: kid~iv.ciphertext.tag, the same JWE with its header named by its key id', () => {
  const compactA = createTokenCipher(ringA, 'compact');
  /** The JWE a compact value stands for: its key id's header in front, the empty encrypted key between. */
  const asJwe = (value: string) => {
    const [kid, rest] = value.split('~') as [string, string];
    return `${Buffer.from(JSON.stringify({ alg: 'dir', enc: 'A256GCM', kid }), 'utf8').toString('base64url')}..${rest}`;
  };

  it('writes the key id, then the three parts, and reads them back', async () => {
    const value = await compactA.encrypt(PLAINTEXT, CONTEXT);
    expect(value).toMatch(/^k1~[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(await compactA.decrypt(value, CONTEXT)).toBe(PLAINTEXT);
    const jwe = await createTokenCipher(ringA).encrypt(PLAINTEXT, CONTEXT);
    // Shorter by the header and the empty encrypted key, longer by the key id and its end.
    expect(jwe.length - value.length).toBe(asJwe(value).indexOf('..') + 2 - 'k1~'.length);
  });

  it('reads both forms whichever it writes: sessions written before the switch, and after a switch back', async () => {
    const jweCipher = createTokenCipher(ringA);
    expect(await compactA.decrypt(await jweCipher.encrypt(PLAINTEXT, CONTEXT), CONTEXT)).toBe(PLAINTEXT);
    expect(await jweCipher.decrypt(await compactA.encrypt(PLAINTEXT, CONTEXT), CONTEXT)).toBe(PLAINTEXT);
  });

  it('is the JWE a JWE library decrypts, once its header is spelled out again (the AAD binds the same header)', async () => {
    const [protectedHeader, , iv, ciphertext, tag] = asJwe(await compactA.encrypt(PLAINTEXT, CONTEXT)).split('.') as [string, string, string, string, string];
    const { plaintext } = await flattenedDecrypt(
      { protected: protectedHeader, iv, ciphertext, tag, aad: Buffer.from(CONTEXT).toString('base64url') }, Buffer.from(k1, 'base64url'),
      { keyManagementAlgorithms: ['dir'], contentEncryptionAlgorithms: ['A256GCM'] },
    );
    expect(new TextDecoder().decode(plaintext)).toBe(PLAINTEXT);
    // And the other way: a JWE this ring wrote, its header replaced by its key id, decrypts as it is.
    const jwe = await createTokenCipher(ringA).encrypt(PLAINTEXT, CONTEXT);
    expect(await compactA.decrypt(`k1~${jwe.split('.').slice(2).join('.')}`, CONTEXT)).toBe(PLAINTEXT);
  });

  it('decrypts after rotation, and names the current key', async () => {
    const value = await compactA.encrypt(PLAINTEXT, CONTEXT);
    const compactB = createTokenCipher(ringB, 'compact');
    expect(await compactB.decrypt(value, CONTEXT)).toBe(PLAINTEXT);
    expect((await compactB.encrypt(PLAINTEXT, CONTEXT)).startsWith('k2~')).toBe(true);
  });

  it.each([
    ['another key id of the ring', (v: string) => v.replace(/^k1~/, 'k2~')],
    ['a key id the ring lacks', (v: string) => v.replace(/^k1~/, 'k9~')],
    ['no key id', (v: string) => v.replace(/^k1~/, '~')],
    ['the iv', (v: string) => { const [kid, rest] = v.split('~') as [string, string]; return `${kid}~${tamper(`x.${rest}`, 1).slice(2)}`; }],
    ['the ciphertext', (v: string) => { const [kid, rest] = v.split('~') as [string, string]; return `${kid}~${tamper(`x.${rest}`, 2).slice(2)}`; }],
    ['the tag', (v: string) => { const [kid, rest] = v.split('~') as [string, string]; return `${kid}~${tamper(`x.${rest}`, 3).slice(2)}`; }],
    ['a part too many', (v: string) => `${v}.AAAA`],
    ['a part too few', (v: string) => v.slice(0, v.lastIndexOf('.'))],
    // Buffer.from(x, 'base64url') skips what is not base64url: the parser must refuse it first.
    ['a second ~', (v: string) => v.replace('~', '~~')],
    ['a space in the iv', (v: string) => v.replace('~', '~ ')],
    ['a line break before the tag', (v: string) => v.replace(/\.([^.]*)$/, '.\n$1')],
  ])('fails, as a JWE does, with %s', async (_what, change) => {
    const cipher = createTokenCipher(ringB, 'compact');
    const value = await createTokenCipher(ringA, 'compact').encrypt(PLAINTEXT, CONTEXT);
    const err = await rejection(cipher.decrypt(change(value), CONTEXT));
    expect(err.message).toBe((await rejection(cipher.decrypt('garbage', CONTEXT))).message);
    await rejection(cipher.decrypt(value, 'other context'));
  });

  it('takes key ids with dots, as the ring allows them', async () => {
    for (const kid of ['k.1', 'a..b', 'a.b.c', 'eyJh']) {
      const dotted = createTokenCipher(ring(kid, { [kid]: k1 }), 'compact');
      const value = await dotted.encrypt(PLAINTEXT, CONTEXT);
      expect(value.startsWith(`${kid}~`)).toBe(true);
      expect(await dotted.decrypt(value, CONTEXT)).toBe(PLAINTEXT);
      expect(await createTokenCipher(ring(kid, { [kid]: k1 })).decrypt(value, CONTEXT)).toBe(PLAINTEXT);
    }
  });

  it('takes a value with a ~ as compact only: a JWE with one (corrupted) fails to decrypt, whichever form is set', async () => {
    const jwe = await createTokenCipher(ringA).encrypt(PLAINTEXT, CONTEXT);
    // (Its text before the ~ may read as a key id the ring lacks: the runtime then reads the
    // ring again, at most once in 30 s, and the value still fails.)
    for (const stray of [jwe.replace('..', '..~'), jwe.replace(/\.([^.]*)$/, '.~$1'), `~${jwe}`]) {
      await rejection(createTokenCipher(ringA, 'compact').decrypt(stray, CONTEXT));
      await rejection(createTokenCipher(ringA).decrypt(stray, CONTEXT));
    }
  });

  it('refuses what is not a string, without throwing anything else', async () => {
    for (const value of [undefined, null, 42, {}] as unknown as string[]) {
      await rejection(compactA.decrypt(value, CONTEXT));
      expect(compactA.unknownKey(value)).toBe(false);
    }
  });

  it('says when a value names a key the ring lacks, either form, so the runtime reads the ring again', async () => {
    const newer = ring('k2', { k1, k2 });
    for (const form of ['jwe', 'compact'] as const) {
      const value = await createTokenCipher(newer, form).encrypt(PLAINTEXT, CONTEXT);
      expect(createTokenCipher(ringA, form).unknownKey(value)).toBe(true);
      expect(createTokenCipher(newer, form).unknownKey(value)).toBe(false);
    }
    for (const garbage of ['', 'garbage', 'k9~a.b', 'bad kid!~a.b.c', 'a..b.c.d']) expect(createTokenCipher(ringA).unknownKey(garbage)).toBe(false);
  });
});
