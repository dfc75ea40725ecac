import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { amzDate, canonicalQuery, canonicalUri, signRequest, type AwsCredentials, type SignableRequest } from '../../../lib/aws/sigv4.js';

/** The SDK's signer needs a hash constructor; node:crypto gives it one. */
type Data = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: Data) => (typeof d === 'string' ? d : ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d));
class Sha256 {
  readonly #hash;
  constructor(secret?: Data) {
    this.#hash = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(data: Data) {
    this.#hash.update(bytes(data));
  }
  async digest() {
    return new Uint8Array(this.#hash.digest());
  }
}

/** The signature of `request` by the AWS SDK's own signer (`@smithy/signature-v4`, as the SDK's clients use it). */
async function sdkSignature(request: SignableRequest, scope: { region: string; service: string }, credentials: AwsCredentials, date: Date, applyChecksum: boolean) {
  const sdk = new SignatureV4({ service: scope.service, region: scope.region, credentials, sha256: Sha256, applyChecksum });
  const signed = await sdk.sign({
    method: request.method, protocol: 'https:', hostname: request.host, path: request.path,
    query: Object.fromEntries(Object.entries(request.query ?? {}).map(([k, v]) => [k, typeof v === 'string' ? v : [...v]])),
    headers: { ...request.headers, host: request.host }, body: request.body,
  }, { signingDate: date });
  return signed.headers;
}

/** AWS's published SigV4 test suite (awslabs/aws-c-auth, tests/aws-signing-test-suite/v4): its credentials, scope and time. */
const SUITE = {
  scope: { region: 'us-east-1', service: 'service' },
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
  date: new Date('2015-08-30T12:36:00Z'),
  host: 'example.amazonaws.com',
};
const UNRESERVED = '-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const sha256Hex = (s: string) => createHash('sha256').update(s).digest('hex');

describe('signRequest: AWS\'s published examples', () => {
  it.each<[string, Partial<SignableRequest>, string | undefined, string, string]>([
    ['get-vanilla', {}, undefined, 'host;x-amz-date', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
    ['get-vanilla-with-session-token', {}, '6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267', 'host;x-amz-date;x-amz-security-token', '07ec1639c89043aa0e3e2de82b96708f198cceab042d4a97044c66dd9f74e7f8'],
    ['get-utf8', { path: '/\u1234' }, undefined, 'host;x-amz-date', '8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85'],
    ['get-slash-dot-slash-normalized', { path: '/./' }, undefined, 'host;x-amz-date', '5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31'],
    ['get-vanilla-query-unreserved', { query: { [UNRESERVED]: UNRESERVED } }, undefined, 'host;x-amz-date', '9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197'],
    ['get-header-value-trim', { headers: { 'My-Header1': ' value1', 'My-Header2': ' "a   b   c"' } }, undefined, 'host;my-header1;my-header2;x-amz-date', 'acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736'],
    ['post-x-www-form-urlencoded', {
      method: 'POST', body: 'Param1=value1',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': '13', 'x-amz-content-sha256': sha256Hex('Param1=value1') },
    }, undefined, 'content-length;content-type;host;x-amz-content-sha256;x-amz-date', 'd3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b'],
  ])('%s', (_, request, sessionToken, signedHeaders, signature) => {
    const out = signRequest(
      { method: 'GET', host: SUITE.host, path: '/', headers: {}, body: '', ...request },
      SUITE.scope, { ...SUITE.credentials, sessionToken }, SUITE.date,
    );
    expect(out['x-amz-date']).toBe('20150830T123600Z');
    expect(out['x-amz-security-token']).toBe(sessionToken);
    expect(out['authorization']).toBe(`AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=${signedHeaders}, Signature=${signature}`);
  });

  it('the IAM User Guide\'s example (ListUsers, 2015-08-30)', () => {
    const out = signRequest(
      { method: 'GET', host: 'iam.amazonaws.com', path: '/', query: { Action: 'ListUsers', Version: '2010-05-08' }, headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: '' },
      { region: 'us-east-1', service: 'iam' }, SUITE.credentials, SUITE.date,
    );
    expect(out['authorization']).toBe('AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, '
      + 'Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7');
  });

  it('canonical forms: dot segments and empty segments removed, paths encoded again, query sorted by encoded name then value', () => {
    expect(canonicalUri('/')).toBe('/');
    expect(canonicalUri('//a/./b/../c//')).toBe('/a/c/');
    expect(canonicalUri('/a b/%2F')).toBe('/a%20b/%252F');
    expect(canonicalQuery({ b: ['2', '1'], a: '', 'A ': '*' })).toBe('A%20=%2A&a=&b=1&b=2');
  });
});

/** A deterministic generator (a linear congruential one): the same requests on every run. */
function generator(seed: number) {
  let s = seed;
  const next = () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  return { next, int, pick };
}

const CHARS = ['a', 'Z', '0', '9', '-', '_', '.', '~', ' ', '/', '?', '#', '&', '=', '+', '%', '%2F', '*', '!', '\'', '(', ')', ':', '@', ',', ';', '$', '[', ']', 'é', 'ü', '\u1234', '😀', '"', '<', '>', '\\', '^', '`', '{', '|', '}'];
const HEADER_NAMES = ['content-type', 'Content-Type', 'X-Amz-Target', 'x-amz-meta-Thing', 'My-Header', 'amz-sdk-invocation-id', 'amz-sdk-request', 'accept', 'x-custom-ÄSCII'.replace('Ä', 'A'), 'content-encoding', 'x-amz-user-agent'];
const HEADER_VALUES = ['application/x-amz-json-1.0', '  padded  ', 'a   b\t\tc', 'line1\r\n  line2', '"quoted   value"', 'attempt=2; max=4', '', '9d1c2c2e-1b3c-4d5e-8f90-aabbccddeeff', 'UPPER lower 123'];
const METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS'];
const SCOPES = [
  { region: 'us-east-1', service: 'dynamodb' }, { region: 'eu-west-1', service: 'secretsmanager' }, { region: 'ap-southeast-2', service: 'iam' },
  { region: 'cn-north-1', service: 'execute-api' }, { region: 'us-gov-west-1', service: 'sts' },
];

function randomRequest(g: ReturnType<typeof generator>): { request: SignableRequest; scope: (typeof SCOPES)[number]; credentials: AwsCredentials; date: Date } {
  const text = (max: number) => Array.from({ length: g.int(max) }, () => g.pick(CHARS)).join('');
  const segments = Array.from({ length: g.int(5) }, () => g.pick(['', '.', '..', text(6), text(3), 'segment']));
  const path = g.int(4) === 0 ? '/' : `/${segments.join('/')}${g.int(3) === 0 ? '/' : ''}`;
  const query: Record<string, string | string[]> = {};
  for (let i = g.int(5); i > 0; i--) query[text(5) || 'k'] = g.int(4) === 0 ? Array.from({ length: 1 + g.int(3) }, () => text(4)) : text(8);
  const headers: Record<string, string> = {};
  const seen = new Set<string>();
  for (let i = g.int(6); i > 0; i--) {
    const name = g.pick(HEADER_NAMES);
    if (seen.has(name.toLowerCase())) continue;
    seen.add(name.toLowerCase());
    headers[name] = g.pick(HEADER_VALUES);
  }
  const body = g.pick<string | Uint8Array>(['', '{}', JSON.stringify({ TableName: 't', Key: { pk: { S: `session#${text(10)}` } } }), text(40), new Uint8Array(Array.from({ length: g.int(64) }, () => g.int(256)))]);
  const credentials: AwsCredentials = g.int(2) === 0
    ? { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: `se/cr+et=${g.int(1000)}`, sessionToken: `IQoJb3JpZ2luX2VjE//token==${g.int(1000)}` }
    : { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: `secret${g.int(1000)}` };
  // Any second from 2000 to 2099, and the last second of a day and of a year now and then.
  const date = new Date(Date.UTC(2000 + g.int(100), g.int(12), 1 + g.int(28), g.int(24), g.int(60), g.int(60)));
  if (g.int(8) === 0) date.setUTCHours(23, 59, 59);
  if (g.int(16) === 0) date.setUTCFullYear(date.getUTCFullYear(), 11, 31);
  return { request: { method: g.pick(METHODS), host: g.pick(['dynamodb.us-east-1.amazonaws.com', 'example.amazonaws.com', '127.0.0.1:8000', 'localhost']), path, query, headers, body }, scope: g.pick(SCOPES), credentials, date };
}

describe('signRequest against the AWS SDK\'s signer', () => {
  it('gives the same Authorization header for 500 varied requests: methods, paths, queries with reserved characters, headers, bodies, session tokens, dates', async () => {
    const g = generator(20261129);
    let withToken = 0;
    let withQuery = 0;
    for (let i = 0; i < 500; i++) {
      const { request, scope, credentials, date } = randomRequest(g);
      // Half with the SDK adding x-amz-content-sha256 itself (its default); ours then signs it as a given header.
      const applyChecksum = i % 2 === 1;
      const expected = await sdkSignature(request, scope, credentials, date, applyChecksum);
      const ours = applyChecksum
        ? signRequest({ ...request, headers: { ...request.headers, 'x-amz-content-sha256': expected['x-amz-content-sha256']! } }, scope, credentials, date)
        : signRequest(request, scope, credentials, date);
      expect({ i, authorization: ours['authorization'] }).toEqual({ i, authorization: expected['authorization'] });
      expect(ours['x-amz-date']).toBe(expected['x-amz-date']);
      expect(ours['x-amz-security-token']).toBe(expected['x-amz-security-token']);
      if (credentials.sessionToken) withToken++;
      if (Object.keys(request.query ?? {}).length) withQuery++;
    }
    // The generator really varied what matters.
    expect(withToken).toBeGreaterThan(100);
    expect(withQuery).toBeGreaterThan(100);
  });

  it('signs the JSON client\'s own requests (a DynamoDB UpdateItem, with and without a session token) as the SDK does', async () => {
    const headers = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.UpdateItem', 'amz-sdk-invocation-id': '9d1c2c2e', 'amz-sdk-request': 'attempt=2; max=4' };
    const body = JSON.stringify({ TableName: 't', Key: { pk: { S: 'session#ü' } } });
    for (const credentials of [{ accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'se/cr+et=', sessionToken: 'IQoJb3JpZ2luX2VjE//token==' }, { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' }]) {
      for (const date of [new Date('2026-01-02T03:04:05Z'), new Date('2026-12-31T23:59:59Z')]) {
        const request = { method: 'POST', host: 'dynamodb.eu-west-1.amazonaws.com', path: '/', headers, body };
        const scope = { region: 'eu-west-1', service: 'dynamodb' };
        const expected = await sdkSignature(request, scope, credentials, date, false);
        const mine = signRequest(request, scope, credentials, date);
        expect(mine['authorization']).toBe(expected['authorization']);
        expect(mine['x-amz-security-token']).toBe(expected['x-amz-security-token']);
      }
    }
  });

  it('keeps one derived key per day, region, service and secret: a second scope or secret signs with its own', async () => {
    const request = { method: 'POST', host: 'h', path: '/', headers: {}, body: 'x' };
    const date = new Date('2026-06-01T00:00:00Z');
    const a = { accessKeyId: 'A', secretAccessKey: 'one' };
    const b = { accessKeyId: 'A', secretAccessKey: 'two' };
    const scopes = [{ region: 'eu-west-1', service: 'dynamodb' }, { region: 'eu-west-1', service: 'secretsmanager' }];
    for (const [scope, credentials] of [[scopes[0]!, a], [scopes[1]!, a], [scopes[0]!, b], [scopes[0]!, a]] as const) {
      expect(signRequest(request, scope, credentials, date)['authorization']).toBe((await sdkSignature(request, scope, credentials, date, false))['authorization']);
    }
  });
});

describe('amzDate', () => {
  it('is the ISO form without separators or milliseconds (YYYYMMDDTHHMMSSZ), for dates across the years', () => {
    let t = Date.UTC(2000, 0, 1);
    for (let i = 0; i < 5_000; i++, t += 86_400_000 * 5 + 3_723_017) expect(amzDate(new Date(t))).toBe(new Date(t).toISOString().replace(/[:-]|\.\d{3}/g, ''));
  });
});
