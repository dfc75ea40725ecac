/**
 * Requests to a provider: a timeout on every call, a cap on the body read, and one mapping of
 * failures: unreachable, timed out or 5xx is `UpstreamUnavailableError` (503); a malformed or
 * oversized answer is `UpstreamMalformedError` (502); an OAuth error body is `UpstreamOAuthError`.
 */
import { UpstreamMalformedError, UpstreamOAuthError, UpstreamRejectedError, UpstreamUnavailableError } from '../errors.js';

export interface HttpOptions {
  readonly timeoutMs?: number;
  readonly maxBytes?: number;
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

/** Sends a request and reads at most `maxBytes` of the answer, within `timeoutMs` in all. */
export async function upstreamRequest(url: string, init: RequestInit, options: HttpOptions = {}): Promise<UpstreamResponse> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  const signal = AbortSignal.timeout(timeoutMs);
  const host = new URL(url).host;
  const started = performance.now();
  const done = (ok: boolean, status?: number) => options.observe?.({ host, ms: Math.round(performance.now() - started), ok, ...(status ? { status } : {}) });
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(url, { ...init, signal, redirect: 'manual' });
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
