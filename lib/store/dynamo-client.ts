/** The deployed table: a DynamoDB client from the environment (`DYNAMODB_TABLE`, optional `DYNAMODB_ENDPOINT`). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createTable, type Table } from './table.js';

/**
 * Without these the SDK waits on a hung connection for its socket timeout (300 s), far past the
 * function timeout and the refresh lease. A timed-out attempt is retried by the SDK like a dropped
 * connection; a write that was applied anyway is recognised by the store when its retry fails
 * its condition. DynamoDB answers single-item calls in milliseconds.
 */
export const DYNAMODB_HTTP = { connectionTimeout: 1_000, requestTimeout: 2_000, throwOnRequestTimeout: true } as const;

export function tableFromEnv(env: NodeJS.ProcessEnv = process.env): Table {
  const endpoint = env['DYNAMODB_ENDPOINT'];
  const client = new DynamoDBClient(endpoint
    ? { endpoint, region: env['AWS_REGION'] ?? 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' }, requestHandler: DYNAMODB_HTTP }
    : { requestHandler: DYNAMODB_HTTP });
  return createTable(env['DYNAMODB_TABLE'] ?? 'oauth-broker', client);
}
