/**
 * What the two DynamoDB fault injectors share: which call gets which fault, and what the call
 * log records. `dynamo-faults.ts` (in the test process, inside the SDK's middleware stack) and
 * `dynamo-fault-proxy.ts` (an HTTP proxy in front of dynalite, for broker processes) both see the
 * same thing: one HTTP attempt at a time, named by its `X-Amz-Target` and carrying the SDK's
 * `amz-sdk-invocation-id`, which is the same on every retry of one `send`. That header is what
 * lets a rule say "the 2nd PutItem" about calls while the faults themselves land on attempts, where
 * the SDK's own retry logic reacts to them exactly as it would to DynamoDB.
 */

/** The operations the broker uses; any other `X-Amz-Target` suffix is matched by its name too. */
export type DynamoOperation = 'GetItem' | 'PutItem' | 'UpdateItem' | 'DeleteItem' | 'DescribeTable' | 'CreateTable' | (string & {});

/**
 * - `throttle`: a 400 `ProvisionedThroughputExceededException` body, as DynamoDB sends it.
 * - `internal`: a 500 `InternalServerError` body.
 * - `reset`: the connection drops before the request reaches dynalite (nothing applied).
 * - `timeout`: no answer within the client's time: a `TimeoutError`, nothing applied
 *   (in-process only: over a socket this is `delay` against a client with a request timeout).
 * - `delay`: the attempt is held `ms` milliseconds, then forwarded.
 * - `lost-answer`: the attempt is applied by dynalite, then the connection drops before the
 *   answer arrives, so the SDK retries a write that already happened.
 * - `crash-before` / `crash-after`: the process dies right before the attempt reaches dynalite /
 *   right after dynalite applied it (in-process: `ProcessDied`; the proxy calls its `crash` hook).
 */
export type FaultKind = 'throttle' | 'internal' | 'reset' | 'timeout' | 'delay' | 'lost-answer' | 'crash-before' | 'crash-after';

export const FAULT_KINDS: readonly FaultKind[] = ['throttle', 'internal', 'reset', 'timeout', 'delay', 'lost-answer', 'crash-before', 'crash-after'];

export interface Fault {
  readonly kind: FaultKind;
  /**
   * How many attempts of the call get the fault, from its first. Default: every attempt for
   * `throttle`, `internal`, `reset`, `timeout` and `delay`, so the caller sees the error the SDK
   * raises once its retries are spent (1 makes the fault one the SDK's retry hides); 1 for
   * `lost-answer` (the SDK's retry is then the real thing). Crashes happen once.
   */
  readonly attempts?: number;
  /** For `delay`, and the wait before a `timeout` fires. Default 0. */
  readonly ms?: number;
}

/** The JSON body of a DynamoDB request, as far as the rules read it (the same shape as the SDK input). */
export interface DynamoInput {
  readonly TableName?: string;
  readonly Key?: Record<string, Record<string, unknown>>;
  readonly Item?: Record<string, Record<string, unknown>>;
  readonly ConditionExpression?: string;
  readonly UpdateExpression?: string;
  readonly [field: string]: unknown;
}

/** One attempt as the injectors see it on the wire. */
export interface WireAttempt {
  readonly op: DynamoOperation;
  readonly input: DynamoInput;
  /** The SDK's `amz-sdk-invocation-id`: the same on every retry of one `send`. */
  readonly invocation: string | undefined;
  /** Which process sent it: the in-process client's name, or the proxy path's tag. */
  readonly process: string;
}

/** Which calls a fault lands on. A call matches when every given field matches. */
export interface FaultRule {
  readonly op?: DynamoOperation | readonly DynamoOperation[];
  /** The partition key value (`pk`), exactly, or a prefix ending in `*` (`session#*`). */
  readonly key?: string;
  /** A substring of the ConditionExpression or UpdateExpression: a serialisable `where`. */
  readonly expression?: string;
  /** Only calls from this process (the proxy's path tag, or the in-process client's name). */
  readonly process?: string;
  /** Any test on the request; not serialisable, so for in-process schedules. */
  readonly where?: (input: DynamoInput) => boolean;
  /** The first matching call that gets the fault, counting from 1. Default 1. */
  readonly nth?: number;
  /** How many consecutive matching calls from `nth` get it. Default 1; `Infinity` for all. */
  readonly count?: number;
  readonly fault: FaultKind | Fault;
}

/** Per attempt probabilities, for chaos rather than a script. Their sum must not exceed 1. */
export type FaultRates = Partial<Record<FaultKind, number>>;

/** One entry of the call log: one attempt, whether it reached dynalite, and what came of it. */
export interface CallRecord {
  readonly seq: number;
  readonly process: string;
  readonly invocation: string | undefined;
  /** 1 for the SDK's first attempt of a call, 2 for its first retry, ...; 0 for a dead container's call. */
  readonly attempt: number;
  readonly op: DynamoOperation;
  readonly table: string | undefined;
  /** The `pk` of `Key` or `Item`. */
  readonly key: string | undefined;
  readonly condition: string | undefined;
  readonly update: string | undefined;
  readonly fault: FaultKind | undefined;
  /** dynalite saw this attempt (and applied it, if it was a write whose condition held). */
  reached: boolean;
  /**
   * `ok`, `condition-failed`, another error's short name (`ValidationException`), or `none`
   * when dynalite never answered this attempt.
   */
  outcome: string;
  /** The answer reached the SDK (false for injected and lost answers). */
  delivered: boolean;
}

export const PARTITION_KEY_ATTRIBUTE = 'pk';

/** The operation from `X-Amz-Target: DynamoDB_20120810.PutItem`. */
export function operationOf(target: string | undefined): DynamoOperation {
  if (!target) return 'unknown';
  const dot = target.lastIndexOf('.');
  return dot === -1 ? target : target.slice(dot + 1);
}

export function keyOf(input: DynamoInput): string | undefined {
  const value = (input.Key ?? input.Item)?.[PARTITION_KEY_ATTRIBUTE]?.['S'];
  return typeof value === 'string' ? value : undefined;
}

export function parseInput(body: string | undefined): DynamoInput {
  if (!body) return {};
  try {
    const json: unknown = JSON.parse(body);
    return typeof json === 'object' && json !== null ? (json as DynamoInput) : {};
  } catch {
    return {};
  }
}

/** What a DynamoDB answer body says: `ok` for 2xx, else the short `__type`. */
export function outcomeOf(status: number, body: string): string {
  if (status >= 200 && status < 300) return 'ok';
  let type = '';
  try {
    type = String((JSON.parse(body) as { __type?: unknown }).__type ?? '');
  } catch {
    // not JSON: keep the status
  }
  const name = type.slice(type.lastIndexOf('#') + 1);
  if (name === 'ConditionalCheckFailedException') return 'condition-failed';
  return name || `http-${status}`;
}

/**
 * DynamoDB's error answers, byte for byte in shape: `__type` carries the service namespace, and the
 * SDK turns it into the modelled exception class (with `$fault`, `$metadata.httpStatusCode`).
 */
export const DYNAMO_ERRORS = {
  throttle: {
    status: 400,
    body: JSON.stringify({
      __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
      message: 'The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.',
    }),
  },
  internal: {
    status: 500,
    body: JSON.stringify({ __type: 'com.amazonaws.dynamodb.v20120810#InternalServerError', message: 'Internal server error' }),
  },
} as const;

export const DYNAMO_CONTENT_TYPE = 'application/x-amz-json-1.0';

interface CallState {
  readonly fault: Fault | undefined;
  attempts: number;
}

/**
 * The schedule: scripted rules first (in the order they were added), then per attempt rates.
 * Each rule counts the calls that match it, whether or not another rule fired on them, so
 * "the 2nd UpdateItem" means the 2nd UpdateItem whatever else is scripted. The SDK's retries of a
 * call are not new calls: the fault chosen at a call's first attempt governs its retries.
 */
export class FaultPlan {
  readonly #rules: { rule: FaultRule; fault: Fault; seen: number }[] = [];
  readonly #calls = new Map<string, CallState>();
  #rates: [FaultKind, number][] = [];
  #random: () => number = Math.random;
  readonly #supported: ReadonlySet<FaultKind>;

  constructor(supported: readonly FaultKind[]) {
    this.#supported = new Set(supported);
  }

  /** Adds scripted rules; a kind this injector cannot produce is a programming error. */
  add(...rules: FaultRule[]): void {
    for (const rule of rules) {
      const fault = normalise(rule.fault);
      this.#check(fault.kind);
      if (rule.nth !== undefined && !(Number.isInteger(rule.nth) && rule.nth >= 1)) throw new TypeError('"nth" must be an integer from 1');
      if (rule.count !== undefined && !(rule.count >= 1)) throw new TypeError('"count" must be at least 1');
      this.#rules.push({ rule, fault, seen: 0 });
    }
  }

  /** Per attempt probabilities; `seed` makes the sequence repeatable. Replaces earlier rates. */
  setRates(rates: FaultRates, seed?: number): void {
    const entries = Object.entries(rates).filter(([, p]) => p !== undefined && p > 0) as [FaultKind, number][];
    for (const [kind] of entries) this.#check(kind);
    const sum = entries.reduce((s, [, p]) => s + p, 0);
    if (sum > 1) throw new TypeError(`fault rates add up to ${sum}, more than 1`);
    this.#rates = entries;
    if (seed !== undefined) this.#random = seeded(seed);
  }

  /** Drops rules, rates and the memory of calls in flight (their retries then go through). */
  clear(): void {
    this.#rules.length = 0;
    this.#rates = [];
    this.#calls.clear();
  }

  /** Rules that have not met all their calls yet (`count: Infinity` never has): a test can assert its script was used. */
  pending(): FaultRule[] {
    return this.#rules.filter((r) => r.seen < (r.rule.nth ?? 1) + (r.rule.count ?? 1) - 1).map((r) => r.rule);
  }

  /**
   * The fault for this attempt, or undefined to forward it; `attempt` is its number in its call.
   * With `passThrough` the attempt is numbered but no rule counts it and no fault is drawn.
   */
  decide(wire: WireAttempt, passThrough = false): { fault: Fault | undefined; attempt: number } {
    let state = wire.invocation === undefined ? undefined : this.#calls.get(wire.invocation);
    if (!state) {
      state = { fault: passThrough ? undefined : this.#script(wire), attempts: 0 };
      if (wire.invocation !== undefined) this.#calls.set(wire.invocation, state);
    }
    state.attempts += 1;
    const attempt = state.attempts;
    const scripted = state.fault;
    if (scripted && attempt <= attemptsOf(scripted)) return { fault: scripted, attempt };
    if (scripted || passThrough) return { fault: undefined, attempt };
    return { fault: this.#roll(), attempt };
  }

  #script(wire: WireAttempt): Fault | undefined {
    let chosen: Fault | undefined;
    for (const entry of this.#rules) {
      if (!matches(entry.rule, wire)) continue;
      entry.seen += 1;
      const first = entry.rule.nth ?? 1;
      const last = first + (entry.rule.count ?? 1) - 1;
      if (!chosen && entry.seen >= first && entry.seen <= last) chosen = entry.fault;
    }
    return chosen;
  }

  #roll(): Fault | undefined {
    if (this.#rates.length === 0) return undefined;
    let r = this.#random();
    for (const [kind, p] of this.#rates) {
      if (r < p) return { kind, attempts: 1, ...(kind === 'delay' || kind === 'timeout' ? { ms: 0 } : {}) };
      r -= p;
    }
    return undefined;
  }

  #check(kind: FaultKind): void {
    if (!FAULT_KINDS.includes(kind)) throw new TypeError(`unknown fault kind "${kind}"`);
    if (!this.#supported.has(kind)) throw new TypeError(`this injector cannot produce "${kind}" faults (it can: ${[...this.#supported].join(', ')})`);
  }
}

function normalise(fault: FaultKind | Fault): Fault {
  return typeof fault === 'string' ? { kind: fault } : fault;
}

/** How many attempts of a call a fault lands on. */
export function attemptsOf(fault: Fault): number {
  if (fault.kind === 'crash-before' || fault.kind === 'crash-after') return 1;
  return fault.attempts ?? (fault.kind === 'lost-answer' ? 1 : Infinity);
}

function matches(rule: FaultRule, wire: WireAttempt): boolean {
  if (rule.op !== undefined) {
    const ops: readonly string[] = typeof rule.op === 'string' ? [rule.op] : rule.op;
    if (!ops.includes(wire.op)) return false;
  }
  if (rule.process !== undefined && rule.process !== wire.process) return false;
  if (rule.key !== undefined) {
    const key = keyOf(wire.input);
    if (key === undefined) return false;
    if (rule.key.endsWith('*') ? !key.startsWith(rule.key.slice(0, -1)) : key !== rule.key) return false;
  }
  if (rule.expression !== undefined) {
    const text = `${wire.input.ConditionExpression ?? ''}\n${wire.input.UpdateExpression ?? ''}`;
    if (!text.includes(rule.expression)) return false;
  }
  if (rule.where && !rule.where(wire.input)) return false;
  return true;
}

/** mulberry32: a small seeded generator, so a chaos run can be repeated from its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Counts of injected faults, by kind and by operation then kind. */
export interface FaultCounts {
  /** Attempts seen. */
  attempts: number;
  /** Attempts that reached dynalite. */
  forwarded: number;
  byKind: Partial<Record<FaultKind, number>>;
  byOperation: Record<string, Partial<Record<FaultKind, number>>>;
}

export function emptyCounts(): FaultCounts {
  return { attempts: 0, forwarded: 0, byKind: {}, byOperation: {} };
}

export function countFault(counts: FaultCounts, op: string, kind: FaultKind): void {
  counts.byKind[kind] = (counts.byKind[kind] ?? 0) + 1;
  const perOp = (counts.byOperation[op] ??= {});
  perOp[kind] = (perOp[kind] ?? 0) + 1;
}

/** A log entry for an attempt before it is known how it ends. */
export function startRecord(seq: number, wire: WireAttempt, attempt: number, fault: Fault | undefined): CallRecord {
  return {
    seq,
    process: wire.process,
    invocation: wire.invocation,
    attempt,
    op: wire.op,
    table: wire.input.TableName,
    key: keyOf(wire.input),
    condition: wire.input.ConditionExpression,
    update: wire.input.UpdateExpression,
    fault: fault?.kind,
    reached: false,
    outcome: 'none',
    delivered: false,
  };
}
