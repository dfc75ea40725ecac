/**
 * What crosses the API proxy besides the body (CONTRACT.md, "API proxy for web apps"): a fixed
 * allowlist of request headers toward the API and of response headers back. Everything else stays
 * behind, above all the browser's cookies, its `Authorization` and any `X-Broker-*` header on the
 * way in, and `Set-Cookie` on the way out.
 */

/** Request headers the proxy passes to the API (lower case). */
export const REQUEST_HEADERS: readonly string[] = [
  'accept', 'accept-language', 'content-type', 'content-language',
  'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'range', 'x-request-id',
];

/** Response headers the proxy passes back to the app (lower case). */
export const RESPONSE_HEADERS: readonly string[] = [
  'content-type', 'content-language', 'content-range', 'accept-ranges', 'cache-control',
  'etag', 'last-modified', 'location', 'retry-after', 'www-authenticate', 'x-request-id',
];

/**
 * The passed response headers a script cannot read without `Access-Control-Expose-Headers` (those
 * not CORS-safelisted: Fetch, "CORS-safelisted response-header name").
 */
export const EXPOSED_RESPONSE_HEADERS: readonly string[] = RESPONSE_HEADERS.filter(
  (h) => !['content-type', 'content-language', 'cache-control', 'last-modified'].includes(h),
);

/** The methods the proxy carries (`OPTIONS` is the broker's own CORS preflight). */
export const PROXY_METHODS: readonly string[] = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'];

const REQUEST = new Set(REQUEST_HEADERS);
const RESPONSE = new Set(RESPONSE_HEADERS);

/**
 * The request headers for the API: only the allowlisted ones of what the browser sent, less any
 * its `Connection` header names (RFC 9110 §7.6.1: meant for this hop only).
 */
export function requestHeadersFor(headers: Readonly<Record<string, string>>): Record<string, string> {
  const hopOnly = new Set<string>();
  for (const [name, value] of Object.entries(headers)) {
    if (name.toLowerCase() === 'connection') for (const token of value.split(',')) hopOnly.add(token.trim().toLowerCase());
  }
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (REQUEST.has(lower) && !hopOnly.has(lower)) out[lower] = value;
  }
  return out;
}

/**
 * The response headers for the app: only the allowlisted ones of what the API answered (a
 * repeated header joined with ", ", as HTTP allows for all of these), less any that holds
 * `secret`, the access token the proxy sent: an API that echoes it (in `WWW-Authenticate`, say)
 * must not hand the page the token it never holds.
 */
export function responseHeadersFrom(headers: Readonly<Record<string, string | string[] | undefined>>, secret?: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!RESPONSE.has(lower) || value === undefined) continue;
    const joined = Array.isArray(value) ? value.join(', ') : value;
    if (secret && joined.includes(secret)) continue;
    out[lower] = joined;
  }
  return out;
}
