/**
 * Secret references resolved to values, through a cache: each secret is read once per container,
 * again after `maxAgeMs`, and again on demand (`invalidate`, e.g. after an upstream
 * `invalid_client`, when the secret may have been rotated).
 */
import type { SecretRef } from '../config/schema.js';
import { BrokerUnavailableError } from '../errors.js';

/** Reads one secret string by name or ARN (Secrets Manager `GetSecretValue`). */
export type SecretFetcher = (secretId: string) => Promise<string>;

export class SecretError extends Error {
  override readonly name = 'SecretError';
}

export interface SecretResolver {
  resolve(ref: SecretRef): Promise<string>;
  invalidate(ref: SecretRef): void;
  clear(): void;
}

export interface SecretResolverOptions {
  readonly fetchSecret?: SecretFetcher;
  readonly env?: NodeJS.ProcessEnv;
  readonly maxAgeMs?: number;
  readonly now?: () => number;
}

export function createSecretResolver(options: SecretResolverOptions = {}): SecretResolver {
  const env = options.env ?? process.env;
  const maxAgeMs = options.maxAgeMs ?? 15 * 60_000;
  const now = options.now ?? Date.now;
  // One entry per Secrets Manager id: a promise, so concurrent first reads share one call.
  const cache = new Map<string, { at: number; value: Promise<string> }>();

  const read = (id: string): Promise<string> => {
    const hit = cache.get(id);
    if (hit && now() - hit.at < maxAgeMs) return hit.value;
    if (!options.fetchSecret) return Promise.reject(new SecretError(`no Secrets Manager reader to read "${id}"`));
    const value = options.fetchSecret(id).catch((cause: unknown) => {
      throw new BrokerUnavailableError('a secret the broker needs could not be read', { cause });
    });
    const entry = { at: now(), value };
    cache.set(id, entry);
    // A failure is not cached; a newer entry made meanwhile is kept.
    value.catch(() => cache.get(id) === entry && cache.delete(id));
    return value;
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
    invalidate(ref) {
      if ('secretsManager' in ref) cache.delete(ref.secretsManager);
    },
    clear() {
      cache.clear();
    },
  };
}
