/**
 * The in-process fault injector against real dynalite and the real SDK client: each fault kind
 * gives the caller what the SDK gives it when DynamoDB (or the network) misbehaves that way, and
 * the call log says which attempts reached the table.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { randomBytes } from 'node:crypto';
import {
  ConditionalCheckFailedException, GetItemCommand, InternalServerError, ProvisionedThroughputExceededException, PutItemCommand, UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTable } from '../../lib/store/table.js';
import { ensureTable, localDynamoClient, startDynalite, type LocalDynamo } from '../../local/dynamo.js';
import { DynamoFaults, ProcessDied, type FaultyContainer } from '../support/dynamo-faults.js';
import { startHarness } from '../support/harness.js';

let dynamo: LocalDynamo;
let TableName: string;
beforeAll(async () => {
  dynamo = await startDynalite();
  TableName = `faults-${randomBytes(4).toString('hex')}`;
  await ensureTable(localDynamoClient(dynamo.endpoint), TableName);
});
afterAll(async () => {
  await dynamo.close();
});

const uniqueKey = () => `item#${randomBytes(6).toString('hex')}`;
const putNew = (pk: string) => new PutItemCommand({ TableName, Item: { pk: { S: pk }, n: { N: '1' } }, ConditionExpression: 'attribute_not_exists(pk)' });
const get = (pk: string) => new GetItemCommand({ TableName, Key: { pk: { S: pk } }, ConsistentRead: true });
const bump = (pk: string, expression = 'ADD n :one') => new UpdateItemCommand({
  TableName, Key: { pk: { S: pk } }, UpdateExpression: expression, ...(expression.includes(':one') ? { ExpressionAttributeValues: { ':one': { N: '1' } } } : {}),
});

/** Reads an item around the injector, with a plain client. */
async function stored(pk: string) {
  return (await localDynamoClient(dynamo.endpoint).send(get(pk))).Item;
}

describe('in-process DynamoDB faults', () => {
  it('throttle: the SDK retries every attempt into throttling, then raises its own ProvisionedThroughputExceededException (400)', async () => {
    const faults = new DynamoFaults([{ op: 'PutItem', fault: 'throttle' }]);
    const box = faults.container(dynamo.endpoint);
    const pk = uniqueKey();
    const err = await box.client.send(putNew(pk)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(err).toMatchObject({ name: 'ProvisionedThroughputExceededException', $fault: 'client', $metadata: { httpStatusCode: 400, attempts: 4 } });
    expect(faults.callsTo('PutItem').map((c) => [c.attempt, c.fault, c.reached])).toEqual([[1, 'throttle', false], [2, 'throttle', false], [3, 'throttle', false], [4, 'throttle', false]]);
    expect(await stored(pk)).toBeUndefined();
    expect(faults.counts.byOperation['PutItem']).toEqual({ throttle: 4 });
  });

  it('throttle on the first attempt only: the SDK retry hides it from the caller', async () => {
    const faults = new DynamoFaults([{ op: 'PutItem', fault: { kind: 'throttle', attempts: 1 } }]);
    const box = faults.container(dynamo.endpoint);
    const pk = uniqueKey();
    const out = await box.client.send(putNew(pk));
    expect(out.$metadata.attempts).toBe(2);
    expect(faults.calls.map((c) => [c.attempt, c.fault, c.outcome, c.delivered])).toEqual([[1, 'throttle', 'none', false], [2, undefined, 'ok', true]]);
    expect(await stored(pk)).toBeDefined();
  });

  it('throttle through the broker table: what is left after the retries becomes the broker\'s unavailable error', async () => {
    const faults = new DynamoFaults([{ op: 'GetItem', fault: 'throttle' }]);
    const table = createTable(TableName, faults.container(dynamo.endpoint).table);
    await expect(table.call('GetItem', { TableName, Key: { pk: { S: uniqueKey() } }, ConsistentRead: true })).rejects.toMatchObject({ name: 'BrokerUnavailableError', cause: { name: 'ProvisionedThroughputExceededException' } });
  });

  it('internal: a 500 InternalServerError, retried, then raised as the SDK\'s InternalServerError', async () => {
    const faults = new DynamoFaults([{ op: 'UpdateItem', fault: 'internal' }]);
    const box = faults.container(dynamo.endpoint, { maxAttempts: 2 });
    const err = await box.client.send(bump(uniqueKey())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InternalServerError);
    expect(err).toMatchObject({ name: 'InternalServerError', $fault: 'server', $metadata: { httpStatusCode: 500, attempts: 2 } });
  });

  it('reset: a dropped connection, nothing applied; the SDK raises node\'s "socket hang up" as a TimeoutError with code ECONNRESET', async () => {
    const faults = new DynamoFaults([{ op: 'PutItem', fault: 'reset' }]);
    const box = faults.container(dynamo.endpoint);
    const pk = uniqueKey();
    const err = await box.client.send(putNew(pk)).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'TimeoutError', code: 'ECONNRESET', message: 'socket hang up', $metadata: { attempts: 4 } });
    expect(await stored(pk)).toBeUndefined();
    expect(faults.calls.every((c) => !c.reached)).toBe(true);
  });

  it('timeout: every attempt times out unapplied; the caller gets TimeoutError (ETIMEDOUT)', async () => {
    const faults = new DynamoFaults([{ op: 'GetItem', fault: { kind: 'timeout', ms: 5 } }]);
    const box = faults.container(dynamo.endpoint, { maxAttempts: 3 });
    await expect(box.client.send(get(uniqueKey()))).rejects.toMatchObject({ name: 'TimeoutError', code: 'ETIMEDOUT', $metadata: { attempts: 3 } });
  });

  it('lost-answer on a conditional PutItem: applied, the SDK retries it, and the caller gets ConditionalCheckFailedException for its own write', async () => {
    const faults = new DynamoFaults([{ op: 'PutItem', fault: 'lost-answer' }]);
    const box = faults.container(dynamo.endpoint);
    const pk = uniqueKey();
    const err = await box.client.send(putNew(pk)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConditionalCheckFailedException);
    expect(err).toMatchObject({ name: 'ConditionalCheckFailedException', $metadata: { httpStatusCode: 400, attempts: 2 } });
    expect(await stored(pk)).toMatchObject({ n: { N: '1' } });
    expect(faults.calls.map((c) => [c.attempt, c.fault, c.reached, c.outcome, c.delivered])).toEqual([
      [1, 'lost-answer', true, 'ok', false],
      [2, undefined, true, 'condition-failed', true],
    ]);
  });

  it('lost-answer on an unconditional ADD: the SDK retry applies it twice and answers success', async () => {
    const faults = new DynamoFaults([{ op: 'UpdateItem', nth: 2, fault: 'lost-answer' }]);
    const box = faults.container(dynamo.endpoint);
    const pk = uniqueKey();
    await box.client.send(bump(pk));
    const out = await box.client.send(bump(pk));
    expect(out.$metadata.attempts).toBe(2);
    expect(await stored(pk)).toMatchObject({ n: { N: '3' } });
  });

  it('crash-after: the write is applied, the container is dead, its request never answers and its later calls reach nothing', async () => {
    const faults = new DynamoFaults([{ op: 'UpdateItem', expression: 'lease', fault: 'crash-after' }]);
    const box = faults.container(dynamo.endpoint, { name: 'b1' });
    const pk = uniqueKey();
    let afterwards = 'not reached';
    // A request: a lease write, then (in a finally, as a careful handler would) its release.
    const request = (async () => {
      try {
        await box.client.send(bump(pk, 'SET lease = :one'));
        afterwards = 'ran on';
      } finally {
        await box.client.send(bump(pk, 'REMOVE lease')).catch(() => undefined);
      }
    })();
    const err = await box.mortal(request).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProcessDied);
    expect(err).toMatchObject({ container: 'b1', at: { op: 'UpdateItem', key: pk, fault: 'crash-after' } });
    expect(box.dead).toBe(true);
    await request.catch(() => undefined);
    expect(afterwards).toBe('not reached');
    // The lease write is in the table, and the finally's release never reached it.
    expect(await stored(pk)).toMatchObject({ lease: { N: '1' } });
    expect(faults.calls.map((c) => [c.update, c.outcome])).toEqual([['SET lease = :one', 'ok'], ['REMOVE lease', 'after-death']]);
    // Another container on the same table carries on.
    const other = faults.container(dynamo.endpoint, { name: 'b2' });
    await other.client.send(bump(pk, 'REMOVE lease'));
    expect((await stored(pk))?.['lease']).toBeUndefined();
  });

  it('crash-before: the container dies before the write reaches the table', async () => {
    const faults = new DynamoFaults([{ op: 'PutItem', fault: 'crash-before' }]);
    const box = faults.container(dynamo.endpoint);
    const pk = uniqueKey();
    await expect(box.mortal(box.client.send(putNew(pk)))).rejects.toBeInstanceOf(ProcessDied);
    expect(await stored(pk)).toBeUndefined();
  });

  it('kill: a request waiting on something else (a slow provider) is cut off at once', async () => {
    const faults = new DynamoFaults();
    const box = faults.container(dynamo.endpoint);
    let release!: () => void;
    const slowProvider = new Promise<void>((r) => (release = r));
    const request = (async () => {
      await slowProvider;
      await box.client.send(putNew(uniqueKey()));
      return 'answered';
    })();
    const seen = box.mortal(request).catch((e: unknown) => e);
    box.kill();
    expect(await seen).toBeInstanceOf(ProcessDied);
    release();
    await expect(request).rejects.toBeInstanceOf(ProcessDied);
    expect(faults.calls.map((c) => c.outcome)).toEqual(['after-death']);
  });

  it('matches calls by operation, ordinal, key prefix, expression and predicate', async () => {
    const faults = new DynamoFaults();
    faults.inject(
      { op: 'UpdateItem', nth: 2, expression: 'lease', fault: 'internal' },
      { op: 'GetItem', key: 'special#*', where: (input) => input['ConsistentRead'] === true, fault: 'throttle' },
    );
    const box = faults.container(dynamo.endpoint, { maxAttempts: 1 });
    const pk = uniqueKey();
    await box.client.send(bump(pk, 'SET lease = :one'));
    await box.client.send(bump(pk, 'ADD n :one'));
    await expect(box.client.send(bump(pk, 'SET lease = :one'))).rejects.toMatchObject({ name: 'InternalServerError' });
    await box.client.send(bump(pk, 'SET lease = :one'));
    await box.client.send(get(pk));
    await expect(box.client.send(get(`special#${pk}`))).rejects.toMatchObject({ name: 'ProvisionedThroughputExceededException' });
    expect(faults.pending()).toEqual([]);
    expect(faults.calls.filter((c) => c.fault).map((c) => [c.seq, c.op])).toEqual([[3, 'UpdateItem'], [6, 'GetItem']]);
  });

  it('with the SDK\'s own retry strategy, a one-attempt 500 is retried after its backoff', async () => {
    const faults = new DynamoFaults([{ op: 'GetItem', fault: { kind: 'internal', attempts: 1 } }]);
    const box = faults.container(dynamo.endpoint, { retryDelays: 'sdk' });
    const out = await box.client.send(get(uniqueKey()));
    expect(out.$metadata.attempts).toBe(2);
  });

  it('can be added to an existing client, which keeps its own retry settings', async () => {
    const faults = new DynamoFaults([{ op: 'GetItem', fault: 'reset' }]);
    const own = new DynamoDBClient({ endpoint: dynamo.endpoint, region: 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, maxAttempts: 2 });
    const box = faults.container(own, { name: 'runner' });
    // This client makes 2 attempts, not DynamoDB's default 4.
    await expect(box.client.send(get(uniqueKey()))).rejects.toMatchObject({ code: 'ECONNRESET', $metadata: { attempts: 2 } });
    expect(faults.calls.map((c) => [c.process, c.attempt])).toEqual([['runner', 1], ['runner', 2]]);
  });

  it('random faults from a seed repeat exactly', async () => {
    const run = async () => {
      const faults = new DynamoFaults().setRates({ internal: 0.2, throttle: 0.1, 'lost-answer': 0.1 }, 42);
      const box = faults.container(dynamo.endpoint);
      const pk = uniqueKey();
      for (let i = 0; i < 20; i++) await box.client.send(bump(pk)).catch(() => undefined);
      return faults.calls.map((c) => c.fault ?? '-').join(',');
    };
    const first = await run();
    expect(first).toMatch(/internal|throttle|lost-answer/);
    expect(await run()).toBe(first);
  });
});

describe('a harness broker on a fault container', () => {
  it('sends its storage calls through the container, and a crash after its first write cuts the request off', async () => {
    const faults = new DynamoFaults();
    let box: FaultyContainer | undefined;
    const h = await startHarness({ dynamoClient: (endpoint) => (box = faults.container(endpoint, { name: 'b1' })).table });
    try {
      faults.inject({ op: 'PutItem', fault: 'crash-after' });
      const login = box!.mortal(fetch(`${h.url}/login?client_id=web&state=s1`, { redirect: 'manual' }));
      await expect(login).rejects.toBeInstanceOf(ProcessDied);
      expect(faults.calls.find((c) => c.fault === 'crash-after')).toMatchObject({ process: 'b1', table: h.runtime.table.name, reached: true, outcome: 'ok', delivered: false });
    } finally {
      await h.close();
    }
  });
});
