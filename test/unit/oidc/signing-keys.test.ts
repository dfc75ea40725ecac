import { compactVerify, SignJWT } from 'jose';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../../lib/log.js';
import { generateSigningGenerationSync, parseSigningKeyRing } from '../../../lib/oidc/signing-key-ring.js';
import { createSigningKeyCache, createSigningKeys } from '../../../lib/oidc/signing-keys.js';
import { createSecretResolver } from '../../../lib/secrets/secrets.js';

const ringText = (current: string, ...generations: string[]) =>
  JSON.stringify({ current, keys: Object.assign({}, ...generations.map((g) => generateSigningGenerationSync(g))) });

describe('createSigningKeys', () => {
  const keys = createSigningKeys(parseSigningKeyRing(ringText('b', 'a', 'b', 'c')));

  it('publishes every key, public members only, with kid, use and alg; the current generation first', () => {
    expect(keys.jwks.keys.map((k) => k.kid)).toEqual(['b', 'b.es256', 'a', 'a.es256', 'c', 'c.es256']);
    for (const k of keys.jwks.keys) {
      expect(k.use).toBe('sig');
      expect(k.alg).toBe(k.kid.endsWith('.es256') ? 'ES256' : 'RS256');
      expect(Object.keys(k).sort()).toEqual(k.kty === 'RSA' ? ['alg', 'e', 'kid', 'kty', 'n', 'use'] : ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y']);
    }
    expect(JSON.stringify(keys.jwks)).not.toMatch(/"(d|p|q|dp|dq|qi)"/);
  });

  it('signs with the current generation\'s key for each algorithm, importing each key once', async () => {
    const first = await keys.signingKey('RS256');
    expect(first.kid).toBe('b');
    expect(await keys.signingKey('RS256')).toEqual(first);
    expect((await keys.signingKey('RS256')).key).toBe(first.key);
    expect((await keys.signingKey('ES256')).kid).toBe('b.es256');
    for (const alg of ['RS256', 'ES256'] as const) {
      const { kid, key } = await keys.signingKey(alg);
      const jwt = await new SignJWT({ sub: 's' }).setProtectedHeader({ alg, kid }).sign(key);
      const verifying = (await keys.verificationKey(kid))!;
      expect(verifying.alg).toBe(alg);
      await expect(compactVerify(jwt, verifying.key)).resolves.toBeDefined();
    }
  });

  it('has no verification key for a key id outside the ring', async () => {
    expect(keys.has('a')).toBe(true);
    expect(keys.has('z')).toBe(false);
    expect(await keys.verificationKey('z')).toBeUndefined();
  });
});

describe('createSigningKeyCache', () => {
  const log = () => {
    const lines: string[] = [];
    return { lines, logger: createLogger({ sink: (l) => lines.push(l) }) };
  };

  it('generates a ring once per process when none is configured, and says so in one line', async () => {
    const { lines, logger } = log();
    const cache = createSigningKeyCache({ ref: undefined, secrets: createSecretResolver(), log: logger, maxAgeMs: 1 });
    const a = await cache.get();
    await new Promise((r) => setTimeout(r, 5));
    expect(await cache.get()).toBe(a);
    expect(await cache.withKey('unknown')).toBe(a);
    expect(lines.filter((l) => l.includes('signing_keys.generated'))).toHaveLength(1);
  });

  it('reads the configured ring once, again after maxAgeMs, and at most every 30 s for an unknown key id', async () => {
    vi.useFakeTimers({ now: new Date('2025-01-01T00:00:00Z'), toFake: ['Date'] });
    try {
      let text = ringText('a', 'a');
      const fetchSecret = vi.fn(async () => text);
      const { lines, logger } = log();
      const cache = createSigningKeyCache({ ref: { secretsManager: 'signing' }, secrets: createSecretResolver({ fetchSecret }), log: logger, maxAgeMs: 15 * 60_000 });
      const first = await cache.get();
      expect(await cache.get()).toBe(first);
      expect(fetchSecret).toHaveBeenCalledTimes(1);
      // A hint signed by a generation this container has not read yet: one more read.
      text = ringText('a', 'a', 'b');
      const reread = await cache.withKey('b');
      expect(reread.has('b')).toBe(true);
      expect(fetchSecret).toHaveBeenCalledTimes(2);
      expect(lines.some((l) => l.includes('signing_keys.reloaded'))).toBe(true);
      // An unknown key id again within 30 s: no read (a forged kid cannot make it read on every request).
      expect(await cache.withKey('zz')).toBe(reread);
      expect(fetchSecret).toHaveBeenCalledTimes(2);
      // After maxAgeMs the ring is read again.
      vi.setSystemTime(new Date('2025-01-01T00:16:00Z'));
      await cache.get();
      expect(fetchSecret).toHaveBeenCalledTimes(3);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not keep a failed read', async () => {
    let fail = true;
    const cache = createSigningKeyCache({
      ref: { secretsManager: 'signing' },
      secrets: createSecretResolver({ fetchSecret: async () => (fail ? Promise.reject(new Error('down')) : ringText('a', 'a')) }),
      log: createLogger({ sink: () => {} }),
      maxAgeMs: 60_000,
    });
    await expect(cache.get()).rejects.toMatchObject({ code: 'temporarily_unavailable' });
    fail = false;
    expect((await cache.get()).current).toBe('a');
  });
});
