/**
 * `/api/{api}/{path}`, any method: the API proxy for web apps (CONTRACT.md, "API proxy for web
 * apps"). In order, cheap to expensive: the CSRF header and the Origin (`403`), the method (`405`), the path (`400`),
 * the API's name (`404`), the body's size (`413`), the cookie (`401`), then the session and its
 * token (one DynamoDB call while the token is fresh; `lib/broker/api-access.ts`), and only then
 * the call. The API's answer goes back with its status, its body byte for byte and the allowlisted
 * headers; the broker's own failures (`502`, `504`, ...) are thrown like every route's.
 */
import { accessForApi, apiRefusedToken, type ApiAccess } from '../broker/api-access.js';
import { ApiTimeoutError, MethodNotAllowedError, NotFoundError, PayloadTooLargeError, SessionEndedError } from '../errors.js';
import type { HttpResponse } from '../http/types.js';
import { errorFields, type Logger } from '../log.js';
import { callApi, type ApiAnswer } from '../proxy/api-call.js';
import { PROXY_METHODS, requestHeadersFor, responseHeadersFrom } from '../proxy/headers.js';
import { PROXY_BUDGET_MS } from '../proxy/limits.js';
import { apiUrl, parseProxyPath } from '../proxy/path.js';
import type { Runtime } from '../runtime.js';
import { checkBrowserRequest, route, sessionCredential } from './common.js';

/** Less than this left of the request's budget: the API is not called at all (`504`). */
const MIN_API_MS = 1_000;

export const proxyRoute = route({ errors: 'browser', cors: 'credentials' }, async (rt, req): Promise<HttpResponse> => {
  const started = Date.now();
  const clientIds = checkBrowserRequest(rt, req, true);
  // Not TRACE (an API would echo the Authorization header back), CONNECT or anything unknown.
  if (!PROXY_METHODS.includes(req.method)) throw new MethodNotAllowedError(`the API proxy carries ${PROXY_METHODS.join(', ')}`, PROXY_METHODS);
  const target = parseProxyPath(req.path);
  const api = Object.hasOwn(rt.config.apis, target.api) ? rt.config.apis[target.api]! : undefined;
  if (!api) throw new NotFoundError('no such API');
  const url = apiUrl(api, target.path, req.rawQuery);
  if (req.rawBody.length > api.maxBodyBytes) throw new PayloadTooLargeError(`the request body is larger than ${api.maxBodyBytes} bytes`);
  const credential = sessionCredential(rt, req);
  if (!credential) throw new SessionEndedError('no live session');

  const access = await accessForApi(rt, { credential, clientIds }, api);
  const log = rt.log.child({ client_id: access.session.clientId, provider: access.session.provider, api: api.name, method: req.method });
  const timeoutMs = Math.min(api.timeoutMs, started + PROXY_BUDGET_MS - Date.now());
  const called = Date.now();
  let answer: ApiAnswer;
  try {
    if (timeoutMs < MIN_API_MS) throw new ApiTimeoutError('no time was left to call the API');
    answer = await callApi({
      url,
      method: req.method,
      headers: { ...requestHeadersFor(req.headers), authorization: `Bearer ${access.accessToken}` },
      body: req.rawBody,
      timeoutMs,
      maxBodyBytes: api.maxBodyBytes,
    });
  } catch (err) {
    const status = err instanceof ApiTimeoutError ? 504 : 502;
    log.metric('proxy.call', { ApiCalls: 1, ApiFailures: 1, ApiLatency: Date.now() - called }, { status, ms: Date.now() - started, token_source: access.source, ...errorFields(err) }, { name: 'Api', value: api.name });
    throw err;
  }
  const apiMs = Date.now() - called;
  if (answer.status === 401) await spent(rt, access, log);
  const cls = Math.floor(answer.status / 100);
  log.metric('proxy.call', {
    ApiCalls: 1, Api2xx: cls === 2 ? 1 : 0, Api3xx: cls === 3 ? 1 : 0, Api4xx: cls === 4 ? 1 : 0, Api5xx: cls === 5 ? 1 : 0,
    ApiFailures: 0, ApiLatency: apiMs, ApiProxyLatency: Date.now() - started - apiMs,
  }, { status: answer.status, ms: Date.now() - started, token_source: access.source }, { name: 'Api', value: api.name });

  const headers = responseHeadersFrom(answer.headers, access.accessToken);
  return {
    status: answer.status,
    headers: {
      ...headers,
      // The API's own caching rules, else none: the answer was made for this user's token.
      'cache-control': headers['cache-control'] ?? 'no-store',
      'x-content-type-options': 'nosniff',
    },
    cookies: [],
    body: answer.body.toString('base64'),
    base64: true,
  };
});

/** An API `401`: the stored token is marked spent (the next call refreshes); a failure to mark fails nothing. */
async function spent(rt: Runtime, access: ApiAccess, log: Logger): Promise<void> {
  try {
    const result = await apiRefusedToken(rt, access);
    log.info('proxy.token_spent', { outcome: result.ok ? 'marked' : result.reason });
  } catch (err) {
    log.warn('proxy.token_spent', { outcome: 'failed', ...errorFields(err) });
  }
}
