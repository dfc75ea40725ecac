/**
 * CORS for the app-facing endpoints (`/token`, `/refresh`, `/session`, `/logout`, and the API
 * proxy under `/api/`): allowed only for origins some client lists in `allowedOrigins`;
 * credentials only on the cookie endpoints. Each path has its rule: the methods and request
 * headers a preflight allows, and the response headers scripts may read.
 */
import { ForbiddenError } from '../errors.js';
import { EXPOSED_RESPONSE_HEADERS, PROXY_METHODS, REQUEST_HEADERS } from '../proxy/headers.js';
import type { HttpRequest, HttpResponse } from './types.js';

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

/** The broker's own endpoints that answer CORS, and whether with credentials. */
const PATH_RULES: Readonly<Record<string, CorsRule>> = {
  '/token': endpoint(false),
  '/refresh': endpoint(true),
  '/session': endpoint(true),
  '/logout': endpoint(true),
};

/** Everything under it is the API proxy (`/api/{api}/{path}`). */
export const API_PROXY_PREFIX = '/api/';

/** The API proxy: the cookie, the CSRF header and the headers the proxy passes on; the API's headers readable. */
const PROXY_RULE: CorsRule = {
  credentials: true,
  methods: [...PROXY_METHODS, 'OPTIONS'].join(', '),
  headers: ['x-broker-csrf', ...REQUEST_HEADERS].join(', '),
  expose: EXPOSED_RESPONSE_HEADERS.join(', '),
};

/** The CORS rule of a path; undefined: the path answers no CORS at all. */
export function corsRuleFor(path: string): CorsRule | undefined {
  if (Object.hasOwn(PATH_RULES, path)) return PATH_RULES[path];
  return path.startsWith(API_PROXY_PREFIX) ? PROXY_RULE : undefined;
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
