/**
 * `/api/{api}/{path}` (CONTRACT.md, "API proxy for web apps"): which API, and the URL below its
 * `url` that the proxy calls. The path is checked before anything is sent, and the URL is built so
 * that it always stays under the API's `url`.
 *
 * API Gateway's HTTP APIs hand the path over percent-decoded (`rawPath`), the local runner as sent;
 * the checks hold for both spellings. Refused (`400`): an empty first segment (`/api/x//host/...`),
 * a `.` or `..` segment however it is encoded (`%2e`, `%2E%2e`, `%252e`: segments are decoded
 * repeatedly) or dressed (`..;x`, `.. `, `...`, full-width dots: `isDotSegment`), an encoded slash or backslash (`%2F`, `%5C`, and their double encodings), a
 * backslash, NUL (`%00`) or any other control character. What passes is sent with its
 * percent-escapes as they are, and every character that cannot stand in a path percent-encoded.
 */
import type { Api } from '../config/parse.js';
import { InvalidRequestError, NotFoundError } from '../errors.js';
import { API_PROXY_PREFIX } from '../http/cors.js';

export interface ProxyPath {
  /** The API's name, as in the configuration's `apis`. */
  readonly api: string;
  /** The checked path below the API's `url`, percent-encoded, without a leading slash. */
  readonly path: string;
}

/** Characters a path segment may hold as they are (RFC 3986 §3.3 `pchar`, less `%`). */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;
const HEX2 = /^[0-9A-Fa-f]{2}$/;

/** Splits `/api/{api}/{path}`; throws `400` for a path the proxy refuses, `404` for no API name. */
export function parseProxyPath(path: string): ProxyPath {
  if (!path.startsWith(API_PROXY_PREFIX)) throw new NotFoundError();
  const rest = path.slice(API_PROXY_PREFIX.length);
  const slash = rest.indexOf('/');
  const api = slash < 0 ? rest : rest.slice(0, slash);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(api)) throw new NotFoundError('no such API');
  if (slash < 0) throw new InvalidRequestError('the path must name something below the API: /api/{api}/{path}');
  return { api, path: checkedPath(rest.slice(slash + 1)) };
}

/** The path below the API, checked segment by segment and safely encoded. */
export function checkedPath(path: string): string {
  const segments = path.split('/');
  if (segments[0] === '') throw new InvalidRequestError('the path below the API must not start with an empty segment');
  return segments.map(checkedSegment).join('/');
}

function checkedSegment(segment: string): string {
  // Decoded as often as it changes (a few times at most): whatever an API or a framework behind
  // it decodes, it never meets a dot segment or a separator that was not one here.
  let decoded = segment;
  for (let i = 0; i < 4; i++) {
    if (isDotSegment(decoded)) throw new InvalidRequestError('the path must not contain "." or ".." segments, in any spelling');
    if (/[/\\]/.test(decoded)) throw new InvalidRequestError('the path must not contain an encoded slash or a backslash');
    // eslint-disable-next-line no-control-regex
    if (/[\x00-\x1f\x7f]/.test(decoded)) throw new InvalidRequestError('the path must not contain NUL or other control characters');
    const next = percentDecode(decoded);
    if (next === decoded) break;
    decoded = next;
  }
  return encodeSegment(segment);
}

/**
 * A dot segment as some server behind an API may read it: Java servlet containers cut `;params`
 * off a segment before they resolve dots (`..;x=1`), Windows servers trim trailing dots and
 * spaces (`.. `, `...`), and a server that normalizes Unicode reads full-width dots (`．．`) as dots.
 */
function isDotSegment(decoded: string): boolean {
  const head = decoded.split(';')[0]!;
  // Only text past ASCII changes under NFKC: the common segment skips it.
  const bare = /[^\x00-\x7f]/.test(head) ? head.normalize('NFKC') : head;
  return bare.includes('.') && /^[. ]+$/.test(bare);
}

/** Decodes each valid `%XX` (as bytes, then UTF-8); a lone `%` stays as it is. */
function percentDecode(s: string): string {
  if (!s.includes('%')) return s;
  const bytes: number[] = [];
  const out: string[] = [];
  const flush = () => {
    if (bytes.length) out.push(Buffer.from(bytes).toString('utf8'));
    bytes.length = 0;
  };
  for (let i = 0; i < s.length; i++) {
    const hex = s.slice(i + 1, i + 3);
    if (s[i] === '%' && HEX2.test(hex)) {
      bytes.push(parseInt(hex, 16));
      i += 2;
    } else {
      flush();
      out.push(s[i]!);
    }
  }
  flush();
  return out.join('');
}

/** Keeps `pchar`s and valid `%XX` escapes; percent-encodes everything else (a lone `%` too), as UTF-8. */
function encodeSegment(segment: string): string {
  let out = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i]!;
    if (c === '%' && HEX2.test(segment.slice(i + 1, i + 3))) {
      out += segment.slice(i, i + 3);
      i += 2;
    } else if (PCHAR.test(c)) {
      out += c;
    } else {
      const code = segment.codePointAt(i)!;
      const char = String.fromCodePoint(code);
      if (char.length === 2) i++;
      for (const b of Buffer.from(char, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

/**
 * The URL the proxy calls: the API's `url`, the checked path, and the query as the browser sent
 * it (a `#` in it encoded, so it cannot start a fragment). Throws `400` should the result not lie
 * under the API's `url`, which the checks above already rule out.
 */
export function apiUrl(api: Api, path: string, rawQuery: string): URL {
  const base = new URL(api.url);
  const basePath = base.pathname.replace(/\/+$/, '');
  const url = new URL(`${base.origin}${basePath}/${path}`);
  if (rawQuery) url.search = `?${rawQuery.replaceAll('#', '%23')}`;
  if (url.origin !== base.origin || !url.pathname.startsWith(`${basePath}/`) || url.username || url.password || url.hash) {
    throw new InvalidRequestError('the path leaves the API');
  }
  return url;
}
