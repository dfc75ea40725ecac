import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { rejectionOf } from '../../support/errors.js';
import { UpstreamMalformedError, UpstreamUnavailableError } from '../../../lib/errors.js';
import { upstreamRequest, type HttpOptions, type UpstreamRequestInit } from '../../../lib/oauth/http.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const servers: Server[] = [];

/** Starts a loopback server on a free port and returns its base URL. */
async function serve(handler: Handler): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
}

afterEach(async () => {
  await Promise.all(servers.splice(0).map(close));
});

const rejection = (promise: Promise<unknown>): Promise<Error> => rejectionOf(promise, Error);

/** Both ways a request goes out: node:http (what runs), and an injected fetch (how tests inject provider faults). */
const PATHS: [string, HttpOptions][] = [['node:http', {}], ['an injected fetch', { fetch: (input, init) => fetch(input, init) }]];

describe.each(PATHS)('upstreamRequest via %s', (_, via) => {
  const request = (url: string, init: UpstreamRequestInit, options: HttpOptions = {}) => upstreamRequest(url, init, { ...via, ...options });

  describe('upstreamRequest: failures', () => {
    it('refuses a body larger than maxBytes (declared by content-length)', async () => {
      const url = await serve((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '2048' });
        res.end('x'.repeat(2048));
      });
      const err = await rejection(request(url, { method: 'GET' }, { maxBytes: 1024 }));
      expect(err).toBeInstanceOf(UpstreamMalformedError);
      expect((err as UpstreamMalformedError).status).toBe(502);
    });

    it('refuses a body larger than maxBytes (chunked, no content-length)', async () => {
      const url = await serve((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        for (let i = 0; i < 8; i++) res.write('y'.repeat(512));
        res.end();
      });
      const err = await rejection(request(url, { method: 'GET' }, { maxBytes: 1024 }));
      expect(err).toBeInstanceOf(UpstreamMalformedError);
    });

    it('gives up on a server that never answers', async () => {
      const url = await serve(() => {
        // never answer
      });
      const err = await rejection(request(url, { method: 'GET' }, { timeoutMs: 200 }));
      expect(err).toBeInstanceOf(UpstreamUnavailableError);
      expect((err as UpstreamUnavailableError).status).toBe(503);
      expect((err as UpstreamUnavailableError).code).toBe('temporarily_unavailable');
    });

    it('gives up on a server that starts its answer and never finishes it', async () => {
      const url = await serve((_req, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"access_token":');
      });
      const err = await rejection(request(url, { method: 'GET' }, { timeoutMs: 200 }));
      expect(err).toBeInstanceOf(UpstreamUnavailableError);
    });

    it('maps a refused connection (closed port) to UpstreamUnavailableError', async () => {
      const url = await serve((_req, res) => res.end());
      await close(servers.pop()!);
      const err = await rejection(request(url, { method: 'GET' }, { timeoutMs: 2000 }));
      expect(err).toBeInstanceOf(UpstreamUnavailableError);
      // The description reaches apps: no internal host or port in it (the log has them).
      expect(err.message).not.toContain('127.0.0.1');
    });

    it('maps a connection reset mid-answer to UpstreamUnavailableError', async () => {
      const url = await serve((req, res) => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
        res.write('{"a":', () => req.socket.destroy());
      });
      const err = await rejection(request(url, { method: 'GET' }, { timeoutMs: 2000 }));
      expect(err).toBeInstanceOf(UpstreamUnavailableError);
    });
  });

  describe('upstreamRequest: answers', () => {
    it('sends the request and returns status, content type and text', async () => {
      let seen: { method?: string; url?: string; type?: string; body: string } = { body: '' };
      const url = await serve((req, res) => {
        let body = '';
        req.setEncoding('utf8');
        req.on('data', (c: string) => (body += c));
        req.on('end', () => {
          seen = { method: req.method, url: req.url, type: req.headers['content-type'], body };
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end('{"error":"invalid_grant"}');
        });
      });
      const out = await request(`${url}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'grant_type=refresh_token',
      });
      expect(seen).toEqual({ method: 'POST', url: '/token', type: 'application/x-www-form-urlencoded', body: 'grant_type=refresh_token' });
      expect(out).toEqual({ status: 400, contentType: 'application/json', text: '{"error":"invalid_grant"}' });
    });

    it('accepts a body of exactly maxBytes', async () => {
      const url = await serve((_req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('z'.repeat(1024));
      });
      expect((await request(url, { method: 'GET' }, { maxBytes: 1024 })).text).toHaveLength(1024);
    });

    it('does not follow redirects', async () => {
      const url = await serve((req, res) => {
        if (req.url === '/elsewhere') {
          res.writeHead(200);
          res.end('followed');
          return;
        }
        res.writeHead(302, { location: '/elsewhere' });
        res.end();
      });
      const out = await request(url, { method: 'GET' });
      expect(out.status).toBe(302);
      expect(out.text).toBe('');
    });

    it('returns an empty content type when the server sends none', async () => {
      const url = await serve((_req, res) => {
        res.removeHeader('content-type');
        res.end();
      });
      expect((await request(url, { method: 'GET' })).contentType).toBe('');
    });
  });

  describe('upstreamRequest: observe', () => {
    it('reports every finished request, failures included', async () => {
      const seen: { ok: boolean; status?: number }[] = [];
      const observe = (r: { ok: boolean; status?: number }) => seen.push(r);
      const server = (await import('node:http')).createServer((req, res) => {
        res.statusCode = req.url === '/fail' ? 503 : 200;
        res.end('{}');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      const { port } = server.address() as { port: number };
      try {
        await request(`http://127.0.0.1:${port}/ok`, {}, { observe });
        await request(`http://127.0.0.1:${port}/fail`, {}, { observe });
      } finally {
        server.close();
      }
      await request(`http://127.0.0.1:${port}/gone`, {}, { observe }).catch(() => {});
      expect(seen.map((s) => [s.ok, s.status])).toEqual([[true, 200], [false, 503], [false, undefined]]);
    });
  });
});

describe('upstreamRequest via node:http', () => {
  it('keeps the connection for the next request to the same provider', async () => {
    const ports = new Set<number>();
    const url = await serve((req, res) => {
      ports.add(req.socket.remotePort!);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    for (let i = 0; i < 4; i++) await upstreamRequest(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'a=b' });
    expect(ports.size).toBe(1);
  });
});

describe('withDeadline', () => {
  it('cuts each request to the time left, never below 1 ms, never above the per-request timeout', async () => {
    const { withDeadline } = await import('../../../lib/oauth/http.js');
    const now = Date.now();
    expect(withDeadline({ timeoutMs: 8000 }, now + 60_000).timeoutMs).toBe(8000);
    const near = withDeadline({ timeoutMs: 8000 }, now + 2000).timeoutMs!;
    expect(near).toBeGreaterThan(1000);
    expect(near).toBeLessThanOrEqual(2000);
    expect(withDeadline({}, now - 10).timeoutMs).toBe(1);
  });

  it('leaves a second call of a spent budget no time', async () => {
    const { withDeadline } = await import('../../../lib/oauth/http.js');
    const server = (await import('node:http')).createServer(() => {}); // never answers
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const { port } = server.address() as { port: number };
    try {
      const budget = withDeadline({ timeoutMs: 5000 }, Date.now() + 300);
      await expect(upstreamRequest(`http://127.0.0.1:${port}/`, {}, budget)).rejects.toBeInstanceOf(UpstreamUnavailableError);
      // The first call spent the budget: the next one gets the 1 ms floor, not another 5 s.
      expect(budget.timeoutMs).toBe(1);
      await expect(upstreamRequest(`http://127.0.0.1:${port}/`, {}, budget)).rejects.toBeInstanceOf(UpstreamUnavailableError);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});
