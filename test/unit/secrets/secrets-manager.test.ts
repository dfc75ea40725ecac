import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createAwsJsonClient, type AwsJsonClient } from '../../../lib/aws/json-client.js';
import { rejectionOf } from '../../support/errors.js';
import { BATCH_BUDGET_MS, READ_BUDGET_MS, readAtStart, SecretReadError, secretsManagerFetcher } from '../../../lib/secrets/secrets-manager.js';
import { BrokerUnavailableError } from '../../../lib/errors.js';
import { createSecretResolver } from '../../../lib/secrets/secrets.js';

interface SeenRequest {
  readonly method: string | undefined;
  readonly url: string | undefined;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

const ARN = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:x';

/** A loopback stand-in for Secrets Manager speaking the awsJson1_1 protocol. */
let server: Server;
let endpoint: string;
let seen: SeenRequest[] = [];
let answer: (body: { SecretId?: string; SecretIdList?: string[] }) => { status: number; json: unknown };

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method, url: req.url, headers: req.headers, body });
      let parsed: { SecretId?: string; SecretIdList?: string[] } = {};
      try {
        parsed = JSON.parse(body) as { SecretId?: string; SecretIdList?: string[] };
      } catch {
        // answered below as the test decides
      }
      const { status, json } = answer(parsed);
      const text = JSON.stringify(json);
      res.writeHead(status, {
        'content-type': 'application/x-amz-json-1.1',
        'content-length': Buffer.byteLength(text),
        'x-amzn-requestid': '11111111-2222-3333-4444-555555555555',
      });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(() => {
  seen = [];
  answer = () => ({ status: 500, json: { __type: 'InternalServiceError', message: 'no answer configured' } });
});

/** The client the functions use (lib/aws/json-client.ts), as `secretsManagerFromEnv` configures it, on the stand-in. */
function client(at = endpoint): AwsJsonClient {
  return createAwsJsonClient({
    endpoint: at,
    region: 'us-east-1',
    service: 'secretsmanager',
    targetPrefix: 'secretsmanager',
    jsonVersion: '1.1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    maxAttempts: 1,
  });
}

const secretError = (promise: Promise<unknown>): Promise<SecretReadError> => rejectionOf(promise, SecretReadError);

/** Runs `use` with a client (attempts of 60 s) of a Secrets Manager that accepts connections and never answers. */
async function withSilentSecretsManager(use: (client: AwsJsonClient) => Promise<void>): Promise<void> {
  const silent = createServer(() => undefined);
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  try {
    await use(createAwsJsonClient({
      endpoint: `http://127.0.0.1:${(silent.address() as AddressInfo).port}`, region: 'us-east-1', service: 'secretsmanager', targetPrefix: 'secretsmanager',
      jsonVersion: '1.1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, requestTimeoutMs: 60_000,
    }));
  } finally {
    silent.closeAllConnections();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
}

describe('secretsManagerFetcher: failures', () => {
  it('maps a ResourceNotFoundException to SecretReadError naming the secret and the cause', async () => {
    answer = () => ({ status: 400, json: { __type: 'ResourceNotFoundException', message: "Secrets Manager can't find the specified secret." } });
    const err = await secretError(secretsManagerFetcher(client())('missing'));
    expect(err.message).toContain('"missing"');
    expect(err.message).toContain('ResourceNotFoundException');
    expect((err.cause as Error).name).toBe('ResourceNotFoundException');
    expect(seen).toHaveLength(1);
  });

  it('maps an AccessDeniedException to SecretReadError', async () => {
    answer = () => ({ status: 400, json: { __type: 'AccessDeniedException', message: 'not authorized' } });
    expect((await secretError(secretsManagerFetcher(client())('x'))).message).toContain('AccessDeniedException');
  });

  it('refuses a binary secret (no SecretString)', async () => {
    answer = () => ({ status: 200, json: { ARN, Name: 'x', SecretBinary: Buffer.from('bytes').toString('base64'), VersionId: 'v1' } });
    expect((await secretError(secretsManagerFetcher(client())('x'))).message).toMatch(/no SecretString/);
  });

  it('maps an unreachable endpoint to SecretReadError', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await secretError(secretsManagerFetcher(client(`http://127.0.0.1:${port}`))('x'));
  });
});

describe('secretsManagerFetcher', () => {
  it('sends GetSecretValue over the JSON protocol and returns SecretString', async () => {
    answer = (body) => ({
      status: 200,
      json: { ARN, Name: body.SecretId, SecretString: '{"clientSecret":"s3cr3t"}', VersionId: 'v1', VersionStages: ['AWSCURRENT'], CreatedDate: 1.7e9 },
    });
    const value = await secretsManagerFetcher(client())('x');
    expect(value).toBe('{"clientSecret":"s3cr3t"}');

    expect(seen).toHaveLength(1);
    const req = seen[0]!;
    expect(req.method).toBe('POST');
    expect(req.url).toBe('/');
    expect(req.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
    expect(req.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(req.headers['authorization']).toMatch(/^AWS4-HMAC-SHA256 Credential=a\/\d{8}\/us-east-1\/secretsmanager\/aws4_request/);
    expect(JSON.parse(req.body)).toEqual({ SecretId: 'x' });
  });

  it('passes an ARN through as the SecretId', async () => {
    answer = () => ({ status: 200, json: { ARN, Name: 'x', SecretString: 'plain' } });
    expect(await secretsManagerFetcher(client())(ARN)).toBe('plain');
    expect(JSON.parse(seen[0]!.body)).toEqual({ SecretId: ARN });
  });
});

describe('secretsManagerFetcher: many (BatchGetSecretValue)', () => {
  const entry = (name: string, value: unknown) => ({ ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`, Name: name, SecretString: value, VersionId: 'v1', VersionStages: ['AWSCURRENT'], CreatedDate: 1.7e9 });

  it('sends one BatchGetSecretValue with the ids as SecretIdList, and takes each string by the id asked for: name, ARN or partial ARN', async () => {
    const partial = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:signing';
    const full = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:idp-AbCdEf';
    answer = () => ({ status: 200, json: { SecretValues: [entry('keys', 'k'), entry('signing', 's'), entry('idp', 'c')], Errors: [] } });
    const found = await secretsManagerFetcher(client()).many!(['keys', partial, full]);
    expect(Object.fromEntries(found)).toEqual({ keys: 'k', [partial]: 's', [full]: 'c' });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.headers['x-amz-target']).toBe('secretsmanager.BatchGetSecretValue');
    expect(seen[0]!.headers['content-type']).toBe('application/x-amz-json-1.1');
    expect(seen[0]!.headers['authorization']).toMatch(/^AWS4-HMAC-SHA256 Credential=a\/\d{8}\/us-east-1\/secretsmanager\/aws4_request/);
    expect(JSON.parse(seen[0]!.body)).toEqual({ SecretIdList: ['keys', partial, full] });
  });

  it('leaves out what the answer lists in Errors, binary secrets, and entries for ids not asked for', async () => {
    answer = () => ({
      status: 200,
      json: {
        SecretValues: [entry('keys', 'k'), { ...entry('bin', undefined), SecretBinary: 'Ynl0ZXM=' }, entry('other', 'x'), entry('prefix-of-keys', 'y')],
        Errors: [{ SecretId: 'denied', ErrorCode: 'AccessDeniedException', Message: 'not authorized' }],
      },
    });
    const found = await secretsManagerFetcher(client()).many!(['keys', 'bin', 'denied']);
    expect(Object.fromEntries(found)).toEqual({ keys: 'k' });
  });

  it('asks at most 20 ids per call', async () => {
    answer = (body) => ({ status: 200, json: { SecretValues: (body.SecretIdList ?? []).map((id) => entry(id, `v-${id}`)) } });
    const ids = Array.from({ length: 45 }, (_, i) => `s${i}`);
    const found = await secretsManagerFetcher(client()).many!(ids);
    expect(found.size).toBe(45);
    expect(found.get('s44')).toBe('v-s44');
    expect(seen.map((r) => (JSON.parse(r.body) as { SecretIdList: string[] }).SecretIdList.length).sort((a, b) => a - b)).toEqual([5, 20, 20]);
  });

  it('rejects with a SecretReadError naming the cause when the call fails as a whole (e.g. no batch permission)', async () => {
    answer = () => ({ status: 400, json: { __type: 'AccessDeniedException', message: 'not authorized to perform: secretsmanager:BatchGetSecretValue' } });
    const err = await secretError(secretsManagerFetcher(client()).many!(['a', 'b']));
    expect(err.message).toBe('reading 2 secrets at once failed (AccessDeniedException)');
    expect((err.cause as Error).name).toBe('AccessDeniedException');
  });

  it('takes a value only where the pairing is unambiguous: never one secret\'s value for another\'s id', async () => {
    const local = { ...entry('broker/okta', 'local'), ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:broker/okta-AbCdEf' };
    const remote = { ...entry('broker/okta', 'remote'), ARN: 'arn:aws:secretsmanager:us-east-1:222222222222:secret:broker/okta-XyZ123' };
    const suffixed = { ...entry('broker/okta-AbCdEf', 'suffixed'), ARN: 'arn:aws:secretsmanager:us-east-1:111111111111:secret:broker/okta-AbCdEf-Qwerty' };
    const keys = entry('keys', 'k');
    // Another account's secret asked for by ARN, and this account's of the same name by name.
    answer = () => ({ status: 200, json: { SecretValues: [local, remote, keys] } });
    let found = await secretsManagerFetcher(client()).many!(['broker/okta', remote.ARN, 'keys']);
    expect(Object.fromEntries(found)).toEqual({ keys: 'k' });
    // A full ARN that is also the partial ARN of a secret named like it, plus that secret's name.
    answer = () => ({ status: 200, json: { SecretValues: [suffixed, keys] } });
    found = await secretsManagerFetcher(client()).many!([local.ARN, 'broker/okta-AbCdEf', 'keys']);
    expect(Object.fromEntries(found)).toEqual({ keys: 'k' });
    // One secret asked for twice (name and ARN): neither id is sure to be the only one it answers.
    answer = () => ({ status: 200, json: { SecretValues: [local] } });
    found = await secretsManagerFetcher(client()).many!(['broker/okta', local.ARN]);
    expect(found.size).toBe(0);
  });

  it('keeps what the calls that answered brought when another call of the batch fails', async () => {
    answer = (body) => (body.SecretIdList?.includes('s20')
      ? { status: 500, json: { __type: 'InternalServiceError', message: 'try again' } }
      : { status: 200, json: { SecretValues: (body.SecretIdList ?? []).map((id) => entry(id, `v-${id}`)) } });
    const ids = Array.from({ length: 45 }, (_, i) => `s${i}`);
    const found = await secretsManagerFetcher(client()).many!(ids);
    expect([...found.keys()].sort()).toEqual(ids.filter((_, i) => i < 20 || i >= 40).sort());
  });

  it('gives up on a batch that does not answer within its budget, its retries included', async () => {
    await withSilentSecretsManager(async (slow) => {
      const err = await secretError(secretsManagerFetcher(slow).many!(['a', 'b']));
      expect(err.message).toMatch(/^reading 2 secrets at once failed/);
    });
  });
});

describe('secretsManagerFetcher: a Secrets Manager that never answers', () => {
  it('gives up on one read within its budget, its retries included, so a cold start\'s reads end inside Lambda\'s 10 s init', async () => {
    expect(BATCH_BUDGET_MS + READ_BUDGET_MS).toBeLessThanOrEqual(9_000);
    await withSilentSecretsManager(async (slow) => {
      const started = Date.now();
      const err = await secretError(secretsManagerFetcher(slow)('keys'));
      const took = Date.now() - started;
      expect(err.message).toMatch(/^reading secret "keys" failed \(TimeoutError\)/);
      expect(took).toBeGreaterThanOrEqual(READ_BUDGET_MS - 200);
      expect(took).toBeLessThan(READ_BUDGET_MS + 2_000);
    });
  });
});

describe('readAtStart (the first thing a cold start does)', () => {
  const entry = (name: string, value: string) => ({ ARN: `arn:aws:secretsmanager:us-east-1:123456789012:secret:${name}-AbCdEf`, Name: name, SecretString: value });

  it('reads several ids in one BatchGetSecretValue, and nothing when there are none', async () => {
    answer = () => ({ status: 200, json: { SecretValues: [entry('keys', 'k'), entry('signing', 's')], Errors: [] } });
    expect(readAtStart(secretsManagerFetcher(client()), [])).toBeUndefined();
    const early = readAtStart(secretsManagerFetcher(client()), ['keys', 'signing'])!;
    expect(early.ids).toEqual(['keys', 'signing']);
    expect(Object.fromEntries(await early.values)).toEqual({ keys: 'k', signing: 's' });
    expect(seen.map((r) => r.headers['x-amz-target'])).toEqual(['secretsmanager.BatchGetSecretValue']);
  });

  it('reads a single id with GetSecretValue; a read that fails leaves it out (its own read later names the error)', async () => {
    answer = () => ({ status: 200, json: { ARN: 'arn', Name: 'keys', SecretString: 'k' } });
    expect(Object.fromEntries(await readAtStart(secretsManagerFetcher(client()), ['keys'])!.values)).toEqual({ keys: 'k' });
    answer = () => ({ status: 400, json: { __type: 'ResourceNotFoundException', message: 'not found' } });
    expect(Object.fromEntries(await readAtStart(secretsManagerFetcher(client()), ['keys'])!.values)).toEqual({});
    expect(seen.map((r) => r.headers['x-amz-target'])).toEqual(['secretsmanager.GetSecretValue', 'secretsmanager.GetSecretValue']);
  });

  it('a single id\'s early read that failed is that id\'s read: the cold start does not read it again (regression: backchannel-logout, its one secret unanswered, failed its start after 18 s instead of 9 s, past Lambda\'s 10 s init limit)', async () => {
    answer = () => ({ status: 500, json: { __type: 'InternalServiceError', message: 'down' } });
    const fetchSecret = secretsManagerFetcher(client());
    const early = readAtStart(fetchSecret, ['keys']);
    const resolver = createSecretResolver({ fetchSecret, env: {} });
    resolver.prefetch(['keys'], early);
    const err = await rejectionOf(resolver.resolve({ secretsManager: 'keys' }), BrokerUnavailableError);
    expect((err.cause as Error).message).toBe('reading secret "keys" failed (InternalServiceError)');
    expect(seen.map((r) => r.headers['x-amz-target'])).toEqual(['secretsmanager.GetSecretValue']);
    // Not cached: a later read goes to the store again.
    answer = () => ({ status: 200, json: { ARN: 'arn', Name: 'keys', SecretString: 'k' } });
    expect(await resolver.resolve({ secretsManager: 'keys' })).toBe('k');
    expect(seen).toHaveLength(2);
  });

  it('rejects `values` when the batch fails as a whole, without an unhandled rejection before its taker comes', async () => {
    answer = () => ({ status: 400, json: { __type: 'AccessDeniedException', message: 'not authorized' } });
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const early = readAtStart(secretsManagerFetcher(client()), ['keys', 'signing'])!;
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
      expect((await secretError(early.values)).message).toContain('AccessDeniedException');
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
