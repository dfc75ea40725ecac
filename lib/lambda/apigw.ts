/**
 * The API Gateway HTTP API (payload 2.0) adapter: event in, `HttpRequest` to a route, result out.
 * Routes throw; their error profile turns what they throw into an answer, here and only here.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { parseCookieHeader } from '../http/cookies.js';
import { NotFoundError } from '../errors.js';
import { corsHeaders, preflight } from '../http/cors.js';
import { errorResponse } from '../http/error-response.js';
import { matchRoute } from '../http/route-match.js';
import { withHeaders } from '../http/respond.js';
import type { HttpRequest, HttpResponse } from '../http/types.js';
import type { Route, RouteProfile } from '../routes/common.js';
import type { Runtime } from '../runtime.js';

export type Handler = (event: APIGatewayProxyEventV2, context?: Partial<Context>) => Promise<APIGatewayProxyStructuredResultV2>;

export function toRequest(event: APIGatewayProxyEventV2): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
  const body = event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  return {
    method: event.requestContext.http.method.toUpperCase(),
    path: event.rawPath,
    params: {},
    query: new URLSearchParams(event.rawQueryString ?? ''),
    headers,
    cookies: parseCookieHeader(event.cookies ?? (headers['cookie'] ? [headers['cookie']] : [])),
    body,
    requestId: event.requestContext.requestId,
  };
}

export function toResult(res: HttpResponse): APIGatewayProxyStructuredResultV2 {
  return { statusCode: res.status, headers: res.headers, ...(res.cookies.length ? { cookies: res.cookies } : {}), body: res.body };
}

/** Preflight rules per path: which paths answer CORS, and whether with credentials. */
/** Preflights and unknown routes. */
const PLAIN: RouteProfile = { errors: 'page', cors: 'none' };

export const CORS_PATHS: Readonly<Record<string, boolean>> = { '/token': false, '/refresh': true, '/session': true, '/logout': true };

/**
 * A Lambda handler serving `routes` (keyed `"METHOD /path"`) from the runtime `runtime()` gives;
 * call that at module scope first, so a bad configuration fails the cold start.
 */
export function lambdaHandler(runtime: () => Runtime, routes: Readonly<Record<string, Route>>): Handler {
  return async (event, context) => {
    const base = runtime();
    const raw = toRequest(event);
    const matched = matchRoute(routes, raw.method, raw.path);
    const req: HttpRequest = matched ? { ...raw, params: matched.params } : raw;
    // The route key, not the path: a path parameter may name something a log should not repeat.
    const rt: Runtime = { ...base, log: base.log.child({ request_id: context?.awsRequestId ?? req.requestId, apigw_request_id: req.requestId, route: matched?.key ?? `${req.method} ${req.path}` }) };
    const route = matched?.route;
    const isPreflight = !route && req.method === 'OPTIONS' && req.path in CORS_PATHS;
    const profile: RouteProfile = !route ? PLAIN : typeof route.profile === 'function' ? route.profile(req) : route.profile;
    const cors = profile.cors === 'none' ? {} : corsHeaders(req, rt.config.allowedOrigins, profile.cors === 'credentials');
    let res: HttpResponse;
    try {
      if (isPreflight) res = preflight(req, rt.config.allowedOrigins, CORS_PATHS[req.path]!);
      else if (!route) throw new NotFoundError();
      else res = withHeaders(await route.handle(rt, req), cors);
    } catch (err) {
      res = errorResponse({ log: rt.log, secureCookies: rt.config.secureCookies }, err, profile.errors, req, isPreflight ? { vary: 'Origin' } : cors);
    }
    return toResult(res);
  };
}
