/**
 * Secret references resolved to values, through a cache: each secret is read once per container,
 * again after `maxAgeMs`, and again on demand (`invalidate`, e.g. after an upstream
 * `invalid_client`, when the secret may have been rotated).
 */
import type { SecretRef } from '../config/schema.js';
import { BrokerUnavailableError } from '../errors.js';

/** Reads one secret string by name or ARN (Secrets Manager `GetSecretValue`). */
export interface SecretFetcher {
  (secretId: string): Promise<string>;
  /**
   * Reads several secrets in one call (Secrets Manager `BatchGetSecretValue`), where the store
   * has such a call: the strings it could read, by the id they were asked for. An id it could not
   * read is missing from the answer (its own read then names the error); a failure of the whole
   * call rejects.
   */
  readonly many?: (secretIds: readonly string[]) => Promise<ReadonlyMap<string, string>>;
}

/**
 * Reads already under way for `ids`: `values` brings what they could read, by id, and rejects only
 * when a read of them all at once failed as a whole (`SecretFetcher.many`).
 */
export interface EarlyReads {
  readonly ids: readonly string[];
  readonly values: Promise<ReadonlyMap<string, string>>;
  /**
   * Where the ids were read one by one (no `many`, or a single id): each id's own read. Its
   * outcome, a failure included, is the id's, as the resolver's own read would be: reading it
   * again would only make a cold start wait twice for a store that does not answer.
   */
  readonly each?: ReadonlyMap<string, Promise<string>>;
}

export class SecretError extends Error {
  override readonly name = 'SecretError';
}

export interface SecretResolver {
  resolve(ref: SecretRef): Promise<string>;
  /**
   * Starts reading the Secrets Manager ids not already read, all in one call where the fetcher
   * has one (`many`): what a cold start reads, at once. An id that call does not return, or every
   * id if the call fails, is then read on its own, so a prefetch never makes a read fail that
   * would have succeeded. Returns at once; `resolve` waits for the reads it started.
   *
   * `started`: reads begun before this resolver was made (`readAtStart`, at the very start of a
   * cold start). Its values are taken for the ids it covers, with the same fallback; the other
   * ids are read as above, and what it read beyond `secretIds` is left unused.
   */
  prefetch(secretIds: readonly string[], started?: EarlyReads): void;
  invalidate(ref: SecretRef): void;
  clear(): void;
}

export interface SecretResolverOptions {
  readonly fetchSecret?: SecretFetcher;
  readonly env?: NodeJS.ProcessEnv;
  readonly maxAgeMs?: number;
  readonly now?: () => number;
  /** Told when a `prefetch` call fails as a whole (its ids are then read one by one). */
  readonly onBatchFailure?: (cause: unknown) => void;
}

export function createSecretResolver(options: SecretResolverOptions = {}): SecretResolver {
  const env = options.env ?? process.env;
  const maxAgeMs = options.maxAgeMs ?? 15 * 60_000;
  const now = options.now ?? Date.now;
  // One entry per Secrets Manager id: a promise, so concurrent first reads share one call.
  const cache = new Map<string, { at: number; value: Promise<string> }>();

  const fresh = (id: string) => {
    const hit = cache.get(id);
    return hit && now() - hit.at < maxAgeMs ? hit : undefined;
  };
  const remember = (id: string, reading: Promise<string>): Promise<string> => {
    const value = reading.catch((cause: unknown) => {
      throw new BrokerUnavailableError('a secret the broker needs could not be read', { cause });
    });
    const entry = { at: now(), value };
    cache.set(id, entry);
    // A failure is not cached; a newer entry made meanwhile is kept.
    value.catch(() => cache.get(id) === entry && cache.delete(id));
    return value;
  };
  const read = (id: string): Promise<string> => {
    const hit = fresh(id);
    if (hit) return hit.value;
    if (!options.fetchSecret) return Promise.reject(new SecretError(`no Secrets Manager reader to read "${id}"`));
    return remember(id, options.fetchSecret(id));
  };

  return {
    async resolve(ref) {
      if ('value' in ref) return ref.value;
      if ('env' in ref) {
        const value = env[ref.env];
        if (value === undefined || value === '') throw new SecretError(`environment variable ${ref.env} is not set`);
        return value;
      }
      const text = await read(ref.secretsManager);
      if (ref.jsonKey === undefined) return text;
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        throw new SecretError(`secret "${ref.secretsManager}" is not JSON, so it has no key "${ref.jsonKey}"`);
      }
      const field = (json as Record<string, unknown> | null)?.[ref.jsonKey];
      if (typeof field !== 'string' || field === '') {
        throw new SecretError(`secret "${ref.secretsManager}" has no string field "${ref.jsonKey}"`);
      }
      return field;
    },
    prefetch(secretIds, started) {
      const fetch = options.fetchSecret;
      const wanted = [...new Set(secretIds)].filter((id) => !fresh(id));
      if (!fetch || wanted.length === 0) return;
      // Told once per prefetch, however many of its batches fail.
      let told = false;
      // Each id from `reads` where it brought one, else read on its own.
      const take = (ids: readonly string[], reads: Promise<ReadonlyMap<string, string>>) => {
        const values = reads.catch((cause: unknown): ReadonlyMap<string, string> => {
          try {
            if (!told) options.onBatchFailure?.(cause);
          } catch {
            // Telling is best effort: the reads one by one go ahead.
          }
          told = true;
          return new Map();
        });
        for (const id of ids) void remember(id, values.then((found) => (found.has(id) ? found.get(id)! : fetch(id))));
      };
      const early = started ? wanted.filter((id) => started.ids.includes(id)) : [];
      const own = early.filter((id) => started?.each?.has(id));
      for (const id of own) void remember(id, started!.each!.get(id)!);
      const batched = early.filter((id) => !own.includes(id));
      if (started && batched.length > 0) take(batched, started.values);
      const rest = wanted.filter((id) => !early.includes(id));
      if (rest.length === 0) return;
      if (!fetch.many || rest.length === 1) {
        for (const id of rest) void read(id);
        return;
      }
      take(rest, fetch.many(rest));
    },
    invalidate(ref) {
      if ('secretsManager' in ref) cache.delete(ref.secretsManager);
    },
    clear() {
      cache.clear();
    },
  };
}
