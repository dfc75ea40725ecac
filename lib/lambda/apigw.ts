/**
 * The API Gateway HTTP API (payload 2.0) adapter: event in, `HttpRequest` to a route, result out.
 * Any error a route lets escape becomes a bare `500 server_error`; its detail goes to the log.
 */
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import { parseCookieHeader } from '../http/cookies.js';
import { preflight } from '../http/cors.js';
import { errorResponse, json } from '../http/respond.js';
import type { HttpRequest, HttpResponse } from '../http/types.js';
import { errorFields } from '../log.js';
import type { Route } from '../routes/common.js';
import type { Runtime } from '../runtime.js';

export type Handler = (event: APIGatewayProxyEventV2, context?: Partial<Context>) => Promise<APIGatewayProxyStructuredResultV2>;

export function toRequest(event: APIGatewayProxyEventV2): HttpRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(event.headers ?? {})) if (v !== undefined) headers[k.toLowerCase()] = v;
  const body = event.body === undefined ? '' : event.isBase64Encoded ? Buffer.from(event.body, 'base64').toString('utf8') : event.body;
  return {
    method: event.requestContext.http.method.toUpperCase(),
    path: event.rawPath,
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
export const CORS_PATHS: Readonly<Record<string, boolean>> = { '/token': false, '/refresh': true, '/session': true, '/logout': true };

/**
 * A Lambda handler serving `routes` (keyed `"METHOD /path"`) from the runtime `runtime()` gives;
 * call that at module scope first, so a bad configuration fails the cold start.
 */
export function lambdaHandler(runtime: () => Runtime, routes: Readonly<Record<string, Route>>): Handler {
  return async (event, context) => {
    const base = runtime();
    const req = toRequest(event);
    const rt: Runtime = { ...base, log: base.log.child({ request_id: context?.awsRequestId ?? req.requestId, apigw_request_id: req.requestId, route: `${req.method} ${req.path}` }) };
    let res: HttpResponse;
    try {
      const route = routes[`${req.method} ${req.path}`];
      if (route) res = await route(rt, req);
      else if (req.method === 'OPTIONS' && req.path in CORS_PATHS) res = preflight(req, rt.config.allowedOrigins, CORS_PATHS[req.path]!);
      else res = json(404, { error: 'invalid_request', error_description: 'no such endpoint' });
    } catch (err) {
      rt.log.error('request.failed', errorFields(err));
      res = errorResponse(err);
    }
    return toResult(res);
  };
}
