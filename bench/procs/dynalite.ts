/** dynalite in a process of its own, timing every request it answers (x-amz-target: the operation). */
import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';
import { serveTimings } from './child.js';

const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
serveTimings(server, (req) => String(req.headers['x-amz-target'] ?? '').split('.')[1] ?? '?');
server.listen(0, '127.0.0.1', () => {
  process.send!({ kind: 'ready', endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
