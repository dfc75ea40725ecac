/**
 * The demo's API (local runner only, never deployed): a resource server on loopback that takes
 * the embedded provider's JWT access tokens (audience `urn:broker:demo-api`), verifies each
 * against the provider's JWKS as any API would, and greets the user. The demo page calls it
 * through the broker's API proxy (`/api/demo/hello`), so the page never holds the token it needs.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify } from 'jose';

export const DEMO_API_AUDIENCE = 'urn:broker:demo-api';

export interface DemoApi {
  readonly url: string;
  close(): Promise<void>;
}

export async function startDemoApi(options: { readonly issuer: string; readonly host?: string; readonly port?: number }): Promise<DemoApi> {
  const jwks = createRemoteJWKSet(new URL(`${options.issuer}/jwks`));
  const server = http.createServer((req, res) => {
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
    };
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    if (!m) return answer(401, { message: 'a bearer token is required' }, { 'www-authenticate': 'Bearer' });
    jwtVerify(m[1]!, jwks, { issuer: options.issuer, audience: DEMO_API_AUDIENCE }).then(({ payload }) => {
      if (req.method !== 'GET' || !req.url?.startsWith('/v1/hello')) return answer(404, { message: 'try GET /v1/hello' });
      answer(200, {
        message: `Hello, ${String(payload.sub)}! This answer comes from the demo API, which verified your access token with the provider's keys.`,
        sub: payload.sub,
        scope: payload['scope'],
        token_expires_at: new Date(Number(payload.exp) * 1000).toISOString(),
        answered_at: new Date().toISOString(),
      });
    }, () => answer(401, { message: 'the access token was refused' }, { 'www-authenticate': 'Bearer error="invalid_token"' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://${options.host ?? '127.0.0.1'}:${port}`,
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
