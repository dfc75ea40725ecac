/**
 * A small client for AWS's JSON protocols (awsJson1_0: DynamoDB; awsJson1_1: Secrets Manager):
 * one signed POST per attempt over a keep-alive connection, the SDK's retry decisions (throttling
 * and transient failures, with full-jitter backoff), a connection timeout and a timeout on the
 * whole attempt. It replaces the AWS SDK in the Lambda bundles: for the broker's few single-item
 * calls the SDK's middleware stack, serializers and credential chain cost more CPU per call and
 * far more at cold start than the calls themselves (docs/design.md, "What a request costs").
 *
 * Errors look like the SDK's, so callers classify them the same way: a service error has the
 * service's error type as `name` (`ConditionalCheckFailedException`), `$fault` and
 * `$metadata.httpStatusCode`; a network failure keeps node's `code` (`ECONNRESET`); a timeout is
 * a `TimeoutError` (`ETIMEDOUT`). Each carries `$metadata.attempts`.
 *
 * `intercept` sees every attempt, signed, and may answer it itself or pass it on: tests inject
 * faults there, where the SDK's middleware would see them (test/support/dynamo-faults.ts).
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { signRequest, type AwsCredentials } from './sigv4.js';

export type { AwsCredentials } from './sigv4.js';

/** One attempt as sent: the operation, the signed headers, the JSON body; the call's `deadline` (epoch ms) ends it. */
export interface WireRequest {
  readonly operation: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  readonly deadline?: number | undefined;
}

export interface WireResponse {
  readonly statusCode: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

export type Transport = (request: WireRequest) => Promise<WireResponse>;

export interface AwsJsonClientOptions {
  /** `https://dynamodb.us-east-1.amazonaws.com`, or a local endpoint. */
  readonly endpoint: string;
  readonly region: string;
  /** The signing name (`dynamodb`, `secretsmanager`). */
  readonly service: string;
  /** The `X-Amz-Target` prefix (`DynamoDB_20120810`, `secretsmanager`). */
  readonly targetPrefix: string;
  readonly jsonVersion: '1.0' | '1.1';
  readonly credentials: AwsCredentials;
  /** Attempts per call, the first included. Default 3. */
  readonly maxAttempts?: number;
  /** Milliseconds to wait before retry `retry` (0 for the first retry). Default: the SDK's full jitter, 50 ms base (1 s when throttled). */
  readonly backoff?: (retry: number, throttled: boolean) => number;
  /** Default 1 s. */
  readonly connectionTimeoutMs?: number;
  /** The whole attempt, answer read. Default 3 s. */
  readonly requestTimeoutMs?: number;
  /** Sees every attempt (tests inject faults here); `send` passes it on. */
  readonly intercept?: (request: WireRequest, send: Transport) => Promise<WireResponse>;
}

export interface CallOptions {
  /**
   * When the whole call must be over, retries included (epoch milliseconds): the attempt in
   * flight is cut then (a write it carried may still apply), no attempt starts within 5 ms of it
   * (a retry whose backoff would end there is not waited for), and the call rejects with a
   * `TimeoutError`. A plain time, where the SDK's `abortSignal` with a timeout signal would cost a
   * cold start about a millisecond of first-run code (`AbortSignal` and its event target).
   */
  readonly deadline?: number | undefined;
}

export interface AwsJsonClient {
  /** One operation: the input as the service's JSON, the output as it answers. */
  call<T = Record<string, unknown>>(operation: string, input: object, options?: CallOptions): Promise<T>;
}

/** An error answer of the service, named by its error type. */
export class AwsServiceError extends Error {
  readonly $fault: 'client' | 'server';
  readonly $metadata: { readonly httpStatusCode: number; readonly requestId: string | undefined; readonly attempts: number };
  constructor(name: string, message: string, status: number, requestId: string | undefined, attempts: number) {
    super(message);
    this.name = name;
    this.$fault = status >= 500 ? 'server' : 'client';
    this.$metadata = { httpStatusCode: status, requestId, attempts };
  }
}

/** The SDK's classes of retryable errors (@smithy/service-error-classification). */
const THROTTLING = new Set([
  'BandwidthLimitExceeded', 'EC2ThrottledException', 'LimitExceededException', 'PriorRequestNotComplete', 'ProvisionedThroughputExceededException',
  'RequestLimitExceeded', 'RequestThrottled', 'RequestThrottledException', 'SlowDown', 'ThrottledException', 'Throttling', 'ThrottlingException',
  'TooManyRequestsException', 'TransactionInProgressException',
]);
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException']);
const TRANSIENT_STATUS = new Set([500, 502, 503, 504]);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'ENOTFOUND', 'EAI_AGAIN']);

type Retry = 'throttling' | 'transient' | undefined;

function classify(err: unknown): Retry {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } };
  const status = e.$metadata?.httpStatusCode ?? 0;
  if (THROTTLING.has(e.name ?? '') || status === 429) return 'throttling';
  if (TRANSIENT_NAMES.has(e.name ?? '') || NETWORK_CODES.has(e.code ?? '') || TRANSIENT_STATUS.has(status) || status >= 500) return 'transient';
  return undefined;
}

/** The SDK's standard backoff: full jitter, doubling from `base` ms, at most 20 s. */
export const fullJitter = (base: number, throttledBase = 1_000) => (retry: number, throttled: boolean): number =>
  Math.floor(Math.random() * Math.min(20_000, (throttled ? throttledBase : base) * 2 ** retry));

/** The least time left before a call's deadline for an attempt to start (`CallOptions.deadline`). */
const MIN_ATTEMPT_MS = 5;

export function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export function createAwsJsonClient(options: AwsJsonClientOptions): AwsJsonClient {
  const url = new URL(options.endpoint);
  // An endpoint's path is kept, as the SDK keeps it ("/" for AWS's own endpoints).
  const path = url.pathname.endsWith('/') ? url.pathname : `${url.pathname}/`;
  const secure = url.protocol === 'https:';
  const lib = secure ? https : http;
  // Connections are kept and reused: a TLS handshake per call would cost more than the call.
  const agent = new lib.Agent({ keepAlive: true, maxSockets: 50 });
  const contentType = `application/x-amz-json-${options.jsonVersion}`;
  const scope = { region: options.region, service: options.service };
  const maxAttempts = options.maxAttempts ?? 3;
  const backoff = options.backoff ?? fullJitter(50);
  const connectionTimeoutMs = options.connectionTimeoutMs ?? 1_000;
  const requestTimeoutMs = options.requestTimeoutMs ?? 3_000;

  const transport: Transport = (request) => new Promise<WireResponse>((resolve, reject) => {
    let settled = false;
    let whole: NodeJS.Timeout | undefined;
    let connect: NodeJS.Timeout | undefined;
    const req = lib.request({
      protocol: url.protocol, hostname: url.hostname, port: url.port || undefined, path, method: 'POST', agent,
      headers: { ...request.headers, 'content-length': Buffer.byteLength(request.body) },
    });
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(whole);
      clearTimeout(connect);
      req.destroy();
      reject(err);
    };
    const timeoutMs = request.deadline === undefined ? requestTimeoutMs : Math.max(0, Math.min(requestTimeoutMs, request.deadline - Date.now()));
    whole = setTimeout(() => fail(timeoutError(`no answer within ${timeoutMs} ms`)), timeoutMs);
    req.on('socket', (socket) => {
      if (!socket.connecting) return;
      connect = setTimeout(() => fail(timeoutError(`no connection within ${connectionTimeoutMs} ms`)), connectionTimeoutMs);
      socket.once(secure ? 'secureConnect' : 'connect', () => clearTimeout(connect));
    });
    req.setNoDelay(true);
    req.on('error', fail);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(whole);
        resolve({ statusCode: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('close', () => {
        if (!res.complete) fail(Object.assign(new Error('the connection closed before the answer was complete'), { code: 'ECONNRESET' }));
      });
    });
    req.end(request.body);
  });
  const send = options.intercept ? (request: WireRequest) => options.intercept!(request, transport) : transport;

  return {
    async call<T>(operation: string, input: object, callOptions?: CallOptions): Promise<T> {
      const body = JSON.stringify(input);
      const invocation = randomUUID();
      const deadline = callOptions?.deadline;
      // An attempt with less than this left could not be answered anyway (and a timer may wake a
      // millisecond before the clock reads its time).
      const pastDeadline = (after = 0) => deadline !== undefined && Date.now() + after > deadline - MIN_ATTEMPT_MS;
      for (let attempt = 1; ; attempt++) {
        if (pastDeadline()) throw Object.assign(timeoutError('the call\'s deadline has passed'), { $metadata: { attempts: attempt - 1 } });
        const headers: Record<string, string> = {
          'content-type': contentType,
          'x-amz-target': `${options.targetPrefix}.${operation}`,
          // As the SDK sends them: one id for every attempt of a call, and which attempt this is.
          'amz-sdk-invocation-id': invocation,
          'amz-sdk-request': `attempt=${attempt}; max=${maxAttempts}`,
        };
        Object.assign(headers, signRequest({ method: 'POST', host: url.host, path, headers, body }, scope, options.credentials));
        let failure: Error & { $metadata?: { attempts?: number } };
        try {
          const res = await send({ operation, headers, body, deadline });
          if (res.statusCode >= 200 && res.statusCode < 300) return (res.body ? JSON.parse(res.body) : {}) as T;
          failure = serviceError(res, attempt);
        } catch (err) {
          failure = err instanceof Error ? err : new Error(String(err));
        }
        const retry = pastDeadline() ? undefined : classify(failure);
        if (!retry || attempt >= maxAttempts) {
          if (!(failure instanceof AwsServiceError)) Object.assign(failure, { $metadata: { ...failure.$metadata, attempts: attempt } });
          throw failure;
        }
        const wait = backoff(attempt - 1, retry === 'throttling');
        // A retry that could only start at or past the deadline is not made: the caller hears at once.
        if (pastDeadline(wait)) {
          throw Object.assign(timeoutError(`no retry fits before the call's deadline (${failure.name})`), { cause: failure, $metadata: { attempts: attempt } });
        }
        await sleep(wait);
      }
    },
  };
}

function serviceError(res: WireResponse, attempts: number): AwsServiceError {
  let type = String(res.headers['x-amzn-errortype'] ?? '');
  let message = '';
  let fields: Record<string, unknown> = {};
  try {
    const json = JSON.parse(res.body) as { __type?: string; message?: string; Message?: string };
    const { __type, message: m, Message, ...rest } = json;
    type = __type ?? type;
    message = m ?? Message ?? '';
    fields = rest;
  } catch {
    // not JSON: named by its status below
  }
  // "com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "...:http://internal..."
  const name = type.split('#').pop()!.split(':')[0] || (res.statusCode >= 500 ? 'InternalServerError' : 'UnknownError');
  const requestId = res.headers['x-amzn-requestid'];
  const err = new AwsServiceError(name, message || name, res.statusCode, typeof requestId === 'string' ? requestId : undefined, attempts);
  // The error's other members, as the SDK exposes them (a failed condition's `Item`, with
  // ReturnValuesOnConditionCheckFailure; `CancellationReasons`); never over the error's own.
  for (const [k, v] of Object.entries(fields)) if (!(k in err)) (err as unknown as Record<string, unknown>)[k] = v;
  return err;
}

/** Credentials from the environment, as Lambda provides a function's role: fails closed when they are missing. */
export function credentialsFromEnv(env: NodeJS.ProcessEnv = process.env): AwsCredentials {
  const accessKeyId = env['AWS_ACCESS_KEY_ID'];
  const secretAccessKey = env['AWS_SECRET_ACCESS_KEY'];
  if (!accessKeyId || !secretAccessKey) throw new TypeError('AWS credentials must be in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN), as Lambda provides them');
  return { accessKeyId, secretAccessKey, sessionToken: env['AWS_SESSION_TOKEN'] || undefined };
}

/** The region from the environment (`AWS_REGION`, set by Lambda). */
export function regionFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  const region = env['AWS_REGION'] ?? env['AWS_DEFAULT_REGION'];
  if (!region) throw new TypeError('AWS_REGION must be set');
  return region;
}

/**
 * A service's endpoint: `AWS_ENDPOINT_URL_<SERVICE>` or `AWS_ENDPOINT_URL` when set (as the SDK
 * reads them), else its regional endpoint (`amazonaws.com.cn` in the China regions). FIPS and
 * dual-stack endpoints (`AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`, which the SDK
 * honours) are not derived here: asked for without an explicit endpoint, they fail closed rather
 * than silently reach the standard one.
 */
export function endpointFor(prefix: string, envName: string, region: string, env: NodeJS.ProcessEnv = process.env): string {
  const configured = env[`AWS_ENDPOINT_URL_${envName}`] ?? env['AWS_ENDPOINT_URL'];
  if (configured) return configured;
  for (const flag of ['AWS_USE_FIPS_ENDPOINT', 'AWS_USE_DUALSTACK_ENDPOINT']) {
    if (env[flag]?.toLowerCase() === 'true') throw new TypeError(`${flag} is set: give the endpoint explicitly (AWS_ENDPOINT_URL_${envName})`);
  }
  return `https://${prefix}.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}
