/**
 * The second part of a cold start (functions/handler.ts): builds the runtime from the parsed
 * configuration and the secrets being read, waits for what the manifest says the function reads
 * during init (a missing or malformed key ring fails the start, not a request), and serves the
 * routes.
 */
import { lambdaHandler, type Handler } from '../lib/lambda/apigw.js';
import type { Route } from '../lib/routes/common.js';
import { createRuntime, type RuntimeOptions } from '../lib/runtime.js';
import type { FunctionSpec } from './manifest.js';

export async function serve(spec: FunctionSpec, routes: Readonly<Record<string, Route>>, parts: Pick<RuntimeOptions, 'config' | 'table' | 'secrets' | 'log'>): Promise<Handler> {
  const runtime = createRuntime(parts);
  // The signing ring is read and checked here (a malformed ring fails the start); a private key is
  // imported on its first signature and kept (lib/oidc/signing-keys.ts): most containers sign with
  // one algorithm, many with none.
  await Promise.all([spec.secrets.keyRing ? runtime.cipher() : undefined, spec.secrets.signingKeys ? runtime.signing.get() : undefined]);
  return lambdaHandler(() => runtime, routes);
}
