/**
 * The second part of a cold start (functions/handler.ts): parses the configuration (a bad one
 * fails the start, naming every bad field), takes the secret reads already on the wire and starts
 * those the configuration names that they do not cover, builds the runtime, waits for what the
 * manifest says the function reads during init (a missing or malformed key ring fails the start,
 * not a request), and serves the routes.
 */
import { configFromEnv } from '../lib/config/parse.js';
import { lambdaHandler, type Handler } from '../lib/lambda/apigw.js';
import { createLogger } from '../lib/log.js';
import { METRICS_SERVICE_ENV } from '../lib/metrics-names.js';
import type { Route } from '../lib/routes/common.js';
import { createRuntime } from '../lib/runtime.js';
import { createSecretResolver } from '../lib/secrets/secrets.js';
import { createTable, NO_TABLE } from '../lib/store/table.js';
import type { ColdStart } from './handler.js';
import { functionSpec, secretsReadBy, type FunctionName } from './manifest.js';

/** The name of the error at the end of `err`'s causes: what the store answered (AccessDeniedException), under the adapter's and the client's wrappers. */
function rootCauseName(err: unknown): string {
  let e = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  return e instanceof Error ? e.name : 'Error';
}

export async function serve(name: FunctionName, routes: Readonly<Record<string, Route>>, start: ColdStart): Promise<Handler> {
  const spec = functionSpec(name);
  const { env } = start;
  const config = configFromEnv(env);
  const log = createLogger({ level: (env['LOG_LEVEL'] as 'info' | undefined) ?? 'info', service: env[METRICS_SERVICE_ENV] });
  const secrets = createSecretResolver({
    ...(start.fetchSecret ? { fetchSecret: start.fetchSecret } : {}),
    env,
    // Named by its root cause (AccessDeniedException: a role without BatchGetSecretValue).
    onBatchFailure: (cause) => log.warn('secrets.batch_failed', { message: 'reading the secrets at once failed; reading them one by one', error: rootCauseName(cause) }),
  });
  secrets.prefetch(secretsReadBy(spec.secrets, config), start.early);
  const wired = start.dynamo?.(env);
  const table = wired ? createTable(wired.name, wired.client) : NO_TABLE;
  const runtime = createRuntime({ config, table, secrets, log });
  // The signing ring is read and checked here (a malformed ring fails the start); a private key is
  // imported on its first signature and kept (lib/oidc/signing-keys.ts): most containers sign with
  // one algorithm, many with none.
  await Promise.all([spec.secrets.keyRing ? runtime.cipher() : undefined, spec.secrets.signingKeys ? runtime.signing.get() : undefined]);
  return lambdaHandler(() => runtime, routes);
}
