import { BrokerUnavailableError } from '../../../lib/errors.js';
import { describe, expect, it } from 'vitest';
import { rejectionOf } from '../../support/errors.js';
import { SecretError, createSecretResolver, type SecretFetcher } from '../../../lib/secrets/secrets.js';

/** A fetcher that counts its calls and answers from `answers` (a value, or an Error to throw). */
function countingFetcher(answers: Record<string, string | Error | (() => string | Error)>) {
  const calls: string[] = [];
  const fetchSecret: SecretFetcher = async (id) => {
    calls.push(id);
    const entry = answers[id];
    const answer = typeof entry === 'function' ? entry() : entry;
    if (answer === undefined) throw new SecretError(`no secret ${id}`);
    if (answer instanceof Error) throw answer;
    return answer;
  };
  return { calls, fetchSecret };
}

/** A manual clock in milliseconds. */
function clock(start = 1_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

const secretError = (promise: Promise<unknown>): Promise<SecretError> => rejectionOf(promise, SecretError);

describe('createSecretResolver: failures', () => {
  it('refuses a missing or empty environment variable', async () => {
    const resolver = createSecretResolver({ env: { EMPTY: '' } });
    expect((await secretError(resolver.resolve({ env: 'MISSING' }))).message).toContain('MISSING');
    await secretError(resolver.resolve({ env: 'EMPTY' }));
  });

  it('refuses a Secrets Manager reference without a fetcher', async () => {
    await secretError(createSecretResolver({ env: {}, now: clock().now }).resolve({ secretsManager: 'idp' }));
  });

  it('refuses a jsonKey the secret does not have, without echoing the secret', async () => {
    const { fetchSecret } = countingFetcher({ idp: '{"other":"s3cr3t-value"}' });
    const err = await secretError(createSecretResolver({ fetchSecret, env: {}, now: clock().now }).resolve({ secretsManager: 'idp', jsonKey: 'clientSecret' }));
    expect(err.message).toContain('clientSecret');
    expect(err.message).not.toContain('s3cr3t-value');
  });

  it('refuses a jsonKey whose value is not a non-empty string', async () => {
    const { fetchSecret } = countingFetcher({ a: '{"k":42}', b: '{"k":""}', c: 'null', d: '["k"]' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    for (const id of ['a', 'b', 'c', 'd']) await secretError(resolver.resolve({ secretsManager: id, jsonKey: 'k' }));
  });

  it('refuses a non-JSON secret read with a jsonKey, without echoing it', async () => {
    const { fetchSecret } = countingFetcher({ idp: 'plain-s3cr3t' });
    const err = await secretError(createSecretResolver({ fetchSecret, env: {}, now: clock().now }).resolve({ secretsManager: 'idp', jsonKey: 'k' }));
    expect(err.message).not.toContain('plain-s3cr3t');
  });

  it('does not cache a failed fetch', async () => {
    let fail = true;
    const { calls, fetchSecret } = countingFetcher({ idp: () => (fail ? new SecretError('throttled') : 'value') });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    // A failed read is a 503 for the app (temporarily_unavailable), its cause kept for the log.
    const err = await resolver.resolve({ secretsManager: 'idp' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BrokerUnavailableError);
    expect((err as BrokerUnavailableError).status).toBe(503);
    expect((err as Error).cause).toBeInstanceOf(SecretError);
    fail = false;
    expect(await resolver.resolve({ secretsManager: 'idp' })).toBe('value');
    expect(calls).toEqual(['idp', 'idp']);
  });
});

describe('createSecretResolver', () => {
  it('resolves {value} as is, without a fetch', async () => {
    const { calls, fetchSecret } = countingFetcher({});
    expect(await createSecretResolver({ fetchSecret, env: {}, now: clock().now }).resolve({ value: 'inline' })).toBe('inline');
    expect(calls).toEqual([]);
  });

  it('resolves {env} from the injected environment', async () => {
    expect(await createSecretResolver({ env: { IDP_SECRET: 'from-env' } }).resolve({ env: 'IDP_SECRET' })).toBe('from-env');
  });

  it('resolves {secretsManager} as the whole string, and a jsonKey field from a JSON secret', async () => {
    const { fetchSecret } = countingFetcher({ raw: 'whole', json: '{"clientSecret":"field","x":1}' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    expect(await resolver.resolve({ secretsManager: 'raw' })).toBe('whole');
    expect(await resolver.resolve({ secretsManager: 'json', jsonKey: 'clientSecret' })).toBe('field');
  });

  it('caches per secret id: two resolves, one fetch', async () => {
    const { calls, fetchSecret } = countingFetcher({ idp: '{"a":"1","b":"2"}' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    expect(await resolver.resolve({ secretsManager: 'idp', jsonKey: 'a' })).toBe('1');
    expect(await resolver.resolve({ secretsManager: 'idp', jsonKey: 'b' })).toBe('2');
    expect(calls).toEqual(['idp']);
  });

  it('shares one fetch between concurrent first reads', async () => {
    const { calls, fetchSecret } = countingFetcher({ idp: 'v' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    expect(await Promise.all([resolver.resolve({ secretsManager: 'idp' }), resolver.resolve({ secretsManager: 'idp' })])).toEqual(['v', 'v']);
    expect(calls).toEqual(['idp']);
  });

  it('reads again once maxAgeMs has passed', async () => {
    let version = 1;
    const { calls, fetchSecret } = countingFetcher({ idp: () => `v${version}` });
    const c = clock();
    const resolver = createSecretResolver({ fetchSecret, env: {}, maxAgeMs: 60_000, now: c.now });
    expect(await resolver.resolve({ secretsManager: 'idp' })).toBe('v1');
    version = 2;
    c.advance(59_999);
    expect(await resolver.resolve({ secretsManager: 'idp' })).toBe('v1');
    expect(calls).toHaveLength(1);
    c.advance(1);
    expect(await resolver.resolve({ secretsManager: 'idp' })).toBe('v2');
    expect(calls).toHaveLength(2);
  });

  it('reads again after invalidate, and only for that secret', async () => {
    let version = 1;
    const { calls, fetchSecret } = countingFetcher({ idp: () => `v${version}`, keys: 'k' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    await resolver.resolve({ secretsManager: 'idp' });
    await resolver.resolve({ secretsManager: 'keys' });
    version = 2;
    resolver.invalidate({ secretsManager: 'idp', jsonKey: 'ignored' });
    resolver.invalidate({ value: 'no-op' });
    expect(await resolver.resolve({ secretsManager: 'idp' })).toBe('v2');
    expect(await resolver.resolve({ secretsManager: 'keys' })).toBe('k');
    expect(calls).toEqual(['idp', 'keys', 'idp']);
  });

  it('reads everything again after clear', async () => {
    const { calls, fetchSecret } = countingFetcher({ a: '1', b: '2' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    await resolver.resolve({ secretsManager: 'a' });
    await resolver.resolve({ secretsManager: 'b' });
    resolver.clear();
    await resolver.resolve({ secretsManager: 'a' });
    await resolver.resolve({ secretsManager: 'b' });
    expect(calls).toEqual(['a', 'b', 'a', 'b']);
  });
});

/** `countingFetcher` with a batch read (`many`) that records each call's ids, answers what it knows, and fails when told. */
function batchingFetcher(answers: Record<string, string>, options: { failBatch?: Error } = {}) {
  const single = countingFetcher(answers);
  const batches: string[][] = [];
  const fetchSecret: SecretFetcher = Object.assign(single.fetchSecret, {
    many: async (ids: readonly string[]) => {
      batches.push([...ids]);
      if (options.failBatch) throw options.failBatch;
      return new Map(ids.filter((id) => answers[id] !== undefined).map((id) => [id, answers[id]!]));
    },
  });
  return { calls: single.calls, batches, fetchSecret };
}

describe('createSecretResolver: prefetch', () => {
  it('reads the ids in one batch call, and resolves them from it with no further read', async () => {
    const { calls, batches, fetchSecret } = batchingFetcher({ keys: 'k', signing: 's', idp: '{"clientSecret":"c"}' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    resolver.prefetch(['keys', 'signing', 'idp', 'keys']);
    expect(await resolver.resolve({ secretsManager: 'keys' })).toBe('k');
    expect(await resolver.resolve({ secretsManager: 'signing' })).toBe('s');
    expect(await resolver.resolve({ secretsManager: 'idp', jsonKey: 'clientSecret' })).toBe('c');
    expect(batches).toEqual([['keys', 'signing', 'idp']]);
    expect(calls).toEqual([]);
  });

  it('reads an id the batch did not return on its own, so its error is that read\'s', async () => {
    const { calls, batches, fetchSecret } = batchingFetcher({ keys: 'k' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    resolver.prefetch(['keys', 'gone']);
    expect(await resolver.resolve({ secretsManager: 'keys' })).toBe('k');
    const err = await rejectionOf(resolver.resolve({ secretsManager: 'gone' }), BrokerUnavailableError);
    expect((err.cause as Error).message).toBe('no secret gone');
    expect(batches).toEqual([['keys', 'gone']]);
    expect(calls).toEqual(['gone']);
    // The failure is not cached: the next resolve reads again.
    await rejectionOf(resolver.resolve({ secretsManager: 'gone' }), BrokerUnavailableError);
    expect(calls).toEqual(['gone', 'gone']);
  });

  it('falls back to one read per id when the batch call fails as a whole, and says so', async () => {
    const failures: unknown[] = [];
    const denied = new SecretError('reading 2 secrets at once failed (AccessDeniedException)');
    const { calls, fetchSecret } = batchingFetcher({ keys: 'k', signing: 's' }, { failBatch: denied });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now, onBatchFailure: (cause) => failures.push(cause) });
    resolver.prefetch(['keys', 'signing']);
    expect(await resolver.resolve({ secretsManager: 'keys' })).toBe('k');
    expect(await resolver.resolve({ secretsManager: 'signing' })).toBe('s');
    expect(calls.sort()).toEqual(['keys', 'signing']);
    expect(failures).toEqual([denied]);
  });

  it('reads one by one even when telling of the batch failure throws', async () => {
    const { calls, fetchSecret } = batchingFetcher({ keys: 'k', signing: 's' }, { failBatch: new SecretError('throttled') });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now, onBatchFailure: () => { throw new Error('the logger broke'); } });
    resolver.prefetch(['keys', 'signing']);
    expect(await resolver.resolve({ secretsManager: 'keys' })).toBe('k');
    expect(await resolver.resolve({ secretsManager: 'signing' })).toBe('s');
    expect(calls.sort()).toEqual(['keys', 'signing']);
  });

  it('reads a single id, or every id for a fetcher without a batch call, one by one', async () => {
    const one = batchingFetcher({ keys: 'k' });
    createSecretResolver({ fetchSecret: one.fetchSecret, env: {}, now: clock().now }).prefetch(['keys']);
    const plain = countingFetcher({ a: '1', b: '2' });
    const resolver = createSecretResolver({ fetchSecret: plain.fetchSecret, env: {}, now: clock().now });
    resolver.prefetch(['a', 'b']);
    expect(await resolver.resolve({ secretsManager: 'b' })).toBe('2');
    expect(one.batches).toEqual([]);
    expect(one.calls).toEqual(['keys']);
    expect(plain.calls).toEqual(['a', 'b']);
  });

  it('leaves out what is already read and fresh, and reads it again once stale', async () => {
    const c = clock();
    const { calls, batches, fetchSecret } = batchingFetcher({ a: '1', b: '2', c: '3' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, maxAgeMs: 60_000, now: c.now });
    await resolver.resolve({ secretsManager: 'a' });
    resolver.prefetch(['a', 'b', 'c']);
    c.advance(60_000);
    resolver.prefetch(['a', 'b', 'c']);
    expect(calls).toEqual(['a']);
    expect(batches).toEqual([['b', 'c'], ['a', 'b', 'c']]);
  });

  it('without a fetcher, does nothing (a resolve still names the missing reader)', async () => {
    const resolver = createSecretResolver({ env: {}, now: clock().now });
    resolver.prefetch(['a', 'b']);
    await secretError(resolver.resolve({ secretsManager: 'a' }));
  });
});

describe('createSecretResolver: prefetch with reads already started (the first part of a cold start)', () => {
  const started = (ids: string[], values: Record<string, string> | Error) => ({
    ids,
    values: values instanceof Error ? Promise.reject(values) : Promise.resolve(new Map(Object.entries(values))),
  });

  it('takes the started reads\' values for the ids they cover, and reads nothing more', async () => {
    const { calls, batches, fetchSecret } = batchingFetcher({ keys: 'stale k', signing: 'stale s' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    resolver.prefetch(['keys', 'signing'], started(['keys', 'signing'], { keys: 'k', signing: 's' }));
    expect(await resolver.resolve({ secretsManager: 'keys' })).toBe('k');
    expect(await resolver.resolve({ secretsManager: 'signing' })).toBe('s');
    expect([calls, batches]).toEqual([[], []]);
  });

  it('reads what they did not cover in one batch, and leaves unused what they read beyond the ids asked for', async () => {
    const { calls, batches, fetchSecret } = batchingFetcher({ keys: 'k', signing: 's', idp: 'c' });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    resolver.prefetch(['keys', 'signing', 'idp'], started(['keys', 'gone'], { keys: 'k', gone: 'old' }));
    expect(await resolver.resolve({ secretsManager: 'keys' })).toBe('k');
    expect(await resolver.resolve({ secretsManager: 'idp' })).toBe('c');
    expect(batches).toEqual([['signing', 'idp']]);
    // Not taken: a later read of it goes to the store.
    await rejectionOf(resolver.resolve({ secretsManager: 'gone' }), BrokerUnavailableError);
    expect(calls).toEqual(['gone']);
  });

  it('says once that reading at once failed, when the started reads and the rest\'s batch both fail', async () => {
    const failures: unknown[] = [];
    const { calls, batches, fetchSecret } = batchingFetcher({ keys: 'k', signing: 's', idp: 'c' }, { failBatch: new Error('AccessDeniedException') });
    const resolver = createSecretResolver({ fetchSecret, env: {}, now: clock().now, onBatchFailure: (cause) => failures.push(cause) });
    resolver.prefetch(['keys', 'signing', 'idp'], started(['keys', 'gone'], new Error('AccessDeniedException')));
    for (const id of ['keys', 'signing', 'idp']) await resolver.resolve({ secretsManager: id });
    expect(batches).toEqual([['signing', 'idp']]);
    expect(calls.sort()).toEqual(['idp', 'keys', 'signing']);
    expect(failures).toHaveLength(1);
  });

  it('reads on its own an id they did not bring, and all of them, said once, when they failed as a whole', async () => {
    const failures: unknown[] = [];
    const { calls, fetchSecret } = batchingFetcher({ keys: 'k', signing: 's' });
    const missing = createSecretResolver({ fetchSecret, env: {}, now: clock().now });
    missing.prefetch(['keys', 'signing'], started(['keys', 'signing'], { keys: 'k' }));
    expect(await missing.resolve({ secretsManager: 'signing' })).toBe('s');
    expect(calls).toEqual(['signing']);
    const denied = new Error('AccessDeniedException');
    const failed = createSecretResolver({ fetchSecret, env: {}, now: clock().now, onBatchFailure: (cause) => failures.push(cause) });
    failed.prefetch(['keys', 'signing'], started(['keys', 'signing'], denied));
    expect(await failed.resolve({ secretsManager: 'keys' })).toBe('k');
    expect(await failed.resolve({ secretsManager: 'signing' })).toBe('s');
    expect(calls.slice(1).sort()).toEqual(['keys', 'signing']);
    expect(failures).toEqual([denied]);
  });
});
