import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsServiceError, createAwsJsonClient, credentialsFromEnv, endpointFor, type AwsJsonClientOptions } from '../../../lib/aws/json-client.js';

type Handler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const servers: Server[] = [];

async function serve(handler: Handler): Promise<string> {
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => handler(req, res, body));
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

const client = (endpoint: string, options: Partial<AwsJsonClientOptions> = {}) => createAwsJsonClient({
  endpoint, region: 'us-east-1', service: 'dynamodb', targetPrefix: 'DynamoDB_20120810', jsonVersion: '1.0',
  credentials: { accessKeyId: 'AKID', secretAccessKey: 'secret', sessionToken: 'token' }, backoff: () => 0, maxAttempts: 4, ...options,
});

const answer = (res: ServerResponse, status: number, json: unknown) => {
  const text = JSON.stringify(json);
  res.writeHead(status, { 'content-type': 'application/x-amz-json-1.0', 'content-length': Buffer.byteLength(text), 'x-amzn-requestid': 'REQ1' }).end(text);
};

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, any>> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(Error);
  return err as Error & Record<string, any>;
}

describe('AWS JSON client: failures', () => {
  it('a condition failure is a client error named by its type, not retried', async () => {
    let attempts = 0;
    const url = await serve((_req, res) => {
      attempts++;
      answer(res, 400, { __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed' });
    });
    const err = await rejection(client(url).call('UpdateItem', {}));
    expect(err).toBeInstanceOf(AwsServiceError);
    expect(err).toMatchObject({ name: 'ConditionalCheckFailedException', message: 'The conditional request failed', $fault: 'client', $metadata: { httpStatusCode: 400, requestId: 'REQ1', attempts: 1 } });
    expect(attempts).toBe(1);
  });

  it('a condition failure carries the item DynamoDB returned with it (ReturnValuesOnConditionCheckFailure), as the SDK\'s error does', async () => {
    const url = await serve((_req, res) => answer(res, 400, {
      __type: 'com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException', message: 'The conditional request failed', Item: { pk: { S: 'session#a' } }, name: 'not-this',
    }));
    const err = await rejection(client(url).call('UpdateItem', { ReturnValuesOnConditionCheckFailure: 'ALL_OLD' }));
    expect(err).toMatchObject({ name: 'ConditionalCheckFailedException', Item: { pk: { S: 'session#a' } } });
  });

  it('throttling is retried up to maxAttempts, then raised as the service named it', async () => {
    let attempts = 0;
    const url = await serve((_req, res) => {
      attempts++;
      answer(res, 400, { __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException', message: 'slow down' });
    });
    const err = await rejection(client(url).call('GetItem', {}));
    expect(err).toMatchObject({ name: 'ProvisionedThroughputExceededException', $metadata: { httpStatusCode: 400, attempts: 4 } });
    expect(attempts).toBe(4);
  });

  it('a 5xx is retried, and an attempt that then succeeds is the answer', async () => {
    let attempts = 0;
    const url = await serve((_req, res) => (++attempts < 3 ? answer(res, 500, { __type: 'InternalServerError' }) : answer(res, 200, { Item: { pk: { S: 'a' } } })));
    expect(await client(url).call('GetItem', {})).toEqual({ Item: { pk: { S: 'a' } } });
    expect(attempts).toBe(3);
  });

  it('a connection dropped before the answer is retried (the write may have been applied: the store recognises its own)', async () => {
    let attempts = 0;
    const url = await serve((req, res) => (++attempts === 1 ? req.socket.destroy() : answer(res, 200, {})));
    expect(await client(url).call('PutItem', {})).toEqual({});
    expect(attempts).toBe(2);
  });

  it('an answer cut off midway is a network error, retried', async () => {
    let attempts = 0;
    const url = await serve((req, res) => {
      if (++attempts > 1) return answer(res, 200, { ok: 1 });
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0', 'content-length': '100' });
      res.write('{"Attributes":', () => req.socket.destroy());
    });
    expect(await client(url).call('UpdateItem', {})).toEqual({ ok: 1 });
    expect(attempts).toBe(2);
  });

  it('a server that never answers times out each attempt (TimeoutError, ETIMEDOUT) and gives up after maxAttempts', async () => {
    let attempts = 0;
    const url = await serve(() => void attempts++);
    const started = Date.now();
    const err = await rejection(client(url, { requestTimeoutMs: 100, maxAttempts: 2 }).call('GetItem', {}));
    expect(err).toMatchObject({ name: 'TimeoutError', code: 'ETIMEDOUT', $metadata: { attempts: 2 } });
    expect(attempts).toBe(2);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a refused connection is a network error after its retries', async () => {
    const url = await serve(() => undefined);
    const server = servers.pop()!;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const err = await rejection(client(url, { maxAttempts: 2 }).call('GetItem', {}));
    expect(err).toMatchObject({ code: 'ECONNREFUSED', $metadata: { attempts: 2 } });
  });

  it('an error answer without a JSON body is named by its status', async () => {
    const url = await serve((_req, res) => res.writeHead(503).end('<html>busy</html>'));
    const err = await rejection(client(url, { maxAttempts: 1 }).call('GetItem', {}));
    expect(err).toMatchObject({ name: 'InternalServerError', $fault: 'server', $metadata: { httpStatusCode: 503 } });
  });

  it('a deadline cuts the attempt in flight, and no retry or backoff goes past it: TimeoutError', async () => {
    let attempts = 0;
    const silent = await serve(() => void attempts++);
    const started = Date.now();
    const cut = await rejection(client(silent, { requestTimeoutMs: 10_000, maxAttempts: 3 }).call('GetItem', {}, { deadline: Date.now() + 150 }));
    expect(cut).toMatchObject({ name: 'TimeoutError', code: 'ETIMEDOUT' });
    expect(attempts).toBe(1);
    expect(Date.now() - started).toBeLessThan(5_000);
    let failing = 0;
    const busy = await serve((_req, res) => {
      failing++;
      answer(res, 500, { __type: 'InternalServerError', message: 'oops' });
    });
    // A retry whose backoff (5 s) would end past the deadline is not made: the call fails at once.
    const before = Date.now();
    const after = await rejection(client(busy, { backoff: () => 5_000, maxAttempts: 3 }).call('GetItem', {}, { deadline: Date.now() + 5_000 }));
    expect(after).toMatchObject({ name: 'TimeoutError', $metadata: { attempts: 1 } });
    expect((after.cause as Error).name).toBe('InternalServerError');
    expect(Date.now() - before).toBeLessThan(4_000); // not held until the deadline
    expect(failing).toBe(1);
    const passed = await rejection(client(busy).call('GetItem', {}, { deadline: Date.now() - 1 }));
    expect(passed).toMatchObject({ name: 'TimeoutError', $metadata: { attempts: 0 } });
    expect(failing).toBe(1);
  });

  it('fails closed without credentials in the environment, naming them', () => {
    expect(() => credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'a' })).toThrow(/AWS_SECRET_ACCESS_KEY/);
    expect(credentialsFromEnv({ AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b', AWS_SESSION_TOKEN: 'c' })).toEqual({ accessKeyId: 'a', secretAccessKey: 'b', sessionToken: 'c' });
  });
});

describe('AWS JSON client', () => {
  it('POSTs the input to / with the protocol\'s headers, signed, one invocation id for all attempts', async () => {
    const seen: IncomingMessage['headers'][] = [];
    const bodies: string[] = [];
    const url = await serve((req, res, body) => {
      seen.push(req.headers);
      bodies.push(body);
      if (seen.length === 1) return answer(res, 500, { __type: 'InternalServerError' });
      expect(req.method).toBe('POST');
      expect(req.url).toBe('/');
      answer(res, 200, { Attributes: { n: { N: '2' } } });
    });
    const input = { TableName: 't', Key: { pk: { S: 'x' } }, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } };
    expect(await client(url).call('UpdateItem', input)).toEqual({ Attributes: { n: { N: '2' } } });
    expect(bodies.map((b) => JSON.parse(b))).toEqual([input, input]);
    for (const [i, h] of seen.entries()) {
      expect(h['content-type']).toBe('application/x-amz-json-1.0');
      expect(h['x-amz-target']).toBe('DynamoDB_20120810.UpdateItem');
      expect(h['x-amz-security-token']).toBe('token');
      expect(h['amz-sdk-request']).toBe(`attempt=${i + 1}; max=4`);
      expect(h['authorization']).toMatch(/^AWS4-HMAC-SHA256 Credential=AKID\/\d{8}\/us-east-1\/dynamodb\/aws4_request, SignedHeaders=amz-sdk-invocation-id;amz-sdk-request;content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature=[0-9a-f]{64}$/);
    }
    expect(seen[0]!['amz-sdk-invocation-id']).toBe(seen[1]!['amz-sdk-invocation-id']);
  });

  it('reuses its connection from call to call (keep-alive)', async () => {
    const ports = new Set<number>();
    const url = await serve((req, res) => {
      ports.add(req.socket.remotePort!);
      answer(res, 200, {});
    });
    const c = client(url);
    for (let i = 0; i < 5; i++) await c.call('GetItem', {});
    expect(ports.size).toBe(1);
  });

  it('names endpoints as the SDK does: the service\'s variable, the general one, else the regional endpoint', () => {
    expect(endpointFor('dynamodb', 'DYNAMODB', 'eu-west-1', {})).toBe('https://dynamodb.eu-west-1.amazonaws.com');
    expect(endpointFor('dynamodb', 'DYNAMODB', 'cn-north-1', {})).toBe('https://dynamodb.cn-north-1.amazonaws.com.cn');
    expect(endpointFor('secretsmanager', 'SECRETS_MANAGER', 'us-east-1', { AWS_ENDPOINT_URL: 'http://a', AWS_ENDPOINT_URL_SECRETS_MANAGER: 'http://b' })).toBe('http://b');
    expect(endpointFor('dynamodb', 'DYNAMODB', 'us-east-1', { AWS_ENDPOINT_URL: 'http://a' })).toBe('http://a');
    // FIPS or dual-stack asked for: never silently the standard endpoint.
    expect(() => endpointFor('dynamodb', 'DYNAMODB', 'us-gov-west-1', { AWS_USE_FIPS_ENDPOINT: 'true' })).toThrow(/AWS_USE_FIPS_ENDPOINT.*AWS_ENDPOINT_URL_DYNAMODB/);
    expect(() => endpointFor('secretsmanager', 'SECRETS_MANAGER', 'us-east-1', { AWS_USE_DUALSTACK_ENDPOINT: 'TRUE' })).toThrow(/AWS_USE_DUALSTACK_ENDPOINT/);
    expect(endpointFor('dynamodb', 'DYNAMODB', 'us-gov-west-1', { AWS_USE_FIPS_ENDPOINT: 'true', AWS_ENDPOINT_URL_DYNAMODB: 'https://dynamodb-fips.us-gov-west-1.amazonaws.com' })).toBe('https://dynamodb-fips.us-gov-west-1.amazonaws.com');
  });
});
