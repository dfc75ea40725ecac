/**
 * The API that proxied calls reach: a bare node:http server answering every GET with a small JSON
 * body (the path and whether a bearer token came), timing each answer (the "provider" column of
 * the proxied path). It checks no token: the bench measures the broker, not the API.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { serveTimings } from './child.js';

const server = http.createServer((req, res) => {
  const body = JSON.stringify({ path: req.url, bearer: /^Bearer \S+$/.test(req.headers.authorization ?? ''), items: [{ id: 1, name: 'thing one' }, { id: 2, name: 'thing two' }] });
  req.resume();
  req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body));
});
server.keepAliveTimeout = 60_000;
serveTimings(server, () => 'api');
server.listen(0, '127.0.0.1', () => {
  process.send!({ kind: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
