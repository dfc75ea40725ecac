/**
 * In-process DynamoDB fault injection, on every HTTP attempt of a real client pointed at
 * dynalite: the broker's own (`table`, lib/aws/json-client.ts, through its `intercept` hook, after
 * its retry and signing) and the AWS SDK's (`client`, one middleware at the bottom of its stack,
 * after the retry and signing middleware, before the response is parsed). A scripted fault is an
 * answer the client itself reacts to: a throttling body becomes its own
 * `ProvisionedThroughputExceededException` after its own retries, a dropped connection becomes its
 * own network error, and an applied write whose answer is lost is retried by the client, for real,
 * against dynalite. Nothing here imitates a client's exceptions; only the wire is faked.
 *
 * Each client is a *container* (a Lambda execution environment). A container can die
 * (`crash-before`, `crash-after`, or `kill()`): from then on none of its calls reach dynalite, and
 * `mortal(request)` rejects with `ProcessDied` at once, whatever the request does next. That is
 * how a test asks "what if the process died right after this write": the code that would have run
 * afterwards (a `finally` releasing a lease, the answer to the app) has no effect on the table and
 * never reaches the test.
 *
 * Retries are immediate by default (`retryDelays: 'none'`): the same decisions as the SDK's
 * standard strategy (retry throttling and transient errors, up to `maxAttempts`), without its
 * sleeps (a throttling retry waits up to 1 s, then 2 s, then 4 s) and without its retry quota,
 * so outcomes depend only on the script. `retryDelays: 'sdk'` keeps the SDK's own strategy.
 *
 * ```ts
 * const faults = new DynamoFaults();
 * const box = faults.container(dynamo.endpoint);
 * const table = createTable(name, box.table);
 * faults.inject({ op: 'PutItem', nth: 1, fault: 'lost-answer' });
 * ```
 */
import { DynamoDBClient, type DynamoDBClientConfig } from '@aws-sdk/client-dynamodb';
import type { WireResponse as ClientResponse } from '../../lib/aws/json-client.js';
import { dynamoClient, DYNAMODB_RETRIES, LOCAL_CREDENTIALS } from '../../lib/store/dynamo-client.js';
import type { TableClient } from '../../lib/store/table.js';
import { sdkTableClient } from '../../local/dynamo.js';
import {
  countFault, DYNAMO_CONTENT_TYPE, DYNAMO_ERRORS, emptyCounts, FaultPlan, operationOf, outcomeOf, parseInput, startRecord,
  type CallRecord, type FaultCounts, type FaultKind, type FaultRates, type FaultRule, type WireAttempt,
} from './dynamo-fault-rules.js';

export type { CallRecord, DynamoInput, Fault, FaultCounts, FaultKind, FaultRates, FaultRule } from './dynamo-fault-rules.js';

/**
 * The container died. Thrown by every storage call of a dead container, and by `mortal` for any
 * request it was serving. Not retryable for the SDK (no network code, no status), so it surfaces
 * from `send` as it is; a test recognises it with `instanceof` or `name`.
 */
export class ProcessDied extends Error {
  override readonly name = 'ProcessDied';
  constructor(readonly container: string, readonly at: CallRecord | undefined) {
    super(at ? `container ${container} died ${at.fault === 'crash-before' ? 'before' : 'after'} ${at.op} ${at.key ?? ''}`.trim() : `container ${container} was killed`);
  }
}

const IN_PROCESS_KINDS: readonly FaultKind[] = ['throttle', 'internal', 'reset', 'timeout', 'delay', 'lost-answer', 'crash-before', 'crash-after'];

export interface ContainerOptions {
  /** Names the container in the call log and lets a rule target it (`process`). Default `c1`, `c2`, ... */
  readonly name?: string;
  /** Attempts per call, as the SDK counts them. Default 4, DynamoDB's default in this SDK. */
  readonly maxAttempts?: number;
  /** `none` (default): immediate retries, deterministic. `sdk`: the SDK's standard strategy, with jitter and quota. */
  readonly retryDelays?: 'none' | 'sdk';
}

/** The faults, their schedule and the call log, shared by all containers made from it. */
export class DynamoFaults {
  /** Every attempt of every container, in order. */
  readonly calls: CallRecord[] = [];
  readonly counts: FaultCounts = emptyCounts();
  readonly #plan = new FaultPlan(IN_PROCESS_KINDS);
  #containers = 0;

  constructor(rules: FaultRule[] = []) {
    this.#plan.add(...rules);
  }

  /** Scripts faults on calls (see `FaultRule`); rules apply in the order they were added. */
  inject(...rules: FaultRule[]): this {
    this.#plan.add(...rules);
    return this;
  }

  /** Random faults per attempt, on top of the script; `seed` makes a run repeatable. */
  setRates(rates: FaultRates, seed?: number): this {
    this.#plan.setRates(rates, seed);
    return this;
  }

  /** Forgets the script and the rates; the log and counts stay. */
  clear(): this {
    this.#plan.clear();
    return this;
  }

  /** Scripted rules that have not met all their calls: a test can assert its faults happened. */
  pending(): FaultRule[] {
    return this.#plan.pending();
  }

  /** The logged attempts of one operation (on one key), retries included. */
  callsTo(op: string, key?: string): CallRecord[] {
    return this.calls.filter((c) => c.op === op && (key === undefined || c.key === key));
  }

  /**
   * A new container subject to this schedule: its own real clients on `endpoint` (the broker's,
   * `table`, and the SDK's, `client`), or the given SDK client with the injector added to its
   * middleware stack (its retry configuration stays as it is, and `maxAttempts` / `retryDelays`
   * are ignored; `table` then goes through it too).
   */
  container(target: string | DynamoDBClient, options: ContainerOptions = {}): FaultyContainer {
    this.#containers += 1;
    return new FaultyContainer(this, this.#plan, target, { ...options, name: options.name ?? `c${this.#containers}` });
  }
}

/** What the middleware sees of an HTTP request and response (the SDK's `HttpRequest` / `HttpResponse`). */
interface WireRequest {
  headers: Record<string, string>;
  body?: unknown;
}
interface WireResponse {
  statusCode: number;
  headers: Record<string, string>;
  body?: unknown;
}

export class FaultyContainer {
  readonly name: string;
  /** The AWS SDK's client: use it directly. */
  readonly client: DynamoDBClient;
  /** The broker's client (what deployed functions use): hand it to `createTable`. */
  readonly table: TableClient;
  #death: ProcessDied | undefined;
  readonly #mourners = new Set<(death: ProcessDied) => void>();
  readonly #faults: DynamoFaults;
  readonly #plan: FaultPlan;

  constructor(faults: DynamoFaults, plan: FaultPlan, target: string | DynamoDBClient, options: ContainerOptions & { name: string }) {
    this.name = options.name;
    this.#faults = faults;
    this.#plan = plan;
    const maxAttempts = options.maxAttempts ?? 4;
    if (typeof target === 'string') {
      this.client = new DynamoDBClient({
        endpoint: target,
        region: 'local',
        credentials: LOCAL_CREDENTIALS,
        maxAttempts,
        ...(options.retryDelays === 'sdk' ? {} : { retryStrategy: immediateRetries(maxAttempts) }),
      });
      this.table = dynamoClient({
        endpoint: target,
        region: 'local',
        credentials: LOCAL_CREDENTIALS,
        maxAttempts,
        backoff: options.retryDelays === 'sdk' ? DYNAMODB_RETRIES.backoff : () => 0,
        intercept: (request, send) => this.#attempt<ClientResponse>(
          { op: request.operation, input: parseInput(request.body), invocation: request.headers['amz-sdk-invocation-id'], process: this.name },
          async () => {
            const res = await send(request);
            return { status: res.statusCode, text: res.body, result: res };
          },
          (answer) => ({ statusCode: answer.status, headers: { 'content-type': DYNAMO_CONTENT_TYPE, 'x-amzn-requestid': `FAULT${Date.now()}` }, body: answer.body }),
        ),
      });
    } else {
      this.client = target;
      this.table = sdkTableClient(target);
    }
    this.client.middlewareStack.add(
      (next) => async (args) => {
        const request = args.request as WireRequest;
        type Result = Awaited<ReturnType<typeof next>>;
        return this.#attempt<Result>(
          {
            op: operationOf(header(request.headers, 'x-amz-target')),
            input: parseInput(bodyText(request.body)),
            invocation: header(request.headers, 'amz-sdk-invocation-id'),
            process: this.name,
          },
          async () => {
            const result = await next(args);
            const response = result.response as WireResponse;
            const bytes = await readBody(response.body);
            response.body = bytes;
            return { status: response.statusCode, text: Buffer.from(bytes).toString('utf8'), result };
          },
          (answer) => ({ response: dynamoAnswer(answer) }) as Result,
        );
      },
      { step: 'deserialize', priority: 'low', name: 'dynamoFaultInjection' },
    );
  }

  /**
   * One attempt through the schedule: `forward` sends it on to dynalite; `answer` makes the
   * client's view of an error answer DynamoDB would send (throttling, a 500).
   */
  async #attempt<R>(wire: WireAttempt, forward: () => Promise<{ status: number; text: string; result: R }>, answer: (error: { status: number; body: string }) => R): Promise<R> {
    const faults = this.#faults;
    if (this.#death) {
      // Code that runs on in a dead container (a `finally`, a late retry) reaches nothing.
      const record = startRecord(faults.calls.length + 1, wire, 0, undefined);
      record.outcome = 'after-death';
      faults.calls.push(record);
      throw this.#death;
    }
    const { fault, attempt } = this.#plan.decide(wire);
    const record = startRecord(faults.calls.length + 1, wire, attempt, fault);
    faults.calls.push(record);
    faults.counts.attempts += 1;
    if (fault) countFault(faults.counts, wire.op, fault.kind);

    switch (fault?.kind) {
      case 'throttle':
      case 'internal':
        return answer(DYNAMO_ERRORS[fault.kind]);
      case 'reset':
        throw connectionReset();
      case 'timeout':
        await sleep(fault.ms ?? 0);
        throw requestTimeout(fault.ms ?? 0);
      case 'delay':
        await sleep(fault.ms ?? 0);
        if (this.#death) throw this.#death;
        break;
      case 'crash-before':
        throw this.#die(record);
      default:
        break;
    }

    let sent: { status: number; text: string; result: R };
    try {
      sent = await forward();
    } catch (err) {
      const e = err as { code?: string; name?: string };
      record.outcome = e.code ?? e.name ?? 'error';
      throw err;
    }
    record.reached = true;
    record.outcome = outcomeOf(sent.status, sent.text);
    faults.counts.forwarded += 1;
    // Died while this attempt was on its way: its answer goes nowhere.
    if (this.#death) throw this.#death;
    if (fault?.kind === 'lost-answer') throw connectionReset();
    if (fault?.kind === 'crash-after') throw this.#die(record);
    record.delivered = true;
    return sent.result;
  }

  get dead(): boolean {
    return this.#death !== undefined;
  }

  /** Why the container died, once it has. */
  get death(): ProcessDied | undefined {
    return this.#death;
  }

  /** Kills the container now, between storage calls (e.g. during a slow provider call). */
  kill(): ProcessDied {
    return this.#die(undefined);
  }

  /**
   * The request `work`, as its client would see it from a container that may die: it rejects
   * with `ProcessDied` the moment the container dies (its answer is never delivered), and
   * otherwise settles as `work` does.
   */
  mortal<T>(work: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const mourn = (death: ProcessDied) => reject(death);
      if (this.#death) {
        work.catch(() => undefined);
        reject(this.#death);
        return;
      }
      this.#mourners.add(mourn);
      work.then(
        (value) => {
          this.#mourners.delete(mourn);
          if (this.#death) reject(this.#death);
          else resolve(value);
        },
        (err: unknown) => {
          this.#mourners.delete(mourn);
          reject(this.#death ?? err);
        },
      );
    });
  }

  #die(at: CallRecord | undefined): ProcessDied {
    if (this.#death) return this.#death;
    const death = new ProcessDied(this.name, at);
    this.#death = death;
    for (const mourn of this.#mourners) mourn(death);
    this.#mourners.clear();
    return death;
  }
}

/**
 * The SDK's standard retry decisions without its waiting: retry what the retry middleware
 * classifies as THROTTLING or TRANSIENT, up to `maxAttempts` attempts, at once.
 */
function immediateRetries(maxAttempts: number): NonNullable<DynamoDBClientConfig['retryStrategy']> {
  const token = (retries: number) => ({ getRetryCount: () => retries, getRetryDelay: () => 0, getRetryCost: () => 0 });
  return {
    mode: 'standard',
    acquireInitialRetryToken: async () => token(0),
    refreshRetryTokenForRetry: async (previous, info) => {
      const retryable = info.errorType === 'THROTTLING' || info.errorType === 'TRANSIENT';
      if (retryable && previous.getRetryCount() + 1 < maxAttempts) return token(previous.getRetryCount() + 1);
      throw new Error('No retry token available');
    },
    recordSuccess: () => undefined,
  };
}

function header(headers: Record<string, string>, name: string): string | undefined {
  for (const [k, v] of Object.entries(headers)) if (k.toLowerCase() === name) return v;
  return undefined;
}

function dynamoAnswer(error: { status: number; body: string }): WireResponse {
  return {
    statusCode: error.status,
    headers: { 'content-type': DYNAMO_CONTENT_TYPE, 'x-amzn-requestid': `FAULT${Date.now()}` },
    body: new Uint8Array(Buffer.from(error.body)),
  };
}

/**
 * What `@smithy/node-http-handler` rejects with when the server drops the connection: node's
 * `socket hang up` (`ECONNRESET`), renamed `TimeoutError` by the handler.
 */
export function connectionReset(): Error {
  return Object.assign(new Error('socket hang up'), { code: 'ECONNRESET', name: 'TimeoutError' });
}

/** What the handler rejects with when a request outlives `requestTimeout` (and throwOnRequestTimeout is set). */
export function requestTimeout(ms: number): Error {
  return Object.assign(new Error(`@smithy/node-http-handler - [ERROR] a request has exceeded the configured ${ms} ms requestTimeout.`), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

/** The request body as the JSON protocol serialised it (a string, or bytes in some SDK versions). */
function bodyText(body: unknown): string | undefined {
  if (typeof body === 'string') return body;
  if (body instanceof Uint8Array) return Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8');
  return undefined;
}

async function readBody(body: unknown): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array();
  if (body instanceof Uint8Array) return new Uint8Array(body);
  if (typeof body === 'string') return new Uint8Array(Buffer.from(body));
  const chunks: Buffer[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array | string>) chunks.push(Buffer.from(chunk));
  return new Uint8Array(Buffer.concat(chunks));
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
