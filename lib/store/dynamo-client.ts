/** The deployed table: a DynamoDB client from the environment (`DYNAMODB_TABLE`, optional `DYNAMODB_ENDPOINT`). */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { createTable, type Table } from './table.js';

export function tableFromEnv(env: NodeJS.ProcessEnv = process.env): Table {
  const endpoint = env['DYNAMODB_ENDPOINT'];
  const client = new DynamoDBClient(endpoint
    ? { endpoint, region: env['AWS_REGION'] ?? 'local', credentials: { accessKeyId: 'local', secretAccessKey: 'local' } }
    : {});
  return createTable(env['DYNAMODB_TABLE'] ?? 'oauth-broker', client);
}
