/**
 * The proxy's one call to an API: exact bytes both ways, a cap on the answer counted while it is
 * read, one timer over the whole exchange, and one mapping of failures: unreachable or broken off
 * is `ApiUnavailableError` (502), too large an answer too, no whole answer in time is
 * `ApiTimeoutError` (504). The API's own statuses, 4xx and 5xx included, are answers, not errors.
 *
 * node:http rather than fetch: nothing is added to the request but what the proxy means to send
 * (fetch adds `accept-language`, `sec-fetch-mode`, `user-agent`, ...), and nothing is decoded on
 * the way back behind the proxy's back. Connections are kept alive per container.
 */
import http from 'node:http';
import https from 'node:https';
import { Transform, type Readable } from 'node:stream';
import { ApiTimeoutError, ApiUnavailableError } from '../errors.js';

export interface ApiRequest {
  readonly url: URL;
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  /** Sent when non-empty (never for GET or HEAD). */
  readonly body: Uint8Array;
  /** The whole exchange, from connecting to the answer's last byte. */
  readonly timeoutMs: number;
  /** The largest answer body taken (decoded); more is `502`. */
  readonly maxBodyBytes: number;
}

export interface ApiAnswer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: Buffer;
}

/**
 * Kept-alive connections per container. An idle one is closed after `timeout`, before APIs and
 * load balancers usually close theirs (often 5 s or more), and a request that finds its reused
 * connection reset anyway (a container thawed after a long freeze) is sent once more on a new one.
 */
const AGENT_OPTIONS = { keepAlive: true, maxSockets: 64, timeout: 4_000 };
const agents = {
  'http:': new http.Agent(AGENT_OPTIONS),
  'https:': new https.Agent(AGENT_OPTIONS),
};

/** Methods whose request may be sent twice with the effect of once (RFC 9110 §9.2.2). */
const IDEMPOTENT = new Set(['GET', 'HEAD', 'PUT', 'DELETE']);

/** Content codings the proxy can undo if an API uses one although asked for `identity`. */
const DECODERS: Readonly<Record<string, () => Transform>> = {
  gzip: () => zlib().createGunzip(),
  'x-gzip': () => zlib().createGunzip(),
  deflate: () => zlib().createInflate(),
  br: () => zlib().createBrotliDecompress(),
};

/**
 * node:zlib, loaded on the first compressed answer: APIs are asked for `identity`, and loading it
 * at import was about 2 ms of the proxy's cold start.
 */
let zlibModule: typeof import('node:zlib') | undefined;
// process.getBuiltinModule (Node.js 20.16, 22.3): importing node:module for createRequire loaded
// Node's module and source-map internals at every cold start, about 0.4 ms.
const zlib = () => (zlibModule ??= process.getBuiltinModule('node:zlib'));

export async function callApi(req: ApiRequest): Promise<ApiAnswer> {
  const deadline = Date.now() + req.timeoutMs;
  try {
    return await exchange(req, req.timeoutMs);
  } catch (err) {
    // A kept-alive connection the API (or the network) had closed: nothing reached the API.
    if (!(err instanceof StaleConnection) || !IDEMPOTENT.has(req.method) || deadline - Date.now() < 100) {
      throw err instanceof StaleConnection ? err.error : err;
    }
    try {
      return await exchange(req, deadline - Date.now());
    } catch (again) {
      throw again instanceof StaleConnection ? again.error : again;
    }
  }
}

/** A reused connection reset before any answer: may be tried again on a new one. */
class StaleConnection extends Error {
  constructor(readonly error: ApiUnavailableError) {
    super(error.message);
  }
}

function exchange(req: ApiRequest, timeoutMs: number): Promise<ApiAnswer> {
  const client = req.url.protocol === 'https:' ? https : http;
  const agent = req.url.protocol === 'https:' ? agents['https:'] : agents['http:'];
  const send = req.body.length > 0 && req.method !== 'GET' && req.method !== 'HEAD';
  return new Promise<ApiAnswer>((resolve, reject) => {
    let settled = false;
    let answered = false;
    let request: http.ClientRequest | undefined;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      request?.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new ApiTimeoutError('the API did not answer in time')), timeoutMs);
    // Node refuses a header value it could not send (a line break, a character past Latin-1) by
    // throwing here: an answer like any failure, never a throw out of this promise's executor.
    try {
      request = client.request(req.url, {
        method: req.method,
        agent,
        headers: { ...req.headers, 'accept-encoding': 'identity', ...(send ? { 'content-length': String(req.body.length) } : {}) },
      }, onAnswer);
    } catch (cause) {
      fail(new ApiUnavailableError('the request to the API could not be made', { cause }));
      return;
    }
    const sent = request;
    function onAnswer(res: http.IncomingMessage): void {
      answered = true;
      const status = res.statusCode ?? 0;
      if (status < 200 || status > 599) {
        res.resume();
        return fail(new ApiUnavailableError(`the API answered a status the proxy cannot pass on (${status})`));
      }
      // RFC 9110 §6.4.1, §8.6: these answers have no content, whatever their headers say of it.
      const bodiless = req.method === 'HEAD' || status === 204 || status === 304;
      const declared = Number(res.headers['content-length'] ?? NaN);
      const coding = bodiless ? 'identity' : (res.headers['content-encoding'] ?? 'identity').trim().toLowerCase();
      if (coding !== 'identity' && !Object.hasOwn(DECODERS, coding)) {
        res.resume();
        return fail(new ApiUnavailableError(`the API answered in a content coding the proxy cannot pass on (${coding.slice(0, 20)})`));
      }
      if (!bodiless && coding === 'identity' && declared > req.maxBodyBytes) {
        res.resume();
        return fail(new ApiUnavailableError('the API\'s answer is larger than the proxy carries'));
      }
      const stream: Readable = coding === 'identity' ? res : res.pipe(DECODERS[coding]!());
      const chunks: Buffer[] = [];
      let size = 0;
      stream.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > req.maxBodyBytes) return fail(new ApiUnavailableError('the API\'s answer is larger than the proxy carries'));
        chunks.push(chunk);
      });
      const broken = (cause?: unknown) => fail(new ApiUnavailableError('the API broke off its answer', { cause }));
      stream.on('error', broken);
      if (stream !== res) res.on('error', broken);
      res.on('aborted', () => broken());
      stream.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const headers = { ...res.headers };
        // Undone here: the bytes passed on are the decoded ones.
        delete headers['content-encoding'];
        resolve({ status, headers, body: Buffer.concat(chunks) });
      });
    }
    // A `101 Switching Protocols` (no upgrade was asked for): nothing the proxy can pass on.
    sent.on('upgrade', (_res, socket) => {
      socket.destroy();
      fail(new ApiUnavailableError('the API switched protocols'));
    });
    sent.on('error', (cause) => {
      const unreachable = new ApiUnavailableError('the API could not be reached', { cause });
      const reset = (cause as { code?: string }).code === 'ECONNRESET' && sent.reusedSocket && !answered;
      fail(reset ? new StaleConnection(unreachable) : unreachable);
    });
    sent.end(send ? req.body : undefined);
  });
}
