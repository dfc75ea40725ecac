/**
 * The table through the AWS SDK, for tools that run on an operator's machine (the CLI, the local
 * runner): the SDK's credential chain (profiles, SSO, a role) where Lambda's functions take the
 * role's keys from the environment (`lib/store/dynamo-client.ts`). Never imported by a function.
 */
import {
  DeleteItemCommand, DynamoDBClient, GetItemCommand, PutItemCommand, QueryCommand, ScanCommand, UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import { DYNAMODB_HTTP, LOCAL_CREDENTIALS } from './dynamo-client.js';
import { createTable, type Table, type TableClient } from './table.js';

const COMMANDS = { GetItem: GetItemCommand, PutItem: PutItemCommand, UpdateItem: UpdateItemCommand, DeleteItem: DeleteItemCommand, Query: QueryCommand, Scan: ScanCommand } as const;

/** The table's operations through an AWS SDK client (e.g. one with test middleware in its stack). */
export function sdkTableClient(client: Pick<DynamoDBClient, 'send'>): TableClient {
  return {
    async call(operation, input, options) {
      const Command = COMMANDS[operation as keyof typeof COMMANDS] as unknown as (new (input: object) => object) | undefined;
      if (!Command) throw new TypeError(`no SDK command for ${operation}`);
      const send = client.send as (this: typeof client, c: unknown, o?: unknown) => Promise<{ $metadata: unknown }>;
      // The SDK knows only a signal: a deadline becomes one.
      const abortSignal = options?.deadline === undefined ? undefined : AbortSignal.timeout(Math.max(1, options.deadline - Date.now()));
      const { $metadata: _, ...out } = await send.call(client, new Command(input), abortSignal ? { abortSignal } : undefined);
      return out;
    },
  };
}

/** `DYNAMODB_TABLE` (default `oauth-broker`) through the SDK; `DYNAMODB_ENDPOINT` for a local DynamoDB. */
export function sdkTableFromEnv(env: NodeJS.ProcessEnv = process.env): Table {
  const endpoint = env['DYNAMODB_ENDPOINT'];
  const client = new DynamoDBClient(endpoint
    ? { endpoint, region: env['AWS_REGION'] ?? 'local', credentials: LOCAL_CREDENTIALS, requestHandler: DYNAMODB_HTTP }
    : { requestHandler: DYNAMODB_HTTP });
  return createTable(env['DYNAMODB_TABLE'] ?? 'oauth-broker', sdkTableClient(client));
}
