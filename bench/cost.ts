/**
 * The cost model of docs/design.md ("What a million requests cost"), computed from what the bench
 * measured: item sizes (write units), the broker's CPU per request (Lambda duration at a memory
 * size), DynamoDB and provider calls, log bytes. Prices are AWS's public us-east-1 list prices as
 * the author knew them (see `PRICES.asOf`): check the pricing pages before relying on them.
 */
import { readUnits, writeUnits } from './items.js';

export const PRICES = {
  asOf: 'AWS us-east-1 list prices as published in 2025 (DynamoDB on-demand after the November 2024 reduction; Lambda INIT billed since August 2025)',
  /** Lambda, arm64, per GB-second (first tier) and per request. */
  lambdaGbSecond: 0.0000133334,
  lambdaRequest: 0.2 / 1e6,
  /** API Gateway HTTP API, per request (first 300 million a month; requests up to 512 KB). */
  apiRequest: 1.0 / 1e6,
  /** DynamoDB on-demand, per write request unit (1 KB) and read request unit (4 KB strongly consistent). */
  dynamoWrite: 0.625 / 1e6,
  dynamoRead: 0.125 / 1e6,
  /** CloudWatch Logs ingestion (standard class), per byte. */
  logByte: 0.5 / 2 ** 30,
  /** X-Ray, per trace recorded (beyond the free 100,000 a month). */
  xrayTrace: 5.0 / 1e6,
  /** Secrets Manager, per API call; KMS, per request (a GetSecretValue decrypts with KMS). */
  secretsCall: 0.05 / 10_000,
  kmsRequest: 0.03 / 10_000,
} as const;

/** What the model assumes and does not measure. */
export const ASSUMPTIONS = {
  /** Memory at which Lambda gives a function one full vCPU; below it, CPU is proportional to memory. */
  fullCpuMb: 1769,
  /** A conditional single-item write or a consistent read in the same region, p50 (the bench's dynalite is no guide). */
  dynamoMs: 5,
  /** The provider's token endpoint over the internet, p50: it depends on the provider; this is a middling one. */
  providerMs: 60,
  /** (v2) The app's API answering a proxied call, p50: it depends on the API; one near the broker. */
  apiMs: 30,
  /** Lambda's own lines per invocation (START, END, REPORT with the X-Ray segment). */
  platformLogBytes: 420,
  /** Active tracing's default sampling at volume: 5% of requests (plus one a second). */
  xraySampled: 0.05,
  /**
   * Secrets Manager calls and KMS decrypts per container-hour, 3 secrets: at init one
   * BatchGetSecretValue for all three (functions/handler.ts), then each read again every 15
   * minutes with GetSecretValue (3 × 3); every secret value read is a KMS decrypt (4 × 3).
   */
  secretCallsPerContainerHour: 10,
  kmsDecryptsPerContainerHour: 12,
  /** Containers per 10 requests/s. */
  requestsPerSecondPerContainer: 10,
} as const;

export interface Operation {
  readonly name: string;
  /** Lambda invocations (= API Gateway requests). */
  readonly invocations: number;
  /** The broker's CPU for the whole operation, on this machine, milliseconds. */
  readonly cpuMs: number;
  readonly dynamoCalls: number;
  readonly providerCalls: number;
  /** (v2) Calls to the app's API (the proxy's). */
  readonly apiCalls?: number;
  /** Write units of each write (from item sizes: the larger of before and after). */
  readonly writeUnits: number;
  readonly readUnits: number;
  readonly logBytes: number;
}

/** Lambda's billed duration of an operation at `memoryMb`: CPU stretched by the CPU share, plus the waits, rounded up per invocation. */
export function durationMs(op: Operation, memoryMb: number): number {
  const cpu = op.cpuMs * Math.max(1, ASSUMPTIONS.fullCpuMb / memoryMb);
  const waits = op.dynamoCalls * ASSUMPTIONS.dynamoMs + op.providerCalls * ASSUMPTIONS.providerMs + (op.apiCalls ?? 0) * ASSUMPTIONS.apiMs;
  // Each invocation's duration is rounded up to the millisecond: half a millisecond on average.
  return cpu + waits + op.invocations * 0.5;
}

export interface CostLine {
  readonly operation: string;
  readonly 'Lambda requests': number;
  readonly 'Lambda GB-s': number;
  readonly 'API Gateway': number;
  readonly 'DynamoDB': number;
  readonly 'logs': number;
  readonly 'X-Ray': number;
  readonly 'secrets + KMS': number;
  readonly 'total $ per million': number;
}

const money = (x: number) => Number(x.toFixed(3));

/** Dollars per million operations at `memoryMb`. */
export function costPerMillion(op: Operation, memoryMb: number): CostLine {
  const m = 1e6;
  const gbSeconds = (memoryMb / 1024) * (durationMs(op, memoryMb) / 1000);
  const containerHours = m / (ASSUMPTIONS.requestsPerSecondPerContainer * 3600);
  const lines = {
    'Lambda requests': m * op.invocations * PRICES.lambdaRequest,
    'Lambda GB-s': m * gbSeconds * PRICES.lambdaGbSecond,
    'API Gateway': m * op.invocations * PRICES.apiRequest,
    DynamoDB: m * (op.writeUnits * PRICES.dynamoWrite + op.readUnits * PRICES.dynamoRead),
    logs: m * (op.logBytes + op.invocations * ASSUMPTIONS.platformLogBytes) * PRICES.logByte,
    'X-Ray': m * op.invocations * ASSUMPTIONS.xraySampled * PRICES.xrayTrace,
    'secrets + KMS': containerHours * (ASSUMPTIONS.secretCallsPerContainerHour * PRICES.secretsCall + ASSUMPTIONS.kmsDecryptsPerContainerHour * PRICES.kmsRequest),
  };
  const total = Object.values(lines).reduce((a, b) => a + b, 0);
  return { operation: op.name, ...Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, money(v)])), 'total $ per million': money(total) } as CostLine;
}

/** The operations of the model from the bench's measurements. */
export function operations(m: {
  items: Record<string, number>;
  cpu: { stored: number; upstream: number; redemption: number; login: number; proxied: number };
  logBytes: { stored: number; upstream: number; redemption: number; login: number; proxied: number };
}): Operation[] {
  const i = m.items;
  const login = i['login in progress']!;
  const session0 = i['session, native with openid, before redemption']!;
  const session1 = i['session, native with openid, after redemption']!;
  // A session refreshes for days: its writes are on the item as it is from its first upstream refresh on.
  const steady = Math.max(i['steady session (no code fields), after a stored refresh']!, i['steady session (no code fields), after an upstream refresh']!);
  // A login: PutItem (login), UpdateItem (take it: the item grows by usedBy), PutItem (session).
  const loginWrites = writeUnits(login) + writeUnits(login + 40) + writeUnits(session0);
  return [
    { name: 'web login (/login, /callback)', invocations: 2, cpuMs: m.cpu.login, dynamoCalls: 3, providerCalls: 1, writeUnits: loginWrites, readUnits: 0, logBytes: m.logBytes.login },
    {
      name: 'native login (+ code exchange)', invocations: 3, cpuMs: m.cpu.login + m.cpu.redemption, dynamoCalls: 4, providerCalls: 1,
      writeUnits: loginWrites + writeUnits(Math.max(session0, session1)), readUnits: 0, logBytes: m.logBytes.login + m.logBytes.redemption,
    },
    { name: 'stored refresh', invocations: 1, cpuMs: m.cpu.stored, dynamoCalls: 1, providerCalls: 0, writeUnits: writeUnits(steady), readUnits: 0, logBytes: m.logBytes.stored },
    { name: 'upstream refresh', invocations: 1, cpuMs: m.cpu.upstream, dynamoCalls: 2, providerCalls: 1, writeUnits: 2 * writeUnits(steady), readUnits: 0, logBytes: m.logBytes.upstream },
    // (v2) A proxied call with a fresh token: one strongly consistent GetItem (the idle expiry's
    // UpdateItem at most every 300 s per session is left out), the API's answer waited for.
    {
      name: 'proxied API call', invocations: 1, cpuMs: m.cpu.proxied, dynamoCalls: 1, providerCalls: 0, apiCalls: 1,
      writeUnits: 0, readUnits: readUnits(i['session, web (proxy mode)']!), logBytes: m.logBytes.proxied,
    },
  ];
}

/** Billed duration and dollars per million of each operation at each memory size. */
export function memoryRows(ops: readonly Operation[], sizes: readonly number[] = [128, 256, 512, 1024, 1769]): Record<string, string | number>[] {
  return sizes.map((mb) => {
    const row: Record<string, string | number> = { 'memory MB': mb };
    for (const op of ops) {
      row[`${op.name}: ms`] = Number(durationMs(op, mb).toFixed(1));
      row[`${op.name}: $/M`] = costPerMillion(op, mb)['total $ per million'];
    }
    return row;
  });
}
