/**
 * The broker as it ships: each function's bundle (`dist/<name>/index.mjs` and its chunks, from `npm run build`)
 * imported in this process with its own runtime (as its own container would have), behind the
 * local runner's adapter (each request becomes a payload 2.0 event), on loopback. Configuration and
 * table come from the environment, as in Lambda (BROKER_CONFIG_JSON, DYNAMODB_ENDPOINT,
 * DYNAMODB_TABLE); its logs go to stdout, which the bench counts.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { deployedRoutes, FUNCTION_NAMES } from '../../functions/manifest.js';
import { routeFor, type Handler } from '../../lib/lambda/apigw.js';
import { readBody, toEvent, writeResult } from '../../local/http-adapter.js';
import { answerBench } from './child.js';

const root = path.resolve(import.meta.dirname, '../..');
const byRoute: Record<string, Handler> = {};
for (const name of FUNCTION_NAMES) {
  const { handler } = await import(pathToFileURL(path.join(root, 'dist', name, 'index.mjs')).href) as { handler: Handler };
  for (const { routeKey } of deployedRoutes(name)) byRoute[routeKey] = handler;
}

const server = http.createServer((req, res) => {
  readBody(req, 64 * 1024, (body) => {
    const url = new URL(req.url ?? '/', 'http://local');
    // As API Gateway matches them: exact keys, then greedy ones (the proxy's ANY /api/{proxy+}).
    const handler = routeFor(byRoute, req.method ?? 'GET', url.pathname)?.route;
    if (!body || !handler) {
      res.writeHead(404).end();
      return;
    }
    handler(toEvent(req, body), { awsRequestId: randomUUID() }).then((result) => writeResult(res, result), () => res.writeHead(500).end());
  });
});
answerBench({});
server.listen(Number(process.env['PORT'] ?? 0), '127.0.0.1', () => {
  process.send!({ kind: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
