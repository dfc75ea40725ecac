/** Response builders with the contract's header rules. */
import type { HttpResponse } from './types.js';

/** On every response that may carry a token, a code or a handle (RFC 6749 §5.1). */
export const NO_STORE = { 'cache-control': 'no-store', pragma: 'no-cache' } as const;

const BASE_HEADERS = { 'x-content-type-options': 'nosniff' } as const;

export function json(status: number, body: unknown, headers: Record<string, string> = {}, cookies: string[] = []): HttpResponse {
  return {
    status,
    headers: { ...BASE_HEADERS, ...NO_STORE, 'content-type': 'application/json', ...headers },
    cookies,
    body: JSON.stringify(body),
  };
}

export function redirect(location: string, options: { status?: 302 | 303; cookies?: string[] } = {}): HttpResponse {
  return {
    status: options.status ?? 302,
    headers: { ...BASE_HEADERS, ...NO_STORE, location, 'referrer-policy': 'no-referrer' },
    cookies: options.cookies ?? [],
    body: '',
  };
}

export function withHeaders(res: HttpResponse, headers: Record<string, string>, cookies: string[] = []): HttpResponse {
  return { ...res, headers: { ...res.headers, ...headers }, cookies: [...res.cookies, ...cookies] };
}
