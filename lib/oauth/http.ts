/**
 * Requests to a provider: a timeout on every call, a cap on the body read, and one mapping of
 * failures: unreachable, timed out or 5xx is `UpstreamUnavailableError` (503); a malformed or
 * oversized answer is `UpstreamMalformedError` (502); an OAuth error body is `UpstreamOAuthError`.
 *
 * Requests go through node:http(s) with a keep-alive agent per scheme: for one small form POST
 * and its JSON answer, `fetch` (undici, WHATWG streams) cost about twice the CPU (docs/design.md,
 * "What a request costs"). Redirects are never followed. A `fetch` in the options replaces it
 * (tests inject provider faults that way); both paths cap, time and map failures the same.
 */
import http from 'node:http';
import https from 'node:https';
import { UpstreamMalformedError, UpstreamOAuthError, UpstreamRejectedError, UpstreamUnavailableError } from '../errors.js';

export interface HttpOptions {
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
  /** Sends requests with this `fetch` instead of node:http (tests inject faults so). */
  readonly fetch?: typeof fetch;
  /** Told of every finished request: `ok` is false when unreachable, timed out, 5xx or oversized. */
  readonly observe?: (result: { host: string; ms: number; ok: boolean; status?: number }) => void;
}

export const DEFAULT_TIMEOUT_MS = 8_000;
export const DEFAULT_MAX_BYTES = 256 * 1024;

export interface UpstreamResponse {
  readonly status: number;
  readonly contentType: string;
  readonly text: string;
}

/** What a request to a provider carries: the broker sends small text bodies only. */
export interface UpstreamRequestInit {
  readonly method?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
}

/**
 * Kept-alive connections to providers. An idle one is closed after 4 s (as undici does), before
 * the usual server keep-alive timeouts (5 s and up) close it under a request.
 */
const IDLE_SOCKET_MS = 4_000;
let agents: { 'http:': http.Agent; 'https:': https.Agent } | undefined;
const agentFor = (protocol: string): http.Agent => {
  agents ??= { 'http:': new http.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }), 'https:': new https.Agent({ keepAlive: true, timeout: IDLE_SOCKET_MS }) };
  return agents[protocol as 'http:' | 'https:'];
};

/**
 * The same options, with every request's timeout cut to what is left until `deadline` (epoch ms):
 * several calls made for one request then fit its time budget together.
 */
export function withDeadline(options: HttpOptions, deadline: number): HttpOptions {
  const per = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  return {
    ...options,
    get timeoutMs() {
      return Math.max(1, Math.min(per, deadline - Date.now()));
    },
  };
}

/**
 * Resolves as `work` does, or fails as an unreachable provider (`UpstreamUnavailableError`,
 * `message`) when `deadline` (epoch ms) comes first: for work that takes no timeout of its own
 * per request, such as a cached JWKS or discovery document that may need fetching.
 */
export function withinDeadline<T>(work: Promise<T>, deadline: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new UpstreamUnavailableError(message)), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Sends a request and reads at most `maxBytes` of the answer, within `timeoutMs` in all. */
export async function upstreamRequest(url: string, init: UpstreamRequestInit, options: HttpOptions = {}): Promise<UpstreamResponse> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const target = new URL(url);
  const started = performance.now();
  const done = (ok: boolean, status?: number) => options.observe?.({ host: target.host, ms: Math.round(performance.now() - started), ok, ...(status ? { status } : {}) });
  if (options.fetch) return viaFetch(options.fetch, url, init, timeoutMs, maxBytes, done);
  if (target.protocol !== 'https:' && target.protocol !== 'http:') {
    done(false);
    throw new UpstreamUnavailableError('the identity provider could not be reached', { cause: new TypeError(`unsupported protocol ${target.protocol}`) });
  }
  return new Promise<UpstreamResponse>((resolve, reject) => {
    let answered: http.IncomingMessage | undefined;
    let settled = false;
    const finish = (err: Error | undefined, out?: UpstreamResponse) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        req.destroy();
        done(false, answered?.statusCode);
        reject(err);
      } else {
        done(out!.status < 500, out!.status);
        resolve(out!);
      }
    };
    const unavailable = (cause: unknown) => answered
      ? new UpstreamUnavailableError('the identity provider did not finish its answer', { cause })
      : new UpstreamUnavailableError('the identity provider could not be reached', { cause });
    const headers: Record<string, string> = { accept: '*/*', 'user-agent': 'node', ...init.headers };
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
    const req = (target.protocol === 'https:' ? https : http).request(target, { method: init.method ?? 'GET', headers, agent: agentFor(target.protocol) });
    const timer = setTimeout(() => finish(unavailable(new Error(`no complete answer within ${timeoutMs} ms`))), timeoutMs);
    req.on('error', (err) => finish(unavailable(err)));
    req.on('response', (res) => {
      answered = res;
      if (Number(res.headers['content-length'] ?? NaN) > maxBytes) return finish(new UpstreamMalformedError('the provider answer is too large'));
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBytes) return finish(new UpstreamMalformedError('the provider answer is too large'));
        chunks.push(chunk);
      });
      res.on('error', (err) => finish(unavailable(err)));
      res.on('end', () => finish(undefined, { status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), text: Buffer.concat(chunks).toString('utf8') }));
      res.on('close', () => {
        if (!res.complete) finish(unavailable(new Error('the connection closed before the answer was complete')));
      });
    });
    req.end(init.body);
  });
}

/** The same request through an injected `fetch`. */
async function viaFetch(fetchFn: typeof fetch, url: string, init: UpstreamRequestInit, timeoutMs: number, maxBytes: number, done: (ok: boolean, status?: number) => void): Promise<UpstreamResponse> {
  const signal = AbortSignal.timeout(timeoutMs);
  let res: Response;
  try {
    res = await fetchFn(url, { ...init, signal, redirect: 'manual' } as RequestInit);
  } catch (cause) {
    done(false);
    throw new UpstreamUnavailableError('the identity provider could not be reached', { cause });
  }
  let text: string;
  try {
    text = await readCapped(res, maxBytes);
  } catch (cause) {
    done(false, res.status);
    if (cause instanceof UpstreamMalformedError) throw cause;
    throw new UpstreamUnavailableError('the identity provider did not finish its answer', { cause });
  }
  done(res.status < 500, res.status);
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', text };
}

async function readCapped(res: Response, maxBytes: number): Promise<string> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > maxBytes) {
    await res.body?.cancel().catch(() => {});
    throw new UpstreamMalformedError('the provider answer is too large');
  }
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel().catch(() => {});
      throw new UpstreamMalformedError('the provider answer is too large');
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Parses a JSON object body; anything else is a malformed answer. */
export function parseJsonObject(res: UpstreamResponse, what: string): Record<string, unknown> {
  if (!/^application\/([a-z0-9.+-]*\+)?json\b/i.test(res.contentType.trim())) {
    throw new UpstreamMalformedError(`the ${what} is not JSON`);
  }
  let json: unknown;
  try {
    json = JSON.parse(res.text);
  } catch (cause) {
    throw new UpstreamMalformedError(`the ${what} is not valid JSON`, { cause });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new UpstreamMalformedError(`the ${what} is not a JSON object`);
  }
  return json as Record<string, unknown>;
}

/**
 * Checks the status of an answer to an OAuth endpoint: 5xx is unavailable; 4xx with an OAuth
 * error body (RFC 6749 §5.2) is that error; any other non-200 is malformed.
 */
export function checkOAuthStatus(res: UpstreamResponse, what: string): void {
  // 5xx, and 429 (too many requests): the provider is unavailable for now (RFC 6585 §4).
  if (res.status >= 500 || res.status === 429) throw new UpstreamUnavailableError(`the ${what} answered ${res.status}`);
  if (res.status === 200) return;
  if (res.status >= 400 && res.status < 500) {
    let code: unknown;
    try {
      code = (JSON.parse(res.text) as { error?: unknown }).error;
    } catch {
      // not an OAuth error body
    }
    if (typeof code === 'string' && /^[\x20-\x21\x23-\x5B\x5D-\x7E]{1,64}$/.test(code)) {
      throw new UpstreamOAuthError(code, res.status);
    }
    throw new UpstreamRejectedError(`the ${what} answered ${res.status} without an OAuth error`, res.status);
  }
  throw new UpstreamMalformedError(`the ${what} answered ${res.status}`);
}
