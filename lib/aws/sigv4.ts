/**
 * AWS Signature Version 4 (IAM User Guide, "Create a signed AWS API request"), header-signed:
 * canonical request, string to sign, HMAC-SHA256 key derivation; the derived key is kept for the
 * day, region and service it is for. The broker sends only HTTPS POSTs of a JSON body to a
 * service's root, but the signer is general (any method, path, query and headers, for every
 * service but S3, whose paths are encoded once), so that it can be checked as a whole:
 * test/unit/aws/sigv4.test.ts signs hundreds of varied requests with it and with the AWS SDK's own
 * signer (`@smithy/signature-v4`) and compares the `Authorization` headers, and checks AWS's
 * published example.
 */
import { createHash, createHmac } from 'node:crypto';

export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Temporary credentials (a role's, as in Lambda) come with a session token. */
  readonly sessionToken?: string | undefined;
}

export interface SignableRequest {
  readonly method: string;
  /** The Host header's value. */
  readonly host: string;
  /**
   * The path as sent: each segment URI-encoded once ("/" for the JSON protocols). The canonical
   * URI removes empty, `.` and `..` segments and encodes the path again, as SigV4 requires.
   */
  readonly path: string;
  /** Query parameters, not encoded (the signer encodes them); a repeated name has all its values. */
  readonly query?: Readonly<Record<string, string | readonly string[]>>;
  /** Headers to sign (names in any case; each name once). `host` and the signer's own are added. */
  readonly headers: Readonly<Record<string, string>>;
  /** The payload; hashed unless `x-amz-content-sha256` is among the headers (its value is used). */
  readonly body: string | Uint8Array;
}

export interface SigningScope {
  readonly region: string;
  readonly service: string;
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const hexHash = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');

// Not lib/log.ts's `isoTime`: this module loads before the secret read starts, the logger after
// it, and a module both imported would become a third file of the bundle (functions/handler.ts).
const two = (n: number) => (n < 10 ? '0' : '') + n;

/**
 * YYYYMMDD'T'HHMMSS'Z', from the UTC fields: neither `toISOString`, whose first call costs a
 * process 0.2-0.4 ms (before the cold start's secret read is sent), nor a regular expression.
 */
export const amzDate = (date: Date): string =>
  `${date.getUTCFullYear()}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}T${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}Z`;

/** RFC 3986 encoding: everything but the unreserved characters `A-Z a-z 0-9 - . _ ~`, UTF-8, upper-case hex. */
export const uriEncode = (value: string): string => encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** The canonical URI: the path normalized (no empty, `.` or `..` segments) and encoded again, slashes kept. */
export function canonicalUri(path: string): string {
  if (path === '/') return path;
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `${path.startsWith('/') ? '/' : ''}${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return uriEncode(normalized).replace(/%2F/g, '/');
}

/** The canonical query string: names and values encoded, sorted by name, then by value. */
export function canonicalQuery(query: SignableRequest['query']): string {
  if (!query) return '';
  const pairs: string[] = [];
  for (const name of Object.keys(query).map((n) => [uriEncode(n), n] as const).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
    const value = query[name[1]]!;
    const values = (typeof value === 'string' ? [value] : [...value]).map((v) => `${name[0]}=${uriEncode(v)}`).sort();
    pairs.push(...values);
  }
  return pairs.join('&');
}

let cachedKey: { id: string; key: Buffer } | undefined;

function signingKey(secret: string, day: string, scope: SigningScope): Buffer {
  const id = `${day}\n${scope.region}\n${scope.service}\n${secret}`;
  if (cachedKey?.id === id) return cachedKey.key;
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), scope.region), scope.service), 'aws4_request');
  cachedKey = { id, key };
  return key;
}

const SHA256_HEADER = 'x-amz-content-sha256';

/** A value trimmed, inner runs of spaces (and folded line breaks) made one space; most need nothing. */
const UNTIDY = /[\r\n\t]| {2}|^ | $/;
const canonicalValue = (value: string) => (UNTIDY.test(value) ? value.replace(/[\r\n]/g, ' ').replace(/[ \t]+/g, ' ').replace(/^ | $/g, '') : value);

/**
 * The headers that sign `request`: `x-amz-date`, `x-amz-security-token` (with temporary
 * credentials) and `authorization`. Every header of `request` is signed, and `host`.
 */
export function signRequest(request: SignableRequest, scope: SigningScope, credentials: AwsCredentials, now: Date = new Date()): Record<string, string> {
  const date = amzDate(now);
  const day = date.slice(0, 8);
  const added: Record<string, string> = { 'x-amz-date': date };
  if (credentials.sessionToken) added['x-amz-security-token'] = credentials.sessionToken;
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(request.headers)) lower[k.toLowerCase()] = v;
  lower['host'] = request.host;
  Object.assign(lower, added);
  const names = Object.keys(lower).sort();
  let canonicalHeaders = '';
  for (const n of names) canonicalHeaders += `${n}:${canonicalValue(lower[n]!)}\n`;
  const signedHeaders = names.join(';');
  const payloadHash = lower[SHA256_HEADER] ?? hexHash(request.body);
  const canonical = `${request.method}\n${canonicalUri(request.path)}\n${canonicalQuery(request.query)}\n${canonicalHeaders}\n${signedHeaders}\n${payloadHash}`;
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${date}\n${credentialScope}\n${hexHash(canonical)}`;
  const signature = createHmac('sha256', signingKey(credentials.secretAccessKey, day, scope)).update(stringToSign, 'utf8').digest('hex');
  added['authorization'] = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return added;
}
