/**
 * A real API on loopback for the API proxy's tests: it verifies every bearer token against the
 * provider's JWKS (JWT access tokens of the local oidc-provider, audience `urn:broker:demo-api`),
 * as a resource server would, and tells what it received. It never echoes the `Authorization`
 * header's value: only the verified token's `sub`, `jti` and SHA-256, so no token can come back
 * through the proxy by way of this API.
 *
 * Paths (below any prefix, e.g. `/v1`):
 * - anything: `200` JSON `{method, path, query, headers, body: {length, sha256, base64}, token}`,
 *   with a `Set-Cookie`, an `Access-Control-Allow-Origin: *`, an `X-Powered-By` and every
 *   allowlisted response header set, so the tests can see which come back;
 * - `.../mirror`: the request body back, byte for byte, with the request's content type;
 * - `.../bytes?n=N`: N bytes (0..255 repeated), `application/octet-stream`;
 * - `.../gzip`: a JSON body gzip-encoded (`Content-Encoding: gzip`), although not asked for;
 * - `.../status/NNN`: that status, with a `WWW-Authenticate` on 401;
 * - `.../slow?ms=N`: answers after N ms;
 * - `.../cached`: `Cache-Control: max-age=60`.
 * A token whose `jti` is in `revoked` is refused with `401` everywhere.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

export const DEMO_API_AUDIENCE = 'urn:broker:demo-api';

export interface EchoApi {
  readonly url: string;
  /** Requests that reached the API, whatever their outcome. */
  readonly received: { method: string; url: string }[];
  /** `jti`s the API refuses (401), as if revoked at the provider. */
  readonly revoked: Set<string>;
  /** The provider whose tokens it takes; set once the provider runs. */
  trust(issuer: string): void;
  close(): Promise<void>;
}

export interface EchoAnswer {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string | string[]>;
  body: { length: number; sha256: string; base64: string };
  token: { sub: string; jti: string; sha256: string; aud: unknown; iss: string };
}

const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

export async function startEchoApi(): Promise<EchoApi> {
  let verifier: { issuer: string; jwks: ReturnType<typeof createRemoteJWKSet> } | undefined;
  const received: EchoApi['received'] = [];
  const revoked = new Set<string>();
  const server = http.createServer((req, res) => {
    received.push({ method: req.method ?? '', url: req.url ?? '' });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch(() => res.writeHead(500).end());
    });
  });

  async function authenticate(req: http.IncomingMessage): Promise<{ payload: JWTPayload; token: string } | undefined> {
    const m = /^Bearer ([A-Za-z0-9._~+/-]+=*)$/.exec(req.headers.authorization ?? '');
    if (!m || !verifier) return undefined;
    try {
      const { payload } = await jwtVerify(m[1]!, verifier.jwks, { issuer: verifier.issuer, audience: DEMO_API_AUDIENCE });
      if (typeof payload.jti === 'string' && revoked.has(payload.jti)) return undefined;
      return { payload, token: m[1]! };
    } catch {
      return undefined;
    }
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer): Promise<void> {
    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q < 0 ? target : target.slice(0, q);
    const query = q < 0 ? '' : target.slice(q + 1);
    const params = new URLSearchParams(query);
    const auth = await authenticate(req);
    if (!auth) {
      res.writeHead(401, { 'www-authenticate': 'Bearer error="invalid_token"', 'content-type': 'application/json' }).end('{"message":"token refused"}');
      return;
    }
    if (path.endsWith('/slow')) await new Promise((r) => setTimeout(r, Number(params.get('ms') ?? 1000)));
    const status = /\/status\/(\d{3})$/.exec(path);
    if (status) {
      const code = Number(status[1]);
      res.writeHead(code, { 'content-type': 'application/json', ...(code === 401 ? { 'www-authenticate': 'Bearer error="insufficient_scope"' } : {}) });
      res.end(code === 204 || code === 304 ? undefined : JSON.stringify({ status: code }));
      return;
    }
    if (path.endsWith('/tattle')) {
      // An API that puts the token it was sent into its answer's headers.
      res.writeHead(401, { 'www-authenticate': `Bearer error="invalid_token", token="${req.headers.authorization?.slice(7) ?? ''}"`, 'x-request-id': 'r1' }).end();
      return;
    }
    if (path.endsWith('/mirror')) {
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream', 'x-body-sha256': sha256(body) }).end(body);
      return;
    }
    if (path.endsWith('/bytes')) {
      const n = Number(params.get('n') ?? 0);
      const out = Buffer.alloc(n);
      for (let i = 0; i < n; i++) out[i] = i % 256;
      res.writeHead(200, { 'content-type': 'application/octet-stream' }).end(out);
      return;
    }
    if (path.endsWith('/gzip')) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip' }).end(gzipSync(JSON.stringify({ zipped: true, sub: auth.payload.sub })));
      return;
    }
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[name] = name === 'authorization' ? '(verified, not echoed)' : value;
    }
    const answer: EchoAnswer = {
      method: req.method ?? '',
      path,
      query,
      headers,
      body: { length: body.length, sha256: sha256(body), base64: body.toString('base64') },
      token: { sub: String(auth.payload.sub), jti: String(auth.payload.jti), sha256: sha256(auth.token), aud: auth.payload.aud, iss: String(auth.payload.iss) },
    };
    res.writeHead(req.method === 'POST' && path.endsWith('/created') ? 201 : 200, {
      'content-type': 'application/json; charset=utf-8',
      'content-language': 'en',
      'content-range': 'bytes 0-0/1',
      'accept-ranges': 'bytes',
      ...(path.endsWith('/cached') ? { 'cache-control': 'max-age=60' } : {}),
      etag: '"v1"',
      'last-modified': 'Thu, 01 Jan 2026 00:00:00 GMT',
      location: 'https://api.example.com/v1/things/1',
      'retry-after': '5',
      'www-authenticate': 'Bearer realm="echo"',
      'x-request-id': String(req.headers['x-request-id'] ?? 'api-made'),
      // None of these may come back through the proxy.
      'set-cookie': ['api-session=leak; Path=/', 'other=1'],
      'access-control-allow-origin': '*',
      'x-powered-by': 'echo',
      'strict-transport-security': 'max-age=1',
    });
    res.end(req.method === 'HEAD' ? undefined : JSON.stringify(answer));
  }

  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    revoked,
    trust(issuer) {
      verifier = { issuer, jwks: createRemoteJWKSet(new URL(`${issuer}/jwks`)) };
    },
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

export interface RawAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
  json(): any;
}

/**
 * A request with its path exactly as given (fetch would resolve `..` and `%2e%2e` first, as
 * browsers do; an attacker's client need not).
 */
export function rawRequest(base: string, path: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<RawAnswer> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, path, method: init.method ?? 'GET', headers: init.headers ?? {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}
