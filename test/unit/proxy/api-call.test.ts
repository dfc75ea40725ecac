import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiTimeoutError, ApiUnavailableError } from '../../../lib/errors.js';
import { callApi, type ApiRequest } from '../../../lib/proxy/api-call.js';

let server: http.Server;
let base: string;
/** Sockets that answered once; the next request on one of them is reset, as a connection the API closed while idle. */
const served = new WeakSet<object>();
let resets = 0;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/stale')) {
      if (served.has(req.socket)) {
        resets++;
        req.socket.destroy();
        return;
      }
      served.add(req.socket);
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (url.startsWith('/slow')) return setTimeout(() => res.end('late'), 500);
      if (url.startsWith('/head-big')) return res.writeHead(200, { 'content-length': '5000' }).end();
      if (url.startsWith('/zip')) return res.writeHead(200, { 'content-encoding': 'gzip' }).end(gzipSync(Buffer.alloc(3000, 1)));
      if (url.startsWith('/odd-coding')) return res.writeHead(200, { 'content-encoding': 'compress' }).end('x');
      // Answers without content that still name a coding or the whole resource's length.
      if (url.startsWith('/gz-empty')) return res.writeHead(Number(url.split('/')[2] ?? 200), { 'content-encoding': 'gzip', etag: '"e"' }).end();
      if (url.startsWith('/304-length')) return res.writeHead(304, { 'content-length': '99999999', etag: '"e"' }).end();
      if (url.startsWith('/status-999')) return res.writeHead(999).end('odd');
      if (url.startsWith('/switch')) {
        res.socket!.write('HTTP/1.1 101 Switching Protocols\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n');
        return;
      }
      if (url.startsWith('/cut')) {
        res.writeHead(200, { 'content-length': '100' });
        res.write('partial');
        return setTimeout(() => res.socket?.destroy(), 20);
      }
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'x-method': req.method ?? '' }).end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => {
  server.close(() => r());
  server.closeAllConnections();
}));

const request = (path: string, extra: Partial<ApiRequest> = {}): ApiRequest => ({
  url: new URL(`${base}${path}`), method: 'GET', headers: {}, body: new Uint8Array(0), timeoutMs: 2000, maxBodyBytes: 2048, ...extra,
});

describe('callApi', () => {
  it('passes on an answer without content that names a coding (HEAD, 204, 304) or the whole length (304), not a 502', async () => {
    for (const [path, method, status] of [['/gz-empty/200', 'HEAD', 200], ['/gz-empty/204', 'GET', 204], ['/gz-empty/304', 'GET', 304], ['/304-length', 'GET', 304]] as const) {
      const answer = await callApi(request(path, { method }));
      expect(answer.status, path).toBe(status);
      expect(answer.body.length, path).toBe(0);
      expect(answer.headers['etag'], path).toBe('"e"');
    }
  });

  it('refuses a status outside 200-599, and a switch of protocols, at once', async () => {
    expect(await callApi(request('/status-999')).catch((e: unknown) => e)).toBeInstanceOf(ApiUnavailableError);
    const started = Date.now();
    expect(await callApi(request('/switch', { timeoutMs: 5_000 })).catch((e: unknown) => e)).toBeInstanceOf(ApiUnavailableError);
    expect(Date.now() - started).toBeLessThan(4_000);
  });

  it('answers a header value Node cannot send (a line break) with ApiUnavailableError, and nothing throws later', async () => {
    const uncaught: unknown[] = [];
    const seen = (err: unknown) => uncaught.push(err);
    process.on('uncaughtException', seen);
    try {
      const err = await callApi(request('/echo', { headers: { authorization: 'Bearer at-\r\nX-Injected: 1' }, timeoutMs: 100 })).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ApiUnavailableError);
      // Past the timeout: the timer was cleared with the failure, so it never fires on a request that was never made.
      await new Promise((r) => setTimeout(r, 200));
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', seen);
    }
  });

  it('sends the body\'s bytes exactly and reads the answer\'s bytes exactly', async () => {
    const body = Buffer.from(Array.from({ length: 1024 }, (_, i) => (i * 7) % 256));
    const answer = await callApi(request('/echo', { method: 'PUT', body }));
    expect(answer.status).toBe(200);
    expect(answer.body.equals(body)).toBe(true);
    expect(answer.headers['x-method']).toBe('PUT');
  });

  it('sends no body with GET or HEAD', async () => {
    const answer = await callApi(request('/echo', { method: 'GET', body: Buffer.from('ignored') }));
    expect(answer.body.length).toBe(0);
  });

  it('is a 504 when the whole answer does not come in time', async () => {
    await expect(callApi(request('/slow', { timeoutMs: 100 }))).rejects.toBeInstanceOf(ApiTimeoutError);
  });

  it('is a 502 for an unreachable API, an answer broken off, too large, or in a coding it cannot undo', async () => {
    await expect(callApi(request('/x', { url: new URL('http://127.0.0.1:9/x') }))).rejects.toBeInstanceOf(ApiUnavailableError);
    await expect(callApi(request('/cut'))).rejects.toBeInstanceOf(ApiUnavailableError);
    await expect(callApi(request('/echo', { method: 'POST', body: Buffer.alloc(2049), maxBodyBytes: 2048 }))).rejects.toThrow(/larger than the proxy carries/);
    await expect(callApi(request('/zip'))).rejects.toThrow(/larger than the proxy carries/); // 3000 bytes once decoded
    await expect(callApi(request('/odd-coding'))).rejects.toThrow(/content coding/);
  });

  it('undoes gzip within the cap, and takes a HEAD answer whatever length it announces', async () => {
    const answer = await callApi(request('/zip', { maxBodyBytes: 4096 }));
    expect(answer.body.equals(Buffer.alloc(3000, 1))).toBe(true);
    expect(answer.headers['content-encoding']).toBeUndefined();
    expect((await callApi(request('/head-big', { method: 'HEAD' }))).status).toBe(200);
  });

  it('sends an idempotent request again on a new connection when its kept-alive one was reset; never a POST', async () => {
    expect((await callApi(request('/stale'))).status).toBe(200);
    const before = resets;
    expect((await callApi(request('/stale'))).status).toBe(200);
    expect(resets - before).toBe(1);
    await callApi(request('/stale', { method: 'PUT' }));
    await expect(callApi(request('/stale', { method: 'POST', body: Buffer.from('once') }))).rejects.toBeInstanceOf(ApiUnavailableError);
  });
});
