/**
 * A function's Lambda handler, made from its manifest entry (functions/manifest.ts): the routes
 * object must have exactly the manifest's route keys, and the wiring exactly what the manifest
 * grants (a table for a function with item grants, a secret fetcher for one that reads secrets),
 * or the entry point does not compile. At cold start it reads what the manifest says the function
 * reads: the key ring, the signing keys (their private keys imported on first use).
 */
import { lambdaHandler, type Handler } from '../lib/lambda/apigw.js';
import type { Route } from '../lib/routes/common.js';
import { defaultRuntime, type DefaultRuntimeWiring } from '../lib/runtime.js';
import { FUNCTIONS, functionSpec, type FunctionName, type RouteKeyOf } from './manifest.js';

type Spec<N extends FunctionName> = (typeof FUNCTIONS)[N];

/** A function's routes: exactly its manifest route keys, each a route. */
export type FunctionRoutes<N extends FunctionName> = { readonly [K in RouteKeyOf<N>]: Route };

type TableWiring<N extends FunctionName> = [keyof Spec<N>['items']] extends [never]
  ? { readonly table?: never }
  : { readonly table: NonNullable<DefaultRuntimeWiring['table']> };

type SecretWiring<N extends FunctionName> = Spec<N>['secrets'] extends { readonly keyRing: false; readonly clientSecrets: false; readonly signingKeys: false }
  ? { readonly fetchSecret?: never }
  : { readonly fetchSecret: NonNullable<DefaultRuntimeWiring['fetchSecret']> };

/** What the entry point wires: the table and the secret fetcher exactly when the manifest grants them. */
export type FunctionWiring<N extends FunctionName> = TableWiring<N> & SecretWiring<N>;

/**
 * Builds the process runtime (a bad configuration fails the cold start, naming every bad field),
 * reads the secrets the function needs during init, and serves `routes`. Call it with top-level
 * `await` at module scope.
 */
export async function brokerHandler<N extends FunctionName>(name: N, routes: FunctionRoutes<N>, wiring: FunctionWiring<N>): Promise<Handler> {
  const spec = functionSpec(name);
  const runtime = defaultRuntime(wiring as DefaultRuntimeWiring);
  // A missing or malformed key ring fails the start, not a request.
  // Both rings are read at once: Secrets Manager's answer time, not a second sequential round
  // trip, is what the second read adds.
  // The signing ring is read and checked here (a malformed ring fails the start); a private key is
  // imported on its first signature and kept (lib/oidc/signing-keys.ts): most containers sign with
  // one algorithm, many with none, and importing both (node's WebCrypto with its RSA and EC
  // modules) was 3-7 ms of every signing function's init.
  await Promise.all([spec.secrets.keyRing ? runtime.cipher() : undefined, spec.secrets.signingKeys ? runtime.signing.get() : undefined]);
  return lambdaHandler(() => runtime, routes);
}
