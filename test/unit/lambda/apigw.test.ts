import type { APIGatewayProxyEventV2 } from 'aws-lambda';
import { describe, expect, it } from 'vitest';
import { routes as proxyRoutes } from '../../../functions/proxy/routes.js';
import { FUNCTIONS } from '../../../functions/manifest.js';
import { parseConfig } from '../../../lib/config/parse.js';
import { findRoute, lambdaHandler, routeKeyMatches, toRequest, toResult } from '../../../lib/lambda/apigw.js';
import { createLogger } from '../../../lib/log.js';
import { route } from '../../../lib/routes/common.js';
import { createRuntime } from '../../../lib/runtime.js';
import { NO_TABLE } from '../../../lib/store/table.js';
import { minimalConfigDoc } from '../fixtures.js';

function event(method: string, rawPath: string, extra: Partial<APIGatewayProxyEventV2> = {}): APIGatewayProxyEventV2 {
  return {
    version: '2.0', routeKey: '$default', rawPath, rawQueryString: '', headers: {}, isBase64Encoded: false,
    requestContext: { http: { method, path: rawPath }, requestId: 'r1' } as APIGatewayProxyEventV2['requestContext'],
    ...extra,
  };
}

const logs: string[] = [];
const doc = minimalConfigDoc();
doc['apis'] = { echo: { url: 'https://api.example.com/v1', provider: 'p' } };
doc.clients['web']!['apis'] = ['echo'];
// No table: anything that reaches DynamoDB fails loudly (a TypeError, 500).
const runtime = createRuntime({ config: parseConfig(doc, { runtime: 'local' }), table: NO_TABLE, log: createLogger({ sink: (l) => logs.push(l) }) });
const browser = { origin: 'https://app.example.com', 'x-broker-csrf': '1' };

describe('route keys, as API Gateway matches them', () => {
  it('match an exact method and path, ANY, and a greedy {proxy+} of at least one character', () => {
    expect(routeKeyMatches('GET /login', 'GET', '/login')).toBe(true);
    expect(routeKeyMatches('GET /login', 'POST', '/login')).toBe(false);
    expect(routeKeyMatches('ANY /api/{proxy+}', 'PATCH', '/api/v/x')).toBe(true);
    expect(routeKeyMatches('ANY /api/{proxy+}', 'GET', '/api/')).toBe(false);
    expect(routeKeyMatches('ANY /api/{proxy+}', 'GET', '/api')).toBe(false);
    expect(routeKeyMatches('ANY /api/{proxy+}', 'GET', '/apix/v')).toBe(false);
  });

  it('find the exact key first, then ANY, then a greedy one', () => {
    const routes = { 'GET /api/x': 1, 'ANY /api/y': 2, 'ANY /api/{proxy+}': 3 };
    expect(findRoute(routes, 'GET', '/api/x')).toEqual({ key: 'GET /api/x', route: 1 });
    expect(findRoute(routes, 'POST', '/api/y')).toEqual({ key: 'ANY /api/y', route: 2 });
    expect(findRoute(routes, 'POST', '/api/x')).toEqual({ key: 'ANY /api/{proxy+}', route: 3 });
    expect(findRoute(routes, 'GET', '/token')).toBeUndefined();
  });

  it('of every function in functions/manifest.ts are unambiguous: each path of the contract finds one function', () => {
    const all = Object.entries(FUNCTIONS).flatMap(([fn, spec]) => Object.keys(spec.routes).map((k) => [k, fn] as const));
    const table = Object.fromEntries(all);
    expect(findRoute(table, 'DELETE', '/api/videos/1')?.route).toBe('proxy');
    expect(findRoute(table, 'POST', '/refresh')?.route).toBe('refresh');
  });
});

describe('toRequest and toResult', () => {
  it('keep a base64 body\'s bytes exactly, beside its text', () => {
    const bytes = Buffer.from([0, 255, 0xc3, 0x28, 10, 13, 128]);
    const req = toRequest(event('POST', '/api/v/x', { body: bytes.toString('base64'), isBase64Encoded: true, rawQueryString: 'a=%2F&b' }));
    expect(Buffer.from(req.rawBody).equals(bytes)).toBe(true);
    expect(req.body).toBe(bytes.toString('utf8'));
    expect(req.rawQuery).toBe('a=%2F&b');
    expect(req.query.get('a')).toBe('/');
  });

  it('keep a text body\'s bytes as UTF-8, and an absent body empty', () => {
    expect(Buffer.from(toRequest(event('POST', '/x', { body: 'café' })).rawBody).toString('utf8')).toBe('café');
    expect(toRequest(event('GET', '/x')).rawBody.length).toBe(0);
  });

  it('mark a binary answer base64-encoded, and only that one', () => {
    expect(toResult({ status: 200, headers: {}, cookies: [], body: 'AAE=', base64: true })).toMatchObject({ body: 'AAE=', isBase64Encoded: true });
    expect(toResult({ status: 200, headers: {}, cookies: [], body: '{}' })).not.toHaveProperty('isBase64Encoded');
  });

  it('hand a route the raw bytes of a body through lambdaHandler', async () => {
    let seen: Uint8Array | undefined;
    const handler = lambdaHandler(() => runtime, { 'POST /echo': route({ errors: 'page', cors: 'none' }, async (_rt, req) => {
      seen = req.rawBody;
      return { status: 200, headers: {}, cookies: [], body: Buffer.from(req.rawBody).toString('base64'), base64: true };
    }) });
    const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const out = await handler(event('POST', '/echo', { body: bytes.toString('base64'), isBase64Encoded: true }));
    expect(Buffer.from(seen!).equals(bytes)).toBe(true);
    expect(out).toMatchObject({ statusCode: 200, isBase64Encoded: true, body: bytes.toString('base64') });
  });
});

describe('the proxy function\'s handler, on the paths API Gateway (HTTP API) delivers decoded', () => {
  const handler = lambdaHandler(() => runtime, proxyRoutes);

  it.each([
    '/api/echo/..', '/api/echo/../x', '/api/echo/a/./b', '/api/echo/a\\b', '/api/echo/a\u0000b', '/api/echo//evil.example/x', '/api/echo/', '/api/echo',
  ])('%j: 400, before any DynamoDB call', async (rawPath) => {
    const out = await handler(event('GET', rawPath, { headers: { ...browser, cookie: `broker-session=${'A'.repeat(22)}.${'B'.repeat(43)}` } }));
    expect(out.statusCode).toBe(400);
    expect(JSON.parse(out.body!)).toMatchObject({ error: 'invalid_request' });
  });

  it('checks CSRF and Origin first (403), the API name (404) and the body size (413) before the session', async () => {
    expect((await handler(event('GET', '/api/echo/x', { headers: { origin: 'https://app.example.com' } }))).statusCode).toBe(403);
    expect((await handler(event('GET', '/api/echo/x', { headers: { ...browser, origin: 'https://evil.example' } }))).statusCode).toBe(403);
    expect((await handler(event('GET', '/api/nope/x', { headers: browser }))).statusCode).toBe(404);
    const big = Buffer.alloc(4 * 1024 * 1024 + 1).toString('base64');
    expect((await handler(event('POST', '/api/echo/x', { headers: browser, body: big, isBase64Encoded: true }))).statusCode).toBe(413);
    const noCookie = await handler(event('GET', '/api/echo/x', { headers: browser }));
    expect(noCookie.statusCode).toBe(401);
    expect(noCookie.cookies?.some((c) => /Max-Age=0/.test(c))).toBe(true);
  });

  it('answers the CORS preflight itself, although its ANY route takes OPTIONS too', async () => {
    const out = await handler(event('OPTIONS', '/api/echo/x', { headers: { origin: 'https://app.example.com', 'access-control-request-method': 'DELETE' } }));
    expect(out.statusCode).toBe(204);
    expect(out.headers).toMatchObject({ 'access-control-allow-origin': 'https://app.example.com', 'access-control-allow-credentials': 'true' });
    expect(String(out.headers!['access-control-allow-methods'])).toContain('DELETE');
    const foreign = await handler(event('OPTIONS', '/api/echo/x', { headers: { origin: 'https://evil.example' } }));
    expect(foreign.statusCode).toBe(403);
    expect(foreign.headers!['access-control-allow-origin']).toBeUndefined();
  });

  it('logs the route key, never the path', async () => {
    logs.length = 0;
    await handler(event('GET', '/api/nope/secret-name', { headers: browser }));
    expect(logs.join('\n')).toContain('"route":"GET /api/{proxy+}"');
    expect(logs.join('\n')).not.toContain('secret-name');
  });
});
