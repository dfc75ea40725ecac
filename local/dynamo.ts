/**
 * Embedded DynamoDB for local runs and tests: dynalite on loopback, the broker's table, and the
 * clients to reach it: the broker's own (`localTableClient`, what deployed functions use) and the
 * AWS SDK's (`localDynamoClient`, for tools and tests that check the SDK's behaviour).
 */
import type { AddressInfo } from 'node:net';
import { CreateTableCommand, DescribeTableCommand, DynamoDBClient, ResourceNotFoundException, UpdateTableCommand, type TableDescription } from '@aws-sdk/client-dynamodb';
import dynalite from 'dynalite';
import type { AwsJsonClient } from '../lib/aws/json-client.js';
import { DYNAMODB_HTTP, dynamoClient, LOCAL_CREDENTIALS } from '../lib/store/dynamo-client.js';
import { PARTITION_KEY, SESSION_INDEXES } from '../lib/store/table.js';

const INDEXES = [SESSION_INDEXES.sub, SESSION_INDEXES.sid];

export interface LocalDynamo {
  readonly endpoint: string;
  close(): Promise<void>;
}

export async function startDynalite(): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The client deployed functions have (the same retries and timeouts), on a local endpoint. */
export function localTableClient(endpoint: string): AwsJsonClient {
  return dynamoClient({ endpoint, region: 'local', credentials: LOCAL_CREDENTIALS });
}

/** The AWS SDK's client, with the broker's timeouts, on a local endpoint. */
export function localDynamoClient(endpoint: string): DynamoDBClient {
  return new DynamoDBClient({ endpoint, region: 'local', credentials: LOCAL_CREDENTIALS, requestHandler: DYNAMODB_HTTP });
}

export { sdkTableClient } from '../lib/store/sdk-table.js';

/**
 * Creates the broker's table when it is missing, with its session indexes (the deployed table is
 * made by the CDK stack). An existing table that lacks an index gets it, one at a time, where the
 * endpoint can add indexes (DynamoDB, DynamoDB local; dynalite cannot). Resolves the indexes still
 * missing: without them everything works but back-channel logout and `sessions end`.
 */
export async function ensureTable(client: DynamoDBClient, name: string): Promise<{ missingIndexes: string[] }> {
  let table: TableDescription | undefined;
  try {
    table = (await client.send(new DescribeTableCommand({ TableName: name }))).Table;
  } catch (err) {
    if (!(err instanceof ResourceNotFoundException) && (err as Error).name !== 'ResourceNotFoundException') throw err;
  }
  if (table) {
    const missingIndexes: string[] = [];
    for (const index of INDEXES) {
      if ((table.GlobalSecondaryIndexes ?? []).some((i) => i.IndexName === index.indexName)) continue;
      try {
        await client.send(new UpdateTableCommand({
          TableName: name,
          AttributeDefinitions: [{ AttributeName: index.attribute, AttributeType: 'S' }],
          GlobalSecondaryIndexUpdates: [{ Create: { IndexName: index.indexName, KeySchema: [{ AttributeName: index.attribute, KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } } }],
        }));
        if (!await waitActive(client, name, index.indexName)) missingIndexes.push(index.indexName);
      } catch (err) {
        if ((err as Error).name !== 'ValidationException') throw err;
        missingIndexes.push(index.indexName);
      }
    }
    return { missingIndexes };
  }
  await client.send(new CreateTableCommand({
    TableName: name,
    AttributeDefinitions: [{ AttributeName: PARTITION_KEY, AttributeType: 'S' }, ...INDEXES.map((i) => ({ AttributeName: i.attribute, AttributeType: 'S' as const }))],
    KeySchema: [{ AttributeName: PARTITION_KEY, KeyType: 'HASH' }],
    GlobalSecondaryIndexes: INDEXES.map((i) => ({ IndexName: i.indexName, KeySchema: [{ AttributeName: i.attribute, KeyType: 'HASH' as const }], Projection: { ProjectionType: 'KEYS_ONLY' as const } })),
    BillingMode: 'PAY_PER_REQUEST',
  }));
  await waitActive(client, name);
  return { missingIndexes: [] };
}

/** Waits until the table (and the index) is active; false for an index the endpoint does not show. */
async function waitActive(client: DynamoDBClient, name: string, indexName?: string): Promise<boolean> {
  for (let i = 0; i < 600; i++) {
    const out = await client.send(new DescribeTableCommand({ TableName: name }));
    const index = indexName === undefined ? undefined : out.Table?.GlobalSecondaryIndexes?.find((x) => x.IndexName === indexName);
    if (out.Table?.TableStatus === 'ACTIVE' && (indexName === undefined || index?.IndexStatus === 'ACTIVE')) return true;
    if (indexName !== undefined && !index) return false;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
