/**
 * Everything a request needs, built once per container (cold start) and shared by requests:
 * the validated configuration, the table, the secret cache, the token cipher, provider metadata
 * and JWKS caches, the logger and the clock, made by `createRuntime`: Lambda handlers from the
 * environment (functions/serve.ts), tests and the local runner their own.
 */
import type { Config } from './config/parse.js';
import { generateKeyRingText, parseKeyRing } from './crypto/key-ring.js';
import { createTokenCipher, type TokenCipher } from './crypto/token-cipher.js';
import { createLogger, type Logger } from './log.js';
import { PROVIDER_DIMENSION } from './metrics-names.js';
import type { HttpOptions } from './oauth/http.js';
import { createJwksCache, type JwksCache } from './oauth/id-token.js';
import { createMetadataCache, type MetadataCache } from './oauth/metadata.js';
import { createSigningKeyCache, type SigningKeyCache } from './oidc/signing-keys.js';
import { createSecretResolver, type SecretFetcher, type SecretResolver } from './secrets/secrets.js';
import { NO_TABLE, type Table } from './store/table.js';

export interface Runtime {
  readonly config: Config;
  readonly table: Table;
  readonly secrets: SecretResolver;
  readonly metadata: MetadataCache;
  readonly jwks: JwksCache;
  readonly log: Logger;
  /** Requests to no particular provider: counted under `Service` alone. */
  readonly http: HttpOptions;
  /**
   * Requests to one provider (`name` in the configuration): counted under `Service` and, per
   * provider, under `Service` and `Provider` (the dashboard's upstream latency and failures).
   */
  upstreamHttp(provider: string): HttpOptions;
  /** Seconds since the epoch. */
  now(): number;
  /**
   * The token cipher, from the key ring: read on first use, again after `KEY_RING_MAX_AGE_MS`,
   * and again (at most every 30 s) when a ciphertext names a key this container does not know,
   * so a rotation never ends sessions in containers that still hold the old ring.
   */
  cipher(): Promise<TokenCipher>;
  /**
   * The ID-token signing keys (`signingKeys`): read on first use, again after
   * `KEY_RING_MAX_AGE_MS`, and again (at most every 30 s) for a key id the ring lacks; private keys
   * are imported once per ring. Locally, without `signingKeys`, generated for the process.
   */
  readonly signing: SigningKeyCache;
}

/** Containers re-read the key ring at least this often, as they do other secrets. */
export const KEY_RING_MAX_AGE_MS = 15 * 60_000;

export interface RuntimeOptions {
  readonly config: Config;
  readonly table: Table;
  readonly fetchSecret?: SecretFetcher;
  /** The secret resolver, when the caller made one (a cold start prefetching its secrets); else one from `fetchSecret` and `env`. */
  readonly secrets?: SecretResolver;
  readonly env?: NodeJS.ProcessEnv;
  readonly log?: Logger;
  readonly now?: () => number;
  readonly http?: HttpOptions;
}

export function createRuntime(options: RuntimeOptions): Runtime {
  const log = options.log ?? createLogger();
  const secrets = options.secrets ?? createSecretResolver({ fetchSecret: options.fetchSecret, env: options.env });
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  let ring: { at: number; cipher: Promise<TokenCipher> } | undefined;
  let lastReload = 0;
  // The first read takes what the cold start already read (started by functions/handler.ts, taken by functions/serve.ts);
  // every later one, a reload, reads the secret again.
  let reload = false;
  const loadCipher = async (): Promise<TokenCipher> => {
    const ref = options.config.tokenEncryptionKeys;
    let text: string;
    if (ref) {
      if (reload) secrets.invalidate(ref);
      reload = true;
      text = await secrets.resolve(ref);
    } else {
      text = generateKeyRingText();
      log.warn('keys.generated', { message: 'no tokenEncryptionKeys configured: generated a key ring for this process; sessions do not survive a restart' });
    }
    return createTokenCipher(parseKeyRing(text), options.config.storage.ciphertexts);
  };
  const current = (): Promise<TokenCipher> => {
    const generated = !options.config.tokenEncryptionKeys;
    if (!ring || (!generated && Date.now() - ring.at > KEY_RING_MAX_AGE_MS)) {
      const entry = { at: Date.now(), cipher: loadCipher() };
      ring = entry;
      entry.cipher.catch(() => ring === entry && (ring = undefined));
    }
    return ring.cipher;
  };
  /** Decrypts; on a key id this ring lacks, reads the ring again once (rotation in progress). */
  const reloading: TokenCipher = {
    encrypt: async (plaintext, context) => (await current()).encrypt(plaintext, context),
    async decrypt(jwe, context) {
      const cipher = await current();
      try {
        return await cipher.decrypt(jwe, context);
      } catch (err) {
        if (!options.config.tokenEncryptionKeys || !cipher.unknownKey(jwe)) throw err;
        if (Date.now() - lastReload >= 30_000) {
          lastReload = Date.now();
          ring = undefined;
          log.info('keys.reloaded', { reason: 'a ciphertext names a key this container does not know' });
        }
        // Concurrent decrypts share one reload: each retries once with the ring read since.
        const next = await current();
        if (next === cipher) throw err;
        return next.decrypt(jwe, context);
      }
    },
    unknownKey: () => false,
    // Handles are made under the current key; checking an old one uses the ring as it is.
    mac: () => {
      throw new TypeError('use the cipher returned by cipher() for macs');
    },
    verifyMac: () => false,
    lookupKey: () => {
      throw new TypeError('use the cipher returned by cipher() for lookup keys');
    },
    lookupKeys: () => {
      throw new TypeError('use the cipher returned by cipher() for lookup keys');
    },
  };
  const observer = (provider: string | undefined): HttpOptions['observe'] => (r) => log.metric(
    'upstream.request',
    { UpstreamRequests: 1, UpstreamFailures: r.ok ? 0 : 1, UpstreamLatency: r.ms },
    { upstream_host: r.host, upstream_status: r.status },
    provider === undefined ? undefined : { name: PROVIDER_DIMENSION, value: provider, aggregate: true },
  );
  const http: HttpOptions = { ...options.http, observe: observer(undefined) };
  const byProvider = new Map<string, HttpOptions>();
  const upstreamHttp = (provider: string): HttpOptions => {
    let labelled = byProvider.get(provider);
    if (!labelled) byProvider.set(provider, (labelled = { ...options.http, observe: observer(provider) }));
    return labelled;
  };
  const signing = createSigningKeyCache({ ref: options.config.signingKeys, secrets, log, maxAgeMs: KEY_RING_MAX_AGE_MS });
  return {
    config: options.config,
    table: options.table,
    secrets,
    signing,
    metadata: createMetadataCache({ ...http, forProvider: upstreamHttp }),
    jwks: createJwksCache(),
    log,
    http,
    upstreamHttp,
    now,
    async cipher() {
      const cipher = await current();
      return {
        ...reloading,
        mac: (data: string) => cipher.mac(data),
        verifyMac: (kid: string, data: string, mac: string) => cipher.verifyMac(kid, data, mac),
        lookupKey: (data: string) => cipher.lookupKey(data),
        lookupKeys: (data: string) => cipher.lookupKeys(data),
      };
    },
  };
}
