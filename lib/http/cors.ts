/**
 * CORS for the app-facing endpoints (`/token`, `/refresh`, `/session`, `/logout`): allowed only
 * for origins some client lists in `allowedOrigins`; credentials only on the cookie endpoints.
 */
import { ForbiddenError } from '../errors.js';
import type { HttpRequest, HttpResponse } from './types.js';

export function corsHeaders(req: HttpRequest, allowed: ReadonlySet<string>, credentials: boolean): Record<string, string> {
  const origin = req.headers['origin'];
  if (!origin || !allowed.has(origin)) return { vary: 'Origin' };
  return {
    vary: 'Origin',
    'access-control-allow-origin': origin,
    'access-control-expose-headers': 'x-broker-token-source',
    ...(credentials ? { 'access-control-allow-credentials': 'true' } : {}),
  };
}

/** A CORS preflight's answer; throws `ForbiddenError` (403) for an origin no client allows. */
export function preflight(req: HttpRequest, allowed: ReadonlySet<string>, credentials: boolean): HttpResponse {
  const origin = req.headers['origin'];
  if (!origin || !allowed.has(origin)) throw new ForbiddenError('this origin may not call the broker');
  return {
    status: 204,
    headers: {
      ...corsHeaders(req, allowed, credentials),
      'access-control-allow-methods': 'GET, POST, OPTIONS',
      'access-control-allow-headers': 'content-type, x-broker-csrf, authorization',
      'access-control-max-age': '600',
    },
    cookies: [],
    body: '',
  };
}
