/**
 * The API Gateway HTTP API (payload 2.0) adapter: event in, `HttpRequest` to a route, result out.
 * Routes throw; their error profile turns what they throw into an answer, here and only here.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { parseCookieHeader } from '../http/cookies.js';
import { NotFoundError } from '../errors.js';
import { corsHeaders, corsRuleFor, preflight } from '../http/cors.js';
import { errorResponse } from '../http/error-response.js';
import { matchRoute } from '../http/route-match.js';
import { withHeaders } from '../http/respond.js';
import type { HttpRequest, HttpResponse } from '../http/types.js';
import type { Route, RouteProfile } from '../routes/common.js';
import type { Runtime } from '../runtime.js';

export type Handler = (event: APIGatewayProxyEventV2, context?: Partial<Context>) => Promise<APIGatewayProxyStructuredResultV2>;

const NO_BYTES = new Uint8Array(0);

export function toRequest(event: APIGatewayProxyEventV2): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
  // The bytes as sent (API Gateway base64-encodes bodies it does not take for text); the text of
  // them for the routes that read forms.
  const rawBody = event.body === undefined ? NO_BYTES : event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
  let text: string | undefined;
  return {
    method: event.requestContext.http.method.toUpperCase(),
    path: event.rawPath,
    params: {},
    query: new URLSearchParams(event.rawQueryString ?? ''),
    rawQuery: event.rawQueryString ?? '',
    headers,
    cookies: parseCookieHeader(event.cookies ?? (headers['cookie'] ? [headers['cookie']] : [])),
    // Decoded on first use: the API proxy never reads a (possibly binary, 4 MiB) body as text.
    get body() {
      return (text ??= event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(rawBody).toString('utf8') : event.body);
    },
    rawBody,
    requestId: event.requestContext.requestId,
  };
}

export function toResult(res: HttpResponse): APIGatewayProxyStructuredResultV2 {
  return {
    statusCode: res.status,
    headers: res.headers,
    ...(res.cookies.length ? { cookies: res.cookies } : {}),
    body: res.body,
    ...(res.base64 ? { isBase64Encoded: true } : {}),
  };
}

/** Preflights and unknown routes. */
const PLAIN: RouteProfile = { errors: 'page', cors: 'none' };

/** A greedy path variable, as API Gateway's `{proxy+}`: one or more characters, slashes included. */
const GREEDY = '/{proxy+}';

/**
 * Does a route key (`"METHOD /path"`, `"ANY /path"`, `"ANY /prefix/{proxy+}"`) match a request?
 * As API Gateway matches them: an exact method or `ANY`; a greedy variable takes the rest of the
 * path, at least one character.
 */
export function routeKeyMatches(key: string, method: string, path: string): boolean {
  const space = key.indexOf(' ');
  const keyMethod = key.slice(0, space);
  const keyPath = key.slice(space + 1);
  if (keyMethod !== method && keyMethod !== 'ANY') return false;
  if (!keyPath.endsWith(GREEDY)) return keyPath === path;
  const prefix = keyPath.slice(0, -GREEDY.length + 1); // keeps the slash
  return path.startsWith(prefix) && path.length > prefix.length;
}

/** The route serving a request, and its key: an exact key first, then `ANY`, then a greedy one. */
export function findRoute<T>(routes: Readonly<Record<string, T>>, method: string, path: string): { key: string; route: T } | undefined {
  for (const key of [`${method} ${path}`, `ANY ${path}`]) {
    if (Object.hasOwn(routes, key)) return { key, route: routes[key]! };
  }
  for (const key of Object.keys(routes)) {
    if (key.endsWith(GREEDY) && routeKeyMatches(key, method, path)) return { key, route: routes[key]! };
  }
  return undefined;
}

/**
 * The route serving a request, as API Gateway dispatches: an exact key, `ANY`, a greedy
 * `{proxy+}`, then keys with path parameters (`/backchannel-logout/{provider}`), whose values it
 * hands over as `params`.
 */
export function routeFor<T>(routes: Readonly<Record<string, T>>, method: string, path: string): { key: string; route: T; params: Readonly<Record<string, string>> } | undefined {
  const found = findRoute(routes, method, path);
  return found ? { ...found, params: {} } : matchRoute(routes, method, path);
}

/**
 * A Lambda handler serving `routes` (keyed `"METHOD /path"`) from the runtime `runtime()` gives;
 * call that at module scope first, so a bad configuration fails the cold start.
 */
export function lambdaHandler(runtime: () => Runtime, routes: Readonly<Record<string, Route>>): Handler {
  return async (event, context) => {
    const base = runtime();
    const raw = toRequest(event);
    const found = routeFor(routes, raw.method, raw.path);
    const req: HttpRequest = found ? { ...raw, params: found.params } : raw;
    // The route's key, not the path, is logged: a path may name things that are none of the log's business.
    const rt: Runtime = { ...base, log: base.log.child({ request_id: context?.awsRequestId ?? req.requestId, apigw_request_id: req.requestId, route: found ? found.key.replace(/^ANY /, `${req.method} `) : `${req.method} ${req.path}` }) };
    const cors = corsRuleFor(req.path);
    // A CORS preflight is the broker's, never a route's (an `ANY` route receives OPTIONS too).
    const isPreflight = req.method === 'OPTIONS' && cors !== undefined;
    const route = isPreflight ? undefined : found?.route;
    const profile: RouteProfile = !route ? PLAIN : typeof route.profile === 'function' ? route.profile(req) : route.profile;
    const headers = profile.cors === 'none' ? {} : corsHeaders(req, rt.config.allowedOrigins, profile.cors === 'credentials', cors?.expose);
    let res: HttpResponse;
    try {
      if (isPreflight) res = preflight(req, rt.config.allowedOrigins, cors);
      else if (!route) throw new NotFoundError();
      else res = withHeaders(await route.handle(rt, req), headers);
    } catch (err) {
      res = errorResponse({ log: rt.log, secureCookies: rt.config.secureCookies }, err, profile.errors, req, isPreflight ? { vary: 'Origin' } : headers);
    }
    return toResult(res);
  };
}
