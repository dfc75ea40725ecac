/**
 * The HTTP fault proxy between a real SDK client (default retry strategy: DynamoDB's 4 attempts,
 * its backoff and retry quota) and dynalite: each fault reaches the SDK over a real socket, and
 * the SDK's own reaction is what is asserted.
 */
import { randomBytes } from 'node:crypto';
import {
  ConditionalCheckFailedException, DynamoDBClient, GetItemCommand, InternalServerError, ProvisionedThroughputExceededException, PutItemCommand, UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ensureTable, localDynamoClient, startDynalite, type LocalDynamo } from '../../local/dynamo.js';
import { startFaultProxy, type CallRecord, type FaultProxy } from '../support/dynamo-fault-proxy.js';

let dynamo: LocalDynamo;
let proxy: FaultProxy;
let TableName: string;
const crashed: CallRecord[] = [];
beforeAll(async () => {
  dynamo = await startDynalite();
  TableName = `proxy-${randomBytes(4).toString('hex')}`;
  await ensureTable(localDynamoClient(dynamo.endpoint), TableName);
  proxy = await startFaultProxy({ target: dynamo.endpoint, crash: (call) => void crashed.push(call) });
});
afterEach(() => {
  proxy.clear();
});
afterAll(async () => {
  await proxy.close();
  await dynamo.close();
});

/** A client as the broker's Lambda makes it: only the endpoint differs. */
const sdkClient = (endpoint = proxy.endpoint, maxAttempts?: number) =>
  new DynamoDBClient({ endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, ...(maxAttempts ? { maxAttempts } : {}) });

const uniqueKey = () => `item#${randomBytes(6).toString('hex')}`;
const putNew = (pk: string) => new PutItemCommand({ TableName, Item: { pk: { S: pk } }, ConditionExpression: 'attribute_not_exists(pk)' });
const get = (pk: string) => new GetItemCommand({ TableName, Key: { pk: { S: pk } }, ConsistentRead: true });
const bump = (pk: string) => new UpdateItemCommand({ TableName, Key: { pk: { S: pk } }, UpdateExpression: 'ADD n :one', ExpressionAttributeValues: { ':one': { N: '1' } } });
const stored = async (pk: string) => (await localDynamoClient(dynamo.endpoint).send(get(pk))).Item;
const callsOf = (pk: string) => proxy.calls.filter((c) => c.key === pk);

describe('the DynamoDB fault proxy', () => {
  it('forwards untouched when no fault is scheduled', async () => {
    const client = sdkClient();
    const pk = uniqueKey();
    await client.send(putNew(pk));
    expect((await client.send(get(pk))).Item).toEqual({ pk: { S: pk } });
    expect(callsOf(pk).map((c) => [c.op, c.attempt, c.outcome, c.delivered])).toEqual([['PutItem', 1, 'ok', true], ['GetItem', 1, 'ok', true]]);
  });

  it('throttle once: the SDK backs off, retries and succeeds (2 attempts)', async () => {
    proxy.inject({ op: 'PutItem', fault: { kind: 'throttle', attempts: 1 } });
    const pk = uniqueKey();
    const out = await sdkClient().send(putNew(pk));
    expect(out.$metadata.attempts).toBe(2);
    expect(await stored(pk)).toBeDefined();
    expect(callsOf(pk).map((c) => [c.attempt, c.fault, c.reached])).toEqual([[1, 'throttle', false], [2, undefined, true]]);
  });

  it('throttle on every attempt: the SDK raises ProvisionedThroughputExceededException with status 400 once its attempts are spent', async () => {
    proxy.inject({ op: 'GetItem', fault: 'throttle' });
    const before = proxy.counts.byOperation['GetItem']?.throttle ?? 0;
    const err = await sdkClient(proxy.endpoint, 2).send(get(uniqueKey())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(err).toMatchObject({ name: 'ProvisionedThroughputExceededException', $fault: 'client', $metadata: { httpStatusCode: 400, attempts: 2 } });
    expect((proxy.counts.byOperation['GetItem']?.throttle ?? 0) - before).toBe(2);
  });

  it('internal: 500 InternalServerError on every attempt surfaces as the SDK\'s InternalServerError after 4 attempts', async () => {
    proxy.inject({ op: 'UpdateItem', fault: 'internal' });
    const pk = uniqueKey();
    const err = await sdkClient().send(bump(pk)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InternalServerError);
    expect(err).toMatchObject({ $fault: 'server', $metadata: { httpStatusCode: 500, attempts: 4 } });
    expect(await stored(pk)).toBeUndefined();
  });

  it('reset: a connection dropped before forwarding gives the SDK\'s network error (TimeoutError, ECONNRESET), nothing applied', async () => {
    proxy.inject({ op: 'PutItem', fault: 'reset' });
    const pk = uniqueKey();
    const err = await sdkClient().send(putNew(pk)).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TimeoutError', code: 'ECONNRESET', message: 'socket hang up', $metadata: { attempts: 4 } });
    expect(await stored(pk)).toBeUndefined();
    expect(callsOf(pk).every((c) => c.fault === 'reset' && !c.reached)).toBe(true);
  });

  it('lost-answer on a conditional PutItem: applied, retried by the SDK, and its own write fails the retry\'s condition', async () => {
    proxy.inject({ op: 'PutItem', fault: 'lost-answer' });
    const pk = uniqueKey();
    const err = await sdkClient().send(putNew(pk)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConditionalCheckFailedException);
    expect(err).toMatchObject({ $metadata: { httpStatusCode: 400, attempts: 2 } });
    expect(await stored(pk)).toEqual({ pk: { S: pk } });
    expect(callsOf(pk).map((c) => [c.attempt, c.fault, c.reached, c.outcome, c.delivered])).toEqual([
      [1, 'lost-answer', true, 'ok', false],
      [2, undefined, true, 'condition-failed', true],
    ]);
  });

  it('delay: the attempt is held, then forwarded and answered', async () => {
    proxy.inject({ op: 'UpdateItem', fault: { kind: 'delay', ms: 50 } });
    const pk = uniqueKey();
    const out = await sdkClient().send(bump(pk));
    expect(out.$metadata.attempts).toBe(1);
    expect(callsOf(pk).map((c) => [c.fault, c.outcome, c.delivered])).toEqual([['delay', 'ok', true]]);
  });

  it('crash-after: the hook learns which process sent the applied write before its connection drops', async () => {
    proxy.inject({ op: 'UpdateItem', process: 'b2', fault: 'crash-after' });
    const pk = uniqueKey();
    // b1's calls are not b2's: the rule waits for b2.
    await sdkClient(proxy.endpointFor('b1')).send(bump(pk));
    const out = await sdkClient(proxy.endpointFor('b2'), 1).send(bump(pk)).catch((e: unknown) => e);
    expect(out).toMatchObject({ code: 'ECONNRESET' });
    expect(crashed.map((c) => [c.process, c.key, c.outcome])).toEqual([['b2', pk, 'ok']]);
    expect(await stored(pk)).toMatchObject({ n: { N: '2' } });
    expect(callsOf(pk).map((c) => c.process)).toEqual(['b1', 'b2']);
  });

  it('pause: everything passes and no rule counts the calls meanwhile', async () => {
    proxy.inject({ op: 'PutItem', fault: 'reset' });
    proxy.pause();
    try {
      await sdkClient().send(putNew(uniqueKey()));
    } finally {
      proxy.resume();
    }
    expect(proxy.pending()).toHaveLength(1);
  });

  it('random faults: every injected fault is counted, and the SDK carries most calls through them', async () => {
    proxy.setRates({ internal: 0.15, reset: 0.1, 'lost-answer': 0.05 }, 1234);
    const client = sdkClient();
    const pk = uniqueKey();
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => client.send(bump(pk)).then(() => 'ok', (e: { name: string }) => e.name)));
    const faulted = callsOf(pk).filter((c) => c.fault);
    expect(faulted.length).toBeGreaterThan(0);
    expect(outcomes.filter((o) => o === 'ok').length).toBeGreaterThan(15);
    // Each applied attempt added one: the lost answers were applied and retried, so n counts them too.
    const applied = callsOf(pk).filter((c) => c.reached && c.outcome === 'ok').length;
    expect(await stored(pk)).toMatchObject({ n: { N: String(applied) } });
  });

  it('a client whose retries keep failing spends its retry quota, and then fails at the first attempt', async () => {
    proxy.inject({ op: 'GetItem', count: Infinity, fault: 'internal' });
    const client = sdkClient();
    const attempts: number[] = [];
    for (let i = 0; i < 14; i++) {
      const err = (await client.send(get(uniqueKey())).catch((e: unknown) => e)) as InternalServerError;
      attempts.push(err.$metadata.attempts ?? 0);
    }
    // 500 units of quota, 14 per transient retry: 35 retries, then none.
    expect(attempts.slice(0, 11)).toEqual(Array(11).fill(4));
    expect(attempts.at(-1)).toBe(1);
  });
});
