import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { thrownBy } from '../../support/errors.js';
import { KeyRingError, generateKeyRingText, parseKeyRing } from '../../../lib/crypto/key-ring.js';

const key = (bytes = 32) => randomBytes(bytes).toString('base64url');

/** Parses `text`, which must fail with a KeyRingError, and returns the message. */
const failure = (text: string): string => thrownBy(() => parseKeyRing(text), KeyRingError).message;

describe('parseKeyRing: rejections', () => {
  it('refuses a text that is not JSON, without echoing it', () => {
    const k = key();
    const message = failure(`{"current":"k1","keys":{"k1":"${k}"`);
    expect(message).toBe('the key ring is not valid JSON');
    expect(message).not.toContain(k);
  });

  it('refuses JSON that is not an object', () => {
    expect(failure('null')).toMatch(/JSON object/);
    expect(failure(`"${key()}"`)).toMatch(/JSON object/);
  });

  it('refuses a missing or malformed "current"', () => {
    expect(failure(JSON.stringify({ keys: { k1: key() } }))).toMatch(/"current"/);
    expect(failure(JSON.stringify({ current: 'bad kid!', keys: { k1: key() } }))).toMatch(/"current"/);
  });

  it('refuses "keys" that are not an object', () => {
    expect(failure(JSON.stringify({ current: 'k1', keys: [key()] }))).toMatch(/"keys"/);
    expect(failure(JSON.stringify({ current: 'k1' }))).toMatch(/"keys"/);
  });

  it('refuses a current kid missing from keys, without key material', () => {
    const k = key();
    const message = failure(JSON.stringify({ current: 'k2', keys: { k1: k } }));
    expect(message).toBe('"current" names a key id that is not in "keys"');
    expect(message).not.toContain('k2');
    expect(message).not.toContain(k);
  });

  it.each([
    ['16 bytes', () => key(16)],
    ['33 bytes', () => key(33)],
    ['an empty string', () => ''],
    ['standard base64 with padding', () => randomBytes(32).toString('base64')],
  ])('refuses a key of %s without echoing it', (_what, make) => {
    const k = make();
    const message = failure(JSON.stringify({ current: 'k1', keys: { k1: k } }));
    expect(message).toMatch(/every key in "keys" must/);
    if (k !== '') expect(message).not.toContain(k);
  });

  it('refuses a non-string key', () => {
    expect(failure(JSON.stringify({ current: 'k1', keys: { k1: 42 } }))).toBe('every key in "keys" must be a base64url string');
  });

  it('refuses a bad kid among the keys, without key material', () => {
    const k = key();
    const message = failure(JSON.stringify({ current: 'k1', keys: { k1: key(), 'bad/kid': k } }));
    expect(message).toMatch(/a key id in "keys" is not valid/);
    expect(message).not.toContain('bad/kid');
    expect(message).not.toContain(k);
  });

  it('refuses a kid longer than 64 characters', () => {
    const kid = 'k'.repeat(65);
    expect(failure(JSON.stringify({ current: kid, keys: { [kid]: key() } }))).toMatch(/"current"/);
  });
});

describe('parseKeyRing: valid rings', () => {
  it('parses every key as 32 bytes', () => {
    const bytes = randomBytes(32);
    const ring = parseKeyRing(JSON.stringify({ current: 'k2', keys: { k1: key(), k2: bytes.toString('base64url') } }));
    expect(ring.current).toBe('k2');
    expect([...ring.keys.keys()].sort()).toEqual(['k1', 'k2']);
    expect(Buffer.from(ring.keys.get('k2')!)).toEqual(bytes);
  });

  it('generates a ring it can parse', () => {
    const ring = parseKeyRing(generateKeyRingText('test-1'));
    expect(ring.current).toBe('test-1');
    expect(ring.keys.get('test-1')!.byteLength).toBe(32);
  });
});

describe('parseKeyRing: regression, key material in messages', () => {
  // A key pasted where its id belongs must not reach a log line through the error message.
  const k = randomBytes(32).toString('base64url');
  it('does not echo a key used as a key id', () => {
    expect(failure(JSON.stringify({ current: 'k1', keys: { [k]: 'k1' } }))).not.toContain(k);
  });
  it('does not echo a key pasted into "current"', () => {
    expect(failure(JSON.stringify({ current: k, keys: { k1: k } }))).not.toContain(k);
  });
  it('does not echo a standard-base64 key used as a key id', () => {
    const std = randomBytes(32).toString('base64');
    expect(failure(JSON.stringify({ current: 'k1', keys: { k1: randomBytes(32).toString('base64url'), [std]: 'k1' } }))).not.toContain(std);
  });
});
