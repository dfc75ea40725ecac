/**
 * An HTTP fault proxy in front of dynalite, for broker *processes*: their SDK clients talk to it
 * over real sockets, so every fault meets the SDK's real retry strategy (its backoff, its retry
 * quota, its error classes) in a process the test can kill. It forwards each request (the
 * `X-Amz-Target` header names the operation) and, by the same `FaultRule`s and rates as the
 * in-process injector, answers some attempts itself:
 *
 * - `throttle`: 400 with DynamoDB's `ProvisionedThroughputExceededException` body;
 * - `internal`: 500 with its `InternalServerError` body;
 * - `delay`: holds the attempt `ms`, then forwards it;
 * - `reset`: destroys the client's socket before forwarding (nothing applied);
 * - `lost-answer`: forwards, waits for dynalite's answer, then destroys the client's socket, so
 *   the SDK retries a write that was applied;
 * - `crash-before` / `crash-after`: like `reset` / `lost-answer`, but first awaits the `crash`
 *   hook, which is where the test SIGKILLs the process that sent the call.
 *
 * Several processes share one proxy through `endpointFor(name)`: the SDK keeps an endpoint's path,
 * so each process's requests arrive under `/<name>/`, which names it in the log and in rules.
 *
 * ```ts
 * const proxy = await startFaultProxy({ target: dynamo.endpoint, crash: (call) => brokers[call.process]?.kill() });
 * proxy.setRates({ throttle: 0.05, internal: 0.05, reset: 0.02, 'lost-answer': 0.02 }, 7);
 * const b1 = await startBrokerProcess({ dynamoEndpoint: proxy.endpointFor('b1'), ... });
 * ```
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  countFault, DYNAMO_CONTENT_TYPE, DYNAMO_ERRORS, emptyCounts, FaultPlan, operationOf, outcomeOf, parseInput, startRecord,
  type CallRecord, type FaultCounts, type FaultKind, type FaultRates, type FaultRule,
} from './dynamo-fault-rules.js';

export type { CallRecord, FaultCounts, FaultKind, FaultRates, FaultRule } from './dynamo-fault-rules.js';

export interface FaultProxyOptions {
  /** dynalite's endpoint, e.g. `http://127.0.0.1:4567`. */
  readonly target: string;
  readonly host?: string;
  /** Default 0: any free port. */
  readonly port?: number;
  readonly rules?: readonly FaultRule[];
  readonly rates?: FaultRates;
  readonly seed?: number;
  /**
   * Makes `crash-before` / `crash-after` possible: called with the attempt (its `process` names
   * the sender) and awaited before the client's socket is destroyed.
   */
  readonly crash?: (call: CallRecord) => void | Promise<void>;
}

export interface FaultProxy {
  /** The proxy for a client that needs no name (its calls are logged as process `default`). */
  readonly endpoint: string;
  /** The proxy for one named process: `http://host:port/<name>`. */
  endpointFor(process: string): string;
  /** Every attempt, in arrival order. */
  readonly calls: CallRecord[];
  readonly counts: FaultCounts;
  inject(...rules: FaultRule[]): FaultProxy;
  setRates(rates: FaultRates, seed?: number): FaultProxy;
  /** Forgets rules and rates; the log and counts stay. */
  clear(): FaultProxy;
  pending(): FaultRule[];
  /** While paused every attempt is forwarded untouched and no rule counts it (e.g. while a process restarts). */
  pause(): void;
  resume(): void;
  close(): Promise<void>;
}

const PROXY_KINDS: readonly FaultKind[] = ['throttle', 'internal', 'reset', 'delay', 'lost-answer', 'crash-before', 'crash-after'];
const DEFAULT_PROCESS = 'default';
/** DynamoDB caps an item at 400 KB; a request body is never near this. */
const MAX_BODY = 4 * 1024 * 1024;
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'transfer-encoding', 'content-length', 'host']);

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const target = new URL(options.target);
  const plan = new FaultPlan(options.crash ? PROXY_KINDS : PROXY_KINDS.filter((k) => !k.startsWith('crash')));
  plan.add(...(options.rules ?? []));
  if (options.rates) plan.setRates(options.rates, options.seed);
  const calls: CallRecord[] = [];
  const counts = emptyCounts();
  let paused = false;
  // Connections to dynalite are reused, as the SDK's are to DynamoDB.
  const agent = new http.Agent({ keepAlive: true });

  const forward = (req: http.IncomingMessage, body: Buffer): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const headers: http.OutgoingHttpHeaders = {};
      for (const [name, value] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
      headers['host'] = target.host;
      headers['content-length'] = body.length;
      const out = http.request({ hostname: target.hostname, port: target.port, method: req.method, path: '/', headers, agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      out.on('error', reject);
      out.end(body);
    });

  const answer = (res: http.ServerResponse, status: number, headers: http.OutgoingHttpHeaders, body: Buffer | string) => {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    res.writeHead(status, { ...headers, 'content-length': bytes.length });
    res.end(bytes);
  };

  const handle = async (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer) => {
    const segment = (req.url ?? '/').split('/').filter(Boolean)[0];
    const wire = {
      op: operationOf(req.headers['x-amz-target'] as string | undefined),
      input: parseInput(body.toString('utf8')),
      invocation: req.headers['amz-sdk-invocation-id'] as string | undefined,
      process: segment ? decodeURIComponent(segment) : DEFAULT_PROCESS,
    };
    const { fault, attempt } = plan.decide(wire, paused);
    const record = startRecord(calls.length + 1, wire, attempt, fault);
    calls.push(record);
    counts.attempts += 1;
    if (fault) countFault(counts, wire.op, fault.kind);
    const drop = () => req.socket.destroy();

    switch (fault?.kind) {
      case 'throttle':
      case 'internal': {
        const error = DYNAMO_ERRORS[fault.kind];
        record.delivered = true;
        answer(res, error.status, { 'content-type': DYNAMO_CONTENT_TYPE, 'x-amzn-requestid': `FAULT${record.seq}` }, error.body);
        return;
      }
      case 'reset':
        drop();
        return;
      case 'crash-before':
        await options.crash?.(record);
        drop();
        return;
      case 'delay':
        await new Promise((r) => setTimeout(r, fault.ms ?? 0));
        // The client gave up meanwhile: the attempt goes no further, as with a real slow network.
        if (req.socket.destroyed) return;
        break;
      default:
        break;
    }

    let upstream: Answer;
    try {
      upstream = await forward(req, body);
    } catch (err) {
      record.outcome = (err as { code?: string }).code ?? 'upstream-error';
      drop();
      return;
    }
    record.reached = true;
    record.outcome = outcomeOf(upstream.status, upstream.body.toString('utf8'));
    counts.forwarded += 1;
    if (fault?.kind === 'lost-answer') {
      drop();
      return;
    }
    if (fault?.kind === 'crash-after') {
      await options.crash?.(record);
      drop();
      return;
    }
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(upstream.headers)) if (!HOP_BY_HOP.has(name) && value !== undefined) headers[name] = value;
    record.delivered = !req.socket.destroyed;
    answer(res, upstream.status, headers, upstream.body);
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY) req.socket.destroy();
      else chunks.push(c);
    });
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch(() => req.socket.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => resolve()));
  const { address, port } = server.address() as AddressInfo;
  const endpoint = `http://${address}:${port}`;

  const proxy: FaultProxy = {
    endpoint,
    endpointFor: (name) => `${endpoint}/${encodeURIComponent(name)}`,
    calls,
    counts,
    inject(...rules) {
      plan.add(...rules);
      return proxy;
    },
    setRates(rates, seed) {
      plan.setRates(rates, seed);
      return proxy;
    },
    clear() {
      plan.clear();
      return proxy;
    },
    pending: () => plan.pending(),
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
    },
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      agent.destroy();
      await closed;
    },
  };
  return proxy;
}
