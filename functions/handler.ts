/**
 * A function's Lambda handler, made from its manifest entry (functions/manifest.ts): the routes
 * object must have exactly the manifest's route keys, and the wiring exactly what the manifest
 * grants (a DynamoDB client for a function with item grants, a secret fetcher for one that reads
 * secrets), or the entry point does not compile.
 *
 * Cold start in two parts, so the secret reads overlap the loading of the code that needs them.
 * This module, the whole of what loads first (with the small AWS client and SigV4, about 9 KiB),
 * starts reading the function's secrets before anything else: the ids the stack wrote into its
 * environment (`BROKER_SECRET_IDS`), all in one `BatchGetSecretValue`. Then the rest (the
 * configuration's parser, jose, the broker, the runtime: functions/serve.ts) is imported, a chunk of
 * its own in the bundle, while that read is on the wire; it parses the configuration, takes the
 * values read, and reads whatever the configuration names that the environment did not.
 *
 * So that the first part stays small, it imports nothing the second part imports (only types):
 * the bundler would otherwise put the shared code in a third file, loaded first.
 */
import type { TableClient } from '../lib/store/table.js';
import type { Handler } from '../lib/lambda/apigw.js';
import type { Route } from '../lib/routes/common.js';
import type { EarlyReads, SecretFetcher } from '../lib/secrets/secrets.js';
import { readAtStart } from '../lib/secrets/secrets-manager.js';
import type { FUNCTIONS, FunctionName, RouteKeyOf } from './manifest.js';
import type { serve } from './serve.js';

/**
 * The environment variable with the Secrets Manager ids a function reads at cold start, a JSON
 * array: written by the stack (infra/constructs/broker-function.ts) from the same list the
 * function's grants come from (`secretsReadBy` in functions/manifest.ts).
 */
export const SECRET_IDS_ENV = 'BROKER_SECRET_IDS';

type Spec<N extends FunctionName> = (typeof FUNCTIONS)[N];

/** A function's routes: exactly its manifest route keys, each a route. */
export type FunctionRoutes<N extends FunctionName> = { readonly [K in RouteKeyOf<N>]: Route };

/** The table a function uses: its name and a DynamoDB client (lib/store/dynamo-client.ts). */
export interface TableWiring {
  readonly name: string;
  readonly client: TableClient;
}

type DynamoWiring<N extends FunctionName> = [keyof Spec<N>['items']] extends [never]
  ? { readonly dynamo?: never }
  : { readonly dynamo: (env: NodeJS.ProcessEnv) => TableWiring };

type SecretWiring<N extends FunctionName> = Spec<N>['secrets'] extends { readonly keyRing: false; readonly clientSecrets: false; readonly signingKeys: false }
  ? { readonly fetchSecret?: never }
  : { readonly fetchSecret: () => SecretFetcher };

/** What the entry point wires: the DynamoDB client and the secret fetcher exactly when the manifest grants them. */
export type FunctionWiring<N extends FunctionName> = DynamoWiring<N> & SecretWiring<N>;

/** What the first part of a cold start hands the second (functions/serve.ts). */
export interface ColdStart {
  readonly env: NodeJS.ProcessEnv;
  readonly fetchSecret?: SecretFetcher;
  /** The reads started from `BROKER_SECRET_IDS`, when it names any. */
  readonly early?: EarlyReads;
  /** Makes the table's client; called once the configuration is parsed, whose errors come first. */
  readonly dynamo?: (env: NodeJS.ProcessEnv) => TableWiring;
}

/** The ids in `BROKER_SECRET_IDS`; none when it is unset or not a JSON array of strings (the configuration then names them). */
export function secretIdsFromEnv(env: NodeJS.ProcessEnv): string[] {
  const text = env[SECRET_IDS_ENV];
  if (!text) return [];
  try {
    const ids: unknown = JSON.parse(text);
    return Array.isArray(ids) && ids.every((id) => typeof id === 'string' && id !== '') ? [...new Set(ids as string[])] : [];
  } catch {
    return [];
  }
}

/**
 * Starts reading the secrets the environment names, then imports the rest (`load`, a dynamic
 * import of the function's `main.js`: its routes and functions/serve.ts) and serves. Call it with
 * top-level `await` at module scope: a bad configuration or an unreadable key ring then fails the
 * cold start.
 */
export async function brokerHandler<N extends FunctionName>(
  name: N,
  load: () => Promise<{ readonly routes: FunctionRoutes<N>; readonly serve: typeof serve }>,
  wiring: FunctionWiring<N>,
): Promise<Handler> {
  const env = process.env;
  const fetchSecret = (wiring as { fetchSecret?: () => SecretFetcher }).fetchSecret?.();
  const early = fetchSecret ? readAtStart(fetchSecret, secretIdsFromEnv(env)) : undefined;
  const dynamo = (wiring as { dynamo?: (env: NodeJS.ProcessEnv) => TableWiring }).dynamo;
  const { routes, serve: start } = await load();
  return start(name, routes, { env, ...(fetchSecret ? { fetchSecret } : {}), ...(early ? { early } : {}), ...(dynamo ? { dynamo } : {}) });
}
