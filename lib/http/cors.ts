/**
 * CORS for the app-facing endpoints (the routes functions/manifest.ts gives a CORS class:
 * `/token`, `/refresh`, `/session`, `/logout`, and the API proxy under `/api/`): allowed only for
 * origins some client lists in `allowedOrigins`; credentials only on the cookie endpoints. Each
 * class has its rule: the methods and request headers a preflight allows, and the response
 * headers scripts may read.
 */
import { ForbiddenError } from '../errors.js';
import { EXPOSED_RESPONSE_HEADERS, PROXY_METHODS, REQUEST_HEADERS } from '../proxy/headers.js';
import type { HttpRequest, HttpResponse } from './types.js';
import { FUNCTIONS, type CorsClass, type FunctionSpec } from '../../functions/manifest.js';

export interface CorsRule {
  /** The session cookie rides along (`Access-Control-Allow-Credentials`). */
  readonly credentials: boolean;
  readonly methods: string;
  readonly headers: string;
  readonly expose: string;
}

const endpoint = (credentials: boolean): CorsRule => ({
  credentials,
  methods: 'GET, POST, OPTIONS',
  headers: 'content-type, x-broker-csrf, authorization',
  expose: 'x-broker-token-source',
});

/** Everything under it is the API proxy (`/api/{api}/{path}`). */
export const API_PROXY_PREFIX = '/api/';

/** The rule of each CORS class of functions/manifest.ts. */
const RULES: Readonly<Record<CorsClass, CorsRule>> = {
  app: endpoint(false),
  'app-credentials': endpoint(true),
  /** The API proxy: the cookie, the CSRF header and the headers the proxy passes on; the API's headers readable. */
  'api-proxy': {
    credentials: true,
    methods: [...PROXY_METHODS, 'OPTIONS'].join(', '),
    headers: ['x-broker-csrf', ...REQUEST_HEADERS].join(', '),
    expose: EXPOSED_RESPONSE_HEADERS.join(', '),
  },
};

/** The manifest's CORS routes by path: exact paths, and the prefixes of greedy `{proxy+}` paths. */
export const CORS_PATHS: { readonly exact: ReadonlyMap<string, CorsClass>; readonly prefixes: ReadonlyMap<string, CorsClass> } = (() => {
  const exact = new Map<string, CorsClass>();
  const prefixes = new Map<string, CorsClass>();
  for (const spec of Object.values(FUNCTIONS) as FunctionSpec[]) {
    for (const [key, route] of Object.entries(spec.routes)) {
      if (!route.cors) continue;
      const path = key.slice(key.indexOf(' ') + 1);
      const [map, at] = path.endsWith('/{proxy+}') ? [prefixes, path.slice(0, -'{proxy+}'.length)] : [exact, path];
      const known = map.get(at);
      if (known !== undefined && known !== route.cors) throw new TypeError(`functions/manifest.ts: ${at} has two CORS classes (${known}, ${route.cors})`);
      map.set(at, route.cors);
    }
  }
  return { exact, prefixes };
})();

/** The CORS rule of a path; undefined: the path answers no CORS at all. */
export function corsRuleFor(path: string): CorsRule | undefined {
  const exact = CORS_PATHS.exact.get(path);
  if (exact !== undefined) return RULES[exact];
  for (const [prefix, cors] of CORS_PATHS.prefixes) if (path.startsWith(prefix)) return RULES[cors];
  return undefined;
}

export function corsHeaders(req: HttpRequest, allowed: ReadonlySet<string>, credentials: boolean, expose = 'x-broker-token-source'): Record<string, string> {
  const origin = req.headers['origin'];
  if (!origin || !allowed.has(origin)) return { vary: 'Origin' };
  return {
    vary: 'Origin',
    'access-control-allow-origin': origin,
    'access-control-expose-headers': expose,
    ...(credentials ? { 'access-control-allow-credentials': 'true' } : {}),
  };
}

/** A CORS preflight's answer; throws `ForbiddenError` (403) for an origin no client allows. */
export function preflight(req: HttpRequest, allowed: ReadonlySet<string>, rule: CorsRule): HttpResponse {
  const origin = req.headers['origin'];
  if (!origin || !allowed.has(origin)) throw new ForbiddenError('this origin may not call the broker');
  return {
    status: 204,
    headers: {
      ...corsHeaders(req, allowed, rule.credentials, rule.expose),
      'access-control-allow-methods': rule.methods,
      'access-control-allow-headers': rule.headers,
      'access-control-max-age': '600',
    },
    cookies: [],
    body: '',
  };
}
