/**
 * The local runner's HTTP server: each request becomes a real API Gateway HTTP API (payload 2.0)
 * event for the same handlers Lambda runs, and each result goes back as an HTTP response.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import type { FunctionRoutes } from '../functions/handler.js';
import { deployedRoutes, FUNCTION_NAMES, functionSpec, type FunctionName } from '../functions/manifest.js';
import { routes as backchannelLogoutRoutes } from '../functions/backchannel-logout/routes.js';
import { routes as callbackRoutes } from '../functions/callback/routes.js';
import { routes as logoutRoutes } from '../functions/logout/routes.js';
import { routes as metadataRoutes } from '../functions/metadata/routes.js';
import { routes as proxyRoutes } from '../functions/proxy/routes.js';
import { routes as refreshRoutes } from '../functions/refresh/routes.js';
import { routes as startLoginRoutes } from '../functions/start-login/routes.js';
import { API_PROXY_PREFIX } from '../lib/http/cors.js';
import { lambdaHandler, routeFor, type Handler } from '../lib/lambda/apigw.js';
import { LAMBDA_PAYLOAD_BYTES } from '../lib/proxy/limits.js';
import type { Runtime } from '../lib/runtime.js';
import { scopedTable } from '../lib/store/scoped-table.js';

/** Every function's routes: the compiler asks for one entry per function of the manifest. */
const FUNCTION_MODULES: { readonly [N in FunctionName]: FunctionRoutes<N> } = {
  'start-login': startLoginRoutes,
  callback: callbackRoutes,
  refresh: refreshRoutes,
  logout: logoutRoutes,
  metadata: metadataRoutes,
  proxy: proxyRoutes,
  'backchannel-logout': backchannelLogoutRoutes,
};

/** Request bodies the runner takes: the broker's own endpoints take small forms; the API proxy, what Lambda carries. */
const MAX_BODY = 64 * 1024;
const MAX_PROXY_BODY = LAMBDA_PAYLOAD_BYTES;

/**
 * One Lambda handler per function, each serving its routes, as API Gateway would dispatch. Each
 * sees the table as its role would in AWS (lib/store/scoped-table.ts): a call its manifest entry
 * does not grant fails, so the integration tests check the grants.
 */
export function createDispatcher(runtime: Runtime): (method: string, path: string) => Handler | undefined {
  const byRoute: Record<string, Handler> = {};
  for (const name of FUNCTION_NAMES) {
    const spec = functionSpec(name);
    const scoped: Runtime = { ...runtime, table: scopedTable(runtime.table, spec, name) };
    const handler = lambdaHandler(() => scoped, FUNCTION_MODULES[name]);
    for (const { routeKey } of deployedRoutes(name)) byRoute[routeKey] = handler;
  }
  return (method, path) => routeFor(byRoute, method, path)?.route;
}

/**
 * The path exactly as the request line has it: never normalized (`..`, `%2e`, `\` stay as sent),
 * so the broker sees what a client sent, as the API proxy's checks must.
 */
export function rawPathOf(target: string | undefined): string {
  const q = (target ?? '/').indexOf('?');
  const t = q < 0 ? target ?? '/' : (target ?? '/').slice(0, q);
  if (t.startsWith('/')) return t;
  // absolute-form (a proxy's request line, `GET http://host/a/../b`): the text after the authority,
  // as unparsed as the origin-form's, or a URL parser would resolve `..` before the broker sees it.
  const authority = t.indexOf('://');
  if (authority < 0) return `/${t}`;
  const slash = t.indexOf('/', authority + 3);
  return slash < 0 ? '/' : t.slice(slash);
}

/** The query string exactly as the request line has it (API Gateway keeps it percent-encoded too). */
export function rawQueryOf(target: string | undefined): string {
  const t = target ?? '/';
  const q = t.indexOf('?');
  return q < 0 ? '' : t.slice(q + 1);
}

/** The request target parsed, for its query parameters; a target URL parsing refuses counts as `/`. */
function parsedTarget(target: string | undefined): URL {
  try {
    return new URL(target ?? '/', 'http://local');
  } catch {
    return new URL('http://local/');
  }
}

export function toEvent(req: http.IncomingMessage, body: Buffer): APIGatewayProxyEventV2 {
  const url = parsedTarget(req.url);
  const rawPath = rawPathOf(req.url);
  const headers: Record<string, string> = {};
  const cookies: string[] = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i]!.toLowerCase();
    const value = req.rawHeaders[i + 1]!;
    if (name === 'cookie') {
      cookies.push(...value.split(';').map((c) => c.trim()).filter(Boolean));
      continue;
    }
    headers[name] = headers[name] === undefined ? value : `${headers[name]},${value}`;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of url.searchParams) query[k] = query[k] === undefined ? v : `${query[k]},${v}`;
  const method = (req.method ?? 'GET').toUpperCase();
  const now = new Date();
  return {
    version: '2.0',
    routeKey: `${method} ${rawPath}`,
    rawPath,
    rawQueryString: rawQueryOf(req.url),
    ...(cookies.length ? { cookies } : {}),
    headers,
    ...(url.search ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: 'local',
      apiId: 'local',
      domainName: headers['host'] ?? 'localhost',
      domainPrefix: (headers['host'] ?? 'localhost').split('.')[0]!,
      http: { method, path: rawPath, protocol: `HTTP/${req.httpVersion}`, sourceIp: req.socket.remoteAddress ?? '', userAgent: headers['user-agent'] ?? '' },
      requestId: randomUUID(),
      routeKey: `${method} ${rawPath}`,
      stage: '$default',
      time: now.toISOString(),
      timeEpoch: now.getTime(),
    },
    ...(body.length ? { body: body.toString('base64'), isBase64Encoded: true } : { isBase64Encoded: false }),
  };
}

export function writeResult(res: http.ServerResponse, result: APIGatewayProxyStructuredResultV2): void {
  for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, String(v));
  if (result.cookies?.length) res.setHeader('set-cookie', result.cookies);
  res.statusCode = result.statusCode ?? 200;
  res.end(result.isBase64Encoded ? Buffer.from(result.body ?? '', 'base64') : (result.body ?? ''));
}

export type ExtraRoute = (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => boolean;

export interface BrokerServer {
  readonly url: string;
  readonly server: http.Server;
  close(): Promise<void>;
}

/** Reads a request body of at most `max` bytes; `done` gets undefined for a larger one. */
export function readBody(req: http.IncomingMessage, max: number, done: (body: Buffer | undefined) => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  req.on('data', (c: Buffer) => {
    size += c.length;
    if (size <= max) chunks.push(c);
  });
  req.on('end', () => done(size <= max ? Buffer.concat(chunks) : undefined));
}

/** Starts the broker on `host:port` (0 for any free port). `extra` serves non-API pages (the demo). */
export async function startBrokerServer(runtime: Runtime, options: { host?: string; port?: number; extra?: ExtraRoute } = {}): Promise<BrokerServer> {
  const dispatch = createDispatcher(runtime);
  const server = http.createServer((req, res) => {
    const path = rawPathOf(req.url);
    readBody(req, path.startsWith(API_PROXY_PREFIX) ? MAX_PROXY_BODY : MAX_BODY, (body) => {
      const url = parsedTarget(req.url);
      if (!body) {
        res.writeHead(413, { 'content-type': 'application/json' }).end('{"error":"invalid_request","error_description":"body too large"}');
        return;
      }
      const method = (req.method ?? 'GET').toUpperCase();
      const handler = dispatch(method, path) ?? (method === 'OPTIONS' ? dispatch('POST', path) : undefined);
      if (!handler) {
        if (options.extra?.(req, res, url)) return;
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"invalid_request","error_description":"no such endpoint"}');
        return;
      }
      handler(toEvent(req, body), { awsRequestId: randomUUID() })
        .then((result) => writeResult(res, result))
        .catch(() => {
          res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"server_error","error_description":"internal error"}');
        });
    });
  });
  // As a load balancer keeps idle connections (API Gateway: minutes): a client reusing one just as a
  // short server timeout closes it would see a reset that no real deployment produces.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const host = options.host ?? '127.0.0.1';
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    server,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
