/**
 * The deployed table: DynamoDB through the small JSON client (lib/aws/json-client.ts), with the
 * function role's credentials and region from the environment, as Lambda sets them
 * (`DYNAMODB_TABLE`; `DYNAMODB_ENDPOINT` for a local DynamoDB).
 */
import { createAwsJsonClient, credentialsFromEnv, endpointFor, fullJitter, regionFromEnv, type AwsCredentials, type AwsJsonClient, type AwsJsonClientOptions } from '../aws/json-client.js';

/**
 * Without these a client waits on a hung connection far past the function timeout and the refresh
 * lease. A timed-out attempt is retried like a dropped connection; a write that was applied
 * anyway is recognised by the store when its retry fails its condition. DynamoDB answers
 * single-item calls in milliseconds.
 */
export const DYNAMODB_HTTP = { connectionTimeout: 1_000, requestTimeout: 2_000, throwOnRequestTimeout: true } as const;

/** Attempts per call, and the backoff between them: what the AWS SDK uses for DynamoDB (4 attempts, 25 ms base, 1 s when throttled). */
export const DYNAMODB_RETRIES = { maxAttempts: 4, backoff: fullJitter(25, 1_000) } as const;

export interface DynamoClientOptions {
  readonly endpoint: string;
  readonly region: string;
  readonly credentials: AwsCredentials;
  readonly maxAttempts?: number;
  readonly backoff?: AwsJsonClientOptions['backoff'];
  readonly intercept?: AwsJsonClientOptions['intercept'];
}

/** A DynamoDB client (JSON 1.0 protocol) with the broker's timeouts and the SDK's retry policy. */
export function dynamoClient(options: DynamoClientOptions): AwsJsonClient {
  return createAwsJsonClient({
    service: 'dynamodb',
    targetPrefix: 'DynamoDB_20120810',
    jsonVersion: '1.0',
    connectionTimeoutMs: DYNAMODB_HTTP.connectionTimeout,
    requestTimeoutMs: DYNAMODB_HTTP.requestTimeout,
    ...DYNAMODB_RETRIES,
    ...options,
  });
}

/** The credentials every local DynamoDB (dynalite, DynamoDB Local) accepts. */
export const LOCAL_CREDENTIALS: AwsCredentials = { accessKeyId: 'local', secretAccessKey: 'local' };

/**
 * The function's table from the environment: its name and a client (made into a `Table` by
 * `createTable`). Wired in the first part of a cold start (functions/handler.ts), which imports
 * nothing from lib/store/table.ts but types, and called by the second (functions/serve.ts) once
 * the configuration is parsed.
 */
export function dynamoFromEnv(env: NodeJS.ProcessEnv = process.env): { readonly name: string; readonly client: AwsJsonClient } {
  const local = env['DYNAMODB_ENDPOINT'];
  const client = local
    ? dynamoClient({ endpoint: local, region: env['AWS_REGION'] ?? 'local', credentials: LOCAL_CREDENTIALS })
    : dynamoClient({ endpoint: endpointFor('dynamodb', 'DYNAMODB', regionFromEnv(env), env), region: regionFromEnv(env), credentials: credentialsFromEnv(env) });
  return { name: env['DYNAMODB_TABLE'] ?? 'oauth-broker', client };
}
