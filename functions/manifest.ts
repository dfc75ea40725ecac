/**
 * What a function is, in one place: the routes it serves (each with its throttle class and CORS
 * rule), the table items it touches (key prefix and item actions), the secrets it reads, and its
 * timeout. Everything else is derived from this table:
 *
 * - the CDK stack's routes, preflight (`OPTIONS`) routes, per-route throttles, IAM grants
 *   (`dynamodb:LeadingKeys` per prefix) and timeouts (infra/broker-stack.ts, infra/constructs/);
 * - each function's entry point (`functions/<name>/index.ts` through `brokerHandler`), whose
 *   routes object must have exactly this table's keys, and whose wiring (table, secret fetcher)
 *   must match what is granted here: both are checked by the compiler;
 * - the local runner's dispatch (local/http-adapter.ts), which also enforces the item grants
 *   (lib/store/scoped-table.ts), as IAM would;
 * - the CORS preflight rules (lib/http/cors.ts).
 *
 * Pure data: every function's bundle imports it, so it imports nothing but types.
 *
 * Adding a route: one entry here, one handler in `functions/<name>/routes.ts`.
 */
import type { Config } from '../lib/config/parse.js';
import type { ItemAction, KeyPrefix } from '../lib/store/table.js';

/**
 * Per-route throttle classes of the API stage; their limits are configuration (the stack's
 * `routeThrottles`, docs/deploy.md "Throttles").
 */
export type ThrottleClass = 'login' | 'token' | 'discovery' | 'jwks' | 'backchannel' | 'api';

/**
 * The CORS rule of a route's path (lib/http/cors.ts): `app`, an app-facing endpoint without
 * credentials; `app-credentials`, the same with the session cookie; `api-proxy`, the API proxy's.
 * A route without one answers no CORS at all. For a route with a fixed method the stack adds the
 * `OPTIONS` route of its path (to the same function); an `ANY` route receives `OPTIONS` itself.
 */
export type CorsClass = 'app' | 'app-credentials' | 'api-proxy';

export interface RouteSpec {
  readonly throttle: ThrottleClass;
  readonly cors?: CorsClass;
}

/** Which secrets a function reads: each is a `GetSecretValue` grant and a read at cold start. */
export interface SecretsSpec {
  /** The token key ring (`runtime.cipher()`), read during init. */
  readonly keyRing: boolean;
  /** The configured client secrets, read on use. */
  readonly clientSecrets: boolean;
  /** The ID-token signing keys, read during init: `verify` for checking, `sign` also signs (its private keys imported on first use). */
  readonly signingKeys: false | 'verify' | 'sign';
}

export interface FunctionSpec {
  /** Route keys as API Gateway writes them, `"METHOD /path"` (`ANY`, `{name}`, `{proxy+}`). */
  readonly routes: Readonly<Record<string, RouteSpec>>;
  /** The item actions per key prefix (lib/store/table.ts, `KEY_PREFIXES`); granted with `dynamodb:LeadingKeys`. */
  readonly items: Readonly<Partial<Record<KeyPrefix, readonly ItemAction[]>>>;
  /**
   * `dynamodb:Query` on the session indexes (back-channel logout). Not key-scoped: the indexes'
   * partition keys are keyed hashes with no prefix to scope by (infra/constructs/session-table.ts).
   */
  readonly sessionLookup: boolean;
  readonly secrets: SecretsSpec;
  /**
   * The function's timeout in seconds.
   *
   * @default 25 (infra/constructs/broker-function.ts, `FUNCTION_TIMEOUT`)
   */
  readonly timeoutSeconds?: number;
}

const NO_SECRETS = { keyRing: false, clientSecrets: false, signingKeys: false } as const;

export const FUNCTIONS = {
  'start-login': {
    // OIDC Core §3.1.2.1: an authorization endpoint takes GET and POST (form serialization).
    routes: { 'GET /login': { throttle: 'login' }, 'POST /login': { throttle: 'login' } },
    items: { 'login#': ['dynamodb:PutItem'] },
    sessionLookup: false,
    secrets: NO_SECRETS,
  },
  callback: {
    routes: { 'GET /callback': { throttle: 'login' }, 'POST /callback': { throttle: 'login' } },
    // Takes the login (a conditional update marks it used), creates the session.
    items: { 'login#': ['dynamodb:UpdateItem'], 'session#': ['dynamodb:PutItem'] },
    sessionLookup: false,
    secrets: { keyRing: true, clientSecrets: true, signingKeys: false },
  },
  /** `/jwks` is here, beside the signing: this function already holds the signing keys, read at init. */
  refresh: {
    routes: {
      'POST /token': { throttle: 'token', cors: 'app' },
      'POST /refresh': { throttle: 'token', cors: 'app-credentials' },
      'GET /session': { throttle: 'token', cors: 'app-credentials' },
      'GET /jwks': { throttle: 'jwks' },
    },
    items: { 'session#': ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'] },
    sessionLookup: false,
    secrets: { keyRing: true, clientSecrets: true, signingKeys: 'sign' },
  },
  /** `POST /logout` (web cookie or native handle; RFC 7009) and `GET /end-session`, whose hints it checks with the signing keys. */
  logout: {
    // RP-Initiated Logout 1.0 §2: the logout endpoint takes GET and POST.
    routes: { 'POST /logout': { throttle: 'token', cors: 'app-credentials' }, 'GET /end-session': { throttle: 'token' }, 'POST /end-session': { throttle: 'token' } },
    // Reads the session (its refresh token, revoked first), then deletes it.
    items: { 'session#': ['dynamodb:GetItem', 'dynamodb:DeleteItem'] },
    sessionLookup: false,
    secrets: { keyRing: true, clientSecrets: true, signingKeys: 'verify' },
  },
  /** The discovery document: no table, no secrets, no AWS SDK. */
  metadata: {
    routes: {
      'GET /.well-known/openid-configuration': { throttle: 'discovery' },
      'GET /.well-known/oauth-authorization-server': { throttle: 'discovery' },
    },
    items: {},
    sessionLookup: false,
    secrets: NO_SECRETS,
  },
  /**
   * The API proxy: every method below `/api/` (API Gateway's greedy `{proxy+}`), CORS preflights
   * included. It reads the session, refreshes it as `refresh` does, marks a spent token; it mints
   * no ID token. Its timeout is API Gateway's 29 s: its own budget (28 s) ends first.
   */
  proxy: {
    routes: { 'ANY /api/{proxy+}': { throttle: 'api', cors: 'api-proxy' } },
    items: { 'session#': ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'] },
    sessionLookup: false,
    secrets: { keyRing: true, clientSecrets: true, signingKeys: false },
    timeoutSeconds: 29,
  },
  /**
   * A provider ends a user's sessions (OIDC Back-Channel Logout 1.0): finds them through the
   * session indexes, deletes them, and remembers (or, on failure, forgets) the logout token's `jti`.
   * It reads the key ring only (sessions are found by keyed hashes made with it).
   */
  'backchannel-logout': {
    routes: { 'POST /backchannel-logout/{provider}': { throttle: 'backchannel' } },
    items: { 'session#': ['dynamodb:DeleteItem'], 'logout-jti#': ['dynamodb:PutItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'] },
    sessionLookup: true,
    secrets: { keyRing: true, clientSecrets: false, signingKeys: false },
  },
} as const satisfies Readonly<Record<string, FunctionSpec>>;

export type FunctionName = keyof typeof FUNCTIONS;
export const FUNCTION_NAMES = Object.keys(FUNCTIONS) as FunctionName[];

/** The route keys a function's handler serves: exactly the keys of its `routes` object. */
export type RouteKeyOf<N extends FunctionName> = keyof (typeof FUNCTIONS)[N]['routes'] & string;

/** Every route key of every function. */
export type RouteKey = { [N in FunctionName]: RouteKeyOf<N> }[FunctionName];

/**
 * The route keys API Gateway has for a function: its routes, and the `OPTIONS` route of each path
 * whose route has a CORS class and a fixed method (an `ANY` route receives the preflight itself).
 * The stack creates exactly these; the local runner dispatches exactly these.
 */
export function deployedRoutes(name: FunctionName): { readonly routeKey: string; readonly route: RouteSpec }[] {
  const out = new Map<string, RouteSpec>();
  for (const [routeKey, route] of Object.entries(functionSpec(name).routes)) {
    out.set(routeKey, route);
    const [method, path] = routeKey.split(' ') as [string, string];
    if (route.cors !== undefined && method !== 'ANY') out.set(`OPTIONS ${path}`, route);
  }
  return [...out].map(([routeKey, route]) => ({ routeKey, route }));
}

/** A function's spec, widened (for code that handles every function alike). */
export function functionSpec(name: FunctionName): FunctionSpec {
  return FUNCTIONS[name];
}

/**
 * The Secrets Manager ids a function reads, by its manifest entry, the key ring and the signing
 * keys first: all are read at cold start (functions/serve.ts), each is granted by the stack, and
 * the stack writes them into `BROKER_SECRET_IDS` for the read to start first thing.
 */
export function secretsReadBy(spec: SecretsSpec, config: Config): string[] {
  const refs = [
    spec.keyRing ? config.tokenEncryptionKeys : undefined,
    spec.signingKeys ? config.signingKeys : undefined,
    ...(spec.clientSecrets ? Object.values(config.providers).map((p) => p.clientSecret) : []),
  ];
  return [...new Set(refs.flatMap((ref) => (ref && 'secretsManager' in ref ? [ref.secretsManager] : [])))];
}
