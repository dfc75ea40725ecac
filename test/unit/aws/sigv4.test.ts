import { createHash, createHmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { describe, expect, it } from 'vitest';
import { signRequest } from '../../../lib/aws/sigv4.js';

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

describe('signRequest', () => {
  it('gives the signature of AWS\'s documented example (IAM ListUsers, 2015-08-30)', () => {
    const out = signRequest(
      { method: 'GET', host: 'iam.amazonaws.com', path: '/', query: 'Action=ListUsers&Version=2010-05-08', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, body: '' },
      { region: 'us-east-1', service: 'iam' },
      { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
      new Date('2015-08-30T12:36:00Z'),
    );
    expect(out).toEqual({
      'x-amz-date': '20150830T123600Z',
      authorization: 'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, '
        + 'Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7',
    });
  });

  it.each([
    ['temporary credentials (a Lambda role\'s)', { accessKeyId: 'ASIAEXAMPLE', secretAccessKey: 'se/cr+et=', sessionToken: 'IQoJb3JpZ2luX2VjE//token==' }],
    ['long-term credentials', { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' }],
  ])('signs a JSON-protocol POST exactly as the AWS SDK\'s signer does, with %s', async (_, credentials) => {
    const headers = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'DynamoDB_20120810.UpdateItem', 'amz-sdk-invocation-id': '9d1c2c2e', 'amz-sdk-request': 'attempt=2; max=4' };
    const body = JSON.stringify({ TableName: 't', Key: { pk: { S: 'session#ü' } } });
    for (const date of [new Date('2026-01-02T03:04:05Z'), new Date('2026-12-31T23:59:59Z')]) {
      const sdk = new SignatureV4({ service: 'dynamodb', region: 'eu-west-1', credentials, sha256: Sha256, applyChecksum: false });
      const expected = await sdk.sign({ method: 'POST', protocol: 'https:', hostname: 'dynamodb.eu-west-1.amazonaws.com', path: '/', query: {}, headers: { ...headers, host: 'dynamodb.eu-west-1.amazonaws.com' }, body }, { signingDate: date });
      const mine = signRequest({ method: 'POST', host: 'dynamodb.eu-west-1.amazonaws.com', path: '/', headers, body }, { region: 'eu-west-1', service: 'dynamodb' }, credentials, date);
      expect(mine['authorization']).toBe(expected.headers['authorization']);
      expect(mine['x-amz-security-token']).toBe(expected.headers['x-amz-security-token']);
    }
  });
});
