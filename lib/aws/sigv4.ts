/**
 * AWS Signature Version 4 (the "Signature Version 4 signing process" of the IAM User Guide) for
 * the requests the broker makes: HTTPS POSTs of a JSON body to a service's root. Canonical request,
 * string to sign, HMAC-SHA256 key derivation; the derived key is kept for the day, region and
 * service it is for. test/unit/aws/sigv4.test.ts checks it against AWS's documented example and
 * against the SDK's own signer.
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
  /** Already URI-encoded, as sent ("/" for the JSON protocols). */
  readonly path: string;
  /** The canonical query string (sorted, encoded); empty for the JSON protocols. */
  readonly query?: string;
  /** Headers to sign, names in lower case. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
}

export interface SigningScope {
  readonly region: string;
  readonly service: string;
}

const hmac = (key: Buffer | string, data: string) => createHmac('sha256', key).update(data, 'utf8').digest();
const hexHash = (data: string) => createHash('sha256').update(data, 'utf8').digest('hex');

/** YYYYMMDD'T'HHMMSS'Z' */
export const amzDate = (date: Date): string => date.toISOString().replace(/[:-]|\.\d{3}/g, '');

let cachedKey: { id: string; key: Buffer } | undefined;

function signingKey(secret: string, day: string, scope: SigningScope): Buffer {
  const id = `${day}\n${scope.region}\n${scope.service}\n${secret}`;
  if (cachedKey?.id === id) return cachedKey.key;
  const key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), scope.region), scope.service), 'aws4_request');
  cachedKey = { id, key };
  return key;
}

/**
 * The headers that sign `request`: `x-amz-date`, `x-amz-security-token` (with temporary
 * credentials) and `authorization`. Every header of `request` is signed, and `host`.
 */
export function signRequest(request: SignableRequest, scope: SigningScope, credentials: AwsCredentials, now: Date = new Date()): Record<string, string> {
  const date = amzDate(now);
  const day = date.slice(0, 8);
  const added: Record<string, string> = { 'x-amz-date': date };
  if (credentials.sessionToken) added['x-amz-security-token'] = credentials.sessionToken;
  const all: Record<string, string> = { ...request.headers, host: request.host, ...added };
  const names = Object.keys(all).map((n) => n.toLowerCase()).sort();
  const lower: Record<string, string> = {};
  for (const [k, v] of Object.entries(all)) lower[k.toLowerCase()] = v;
  let canonicalHeaders = '';
  for (const n of names) canonicalHeaders += `${n}:${lower[n]!.trim().replace(/\s+/g, ' ')}\n`;
  const signedHeaders = names.join(';');
  const canonical = `${request.method}\n${request.path}\n${request.query ?? ''}\n${canonicalHeaders}\n${signedHeaders}\n${hexHash(request.body)}`;
  const credentialScope = `${day}/${scope.region}/${scope.service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${date}\n${credentialScope}\n${hexHash(canonical)}`;
  const signature = createHmac('sha256', signingKey(credentials.secretAccessKey, day, scope)).update(stringToSign, 'utf8').digest('hex');
  added['authorization'] = `AWS4-HMAC-SHA256 Credential=${credentials.accessKeyId}/${credentialScope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return added;
}
