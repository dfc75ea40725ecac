/**
 * A function's Lambda handler, made from its manifest entry (functions/manifest.ts): the routes
 * object must have exactly the manifest's route keys, and the wiring exactly what the manifest
 * grants (a table for a function with item grants, a secret fetcher for one that reads secrets),
 * or the entry point does not compile.
 *
 * Cold start in two parts, so the secret reads overlap the loading of the code that needs them:
 * this module (with the configuration's parser and the AWS client, a small part of the bundle)
 * parses the configuration and starts reading every secret the function reads, in one
 * `BatchGetSecretValue`; then the routes and the runtime (functions/serve.ts: jose, the broker,
 * the store) are imported, a chunk of their own in the bundle, while that read is on the wire.
 */
import type { Handler } from '../lib/lambda/apigw.js';
import { configFromEnv, type Config } from '../lib/config/parse.js';
import { createLogger } from '../lib/log.js';
import { METRICS_SERVICE_ENV } from '../lib/metrics-names.js';
import type { Route } from '../lib/routes/common.js';
import { createSecretResolver, type SecretFetcher } from '../lib/secrets/secrets.js';
import { NO_TABLE, type Table } from '../lib/store/table.js';
import type { serve } from './serve.js';
import { FUNCTIONS, functionSpec, type FunctionName, type RouteKeyOf, type SecretsSpec } from './manifest.js';

type Spec<N extends FunctionName> = (typeof FUNCTIONS)[N];

/** A function's routes: exactly its manifest route keys, each a route. */
export type FunctionRoutes<N extends FunctionName> = { readonly [K in RouteKeyOf<N>]: Route };

type TableWiring<N extends FunctionName> = [keyof Spec<N>['items']] extends [never]
  ? { readonly table?: never }
  : { readonly table: (env: NodeJS.ProcessEnv) => Table };

type SecretWiring<N extends FunctionName> = Spec<N>['secrets'] extends { readonly keyRing: false; readonly clientSecrets: false; readonly signingKeys: false }
  ? { readonly fetchSecret?: never }
  : { readonly fetchSecret: () => SecretFetcher };

/** What the entry point wires: the table and the secret fetcher exactly when the manifest grants them. */
export type FunctionWiring<N extends FunctionName> = TableWiring<N> & SecretWiring<N>;

const errorName = (err: unknown) => (err instanceof Error ? err.name : 'Error');

/** The Secrets Manager ids the function reads, by its manifest entry: all are read at cold start. */
export function secretsReadBy(spec: SecretsSpec, config: Config): string[] {
  const refs = [
    spec.keyRing ? config.tokenEncryptionKeys : undefined,
    spec.signingKeys ? config.signingKeys : undefined,
    ...(spec.clientSecrets ? Object.values(config.providers).map((p) => p.clientSecret) : []),
  ];
  return refs.flatMap((ref) => (ref && 'secretsManager' in ref ? [ref.secretsManager] : []));
}

/**
 * Parses the configuration from the environment (a bad one fails the cold start, naming every bad
 * field), starts reading the function's secrets, imports its routes (`load`) and the runtime, and
 * serves them. Call it with top-level `await` at module scope, with `load` a dynamic import of the
 * function's `main.js` (its routes and functions/serve.ts), so that the bundle puts them in a chunk
 * loaded after the reads start.
 */
export async function brokerHandler<N extends FunctionName>(
  name: N,
  load: () => Promise<{ readonly routes: FunctionRoutes<N>; readonly serve: typeof serve }>,
  wiring: FunctionWiring<N>,
): Promise<Handler> {
  const spec = functionSpec(name);
  const env = process.env;
  const config = configFromEnv(env);
  const log = createLogger({ level: (env['LOG_LEVEL'] as 'info' | undefined) ?? 'info', service: env[METRICS_SERVICE_ENV] });
  const fetchSecret = (wiring as { fetchSecret?: () => SecretFetcher }).fetchSecret?.();
  const secrets = createSecretResolver({
    ...(fetchSecret ? { fetchSecret } : {}),
    env,
    // Named by its root cause (AccessDeniedException: a role without BatchGetSecretValue).
    onBatchFailure: (cause) => log.warn('secrets.batch_failed', { message: 'reading the secrets at once failed; reading them one by one', error: errorName(cause instanceof Error && cause.cause !== undefined ? cause.cause : cause) }),
  });
  secrets.prefetch(secretsReadBy(spec.secrets, config));
  const table = (wiring as { table?: (env: NodeJS.ProcessEnv) => Table }).table?.(env) ?? NO_TABLE;
  const { routes, serve: start } = await load();
  return start(spec, routes, { config, table, secrets, log });
}
