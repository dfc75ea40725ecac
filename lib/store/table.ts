/**
 * The broker's one DynamoDB table: partition key `pk` (string), TTL attribute `expiresAt`
 * (epoch seconds), and two sparse keys-only global secondary indexes that find a provider user's
 * sessions for back-channel logout (`SESSION_INDEXES`). TTL deletion lags, so every read checks
 * expiry itself. Writes are single-item; single use and rotation are conditional writes. The only
 * queries are those two index lookups.
 *
 * A `Table` speaks DynamoDB's JSON protocol by operation name (`GetItem`, `UpdateItem`, ...), with
 * the service's own input and output shapes. This module imports only types from the SDK: the
 * client is made where a function's entry point wires it (`lib/store/dynamo-client.ts`, the small
 * JSON client of `lib/aws/json-client.ts`); tests and local tools may hand in the SDK's client
 * instead (`sdkTableClient` in local/dynamo.ts).
 */
import type {
  AttributeValue, DeleteItemCommandInput, DeleteItemCommandOutput, GetItemCommandInput, GetItemCommandOutput, PutItemCommandInput,
  PutItemCommandOutput, QueryCommandInput, QueryCommandOutput, ScanCommandInput, ScanCommandOutput, UpdateItemCommandInput, UpdateItemCommandOutput,
} from '@aws-sdk/client-dynamodb';
import { BrokerUnavailableError } from '../errors.js';

export type Item = Record<string, AttributeValue>;

type Out<T> = Omit<T, '$metadata'>;

/** The operations of the table, as DynamoDB's JSON protocol names and shapes them. */
export interface TableOperations {
  GetItem: [GetItemCommandInput, Out<GetItemCommandOutput>];
  PutItem: [PutItemCommandInput, Out<PutItemCommandOutput>];
  UpdateItem: [UpdateItemCommandInput, Out<UpdateItemCommandOutput>];
  DeleteItem: [DeleteItemCommandInput, Out<DeleteItemCommandOutput>];
  /** The session indexes (back-channel logout, the operator's CLI). */
  Query: [QueryCommandInput, Out<QueryCommandOutput>];
  /** Tests and tools only: the broker never scans. */
  Scan: [ScanCommandInput, Out<ScanCommandOutput>];
}

export type TableOperation = keyof TableOperations;

/** Per call: when the call, retries included, must be over (epoch ms); a write it cut off may still have applied. */
export interface CallOptions {
  readonly deadline?: number | undefined;
}

/** Sends one operation to DynamoDB (`AwsJsonClient` does; `sdkTableClient` in local/dynamo.ts wraps the SDK's). */
export interface TableClient {
  call(operation: string, input: object, options?: CallOptions): Promise<unknown>;
}

export interface Table {
  readonly name: string;
  call<O extends TableOperation>(operation: O, input: TableOperations[O][0], options?: CallOptions): Promise<TableOperations[O][1]>;
}

export const PARTITION_KEY = 'pk';
export const TTL_ATTRIBUTE = 'expiresAt';

/**
 * The sparse global secondary indexes (string partition key only, `KEYS_ONLY` projection): a
 * session item carries `idpSubKey` (and `idpSidKey` when the provider's ID token had a `sid`), each
 * a keyed hash of the provider's name and that value (`lib/broker/session-lookup.ts`). Items
 * without the attribute (logins, logout-token records, sessions of a provider without `openid`)
 * are not in the index. Writes that leave these attributes alone (every refresh) cost the index
 * nothing.
 */
export const SESSION_INDEXES = {
  sub: { indexName: 'by-idp-sub', attribute: 'idpSubKey' },
  sid: { indexName: 'by-idp-sid', attribute: 'idpSidKey' },
} as const;

/**
 * Every item's `pk` starts with one of these: a login (`lib/store/logins.ts`), a session
 * (`lib/store/sessions.ts`), a remembered logout token (`lib/store/logout-tokens.ts`). Grants are
 * scoped by them (`dynamodb:LeadingKeys`, functions/manifest.ts).
 */
export const KEY_PREFIXES = {
  login: 'login#',
  session: 'session#',
  logoutToken: 'logout-jti#',
} as const;

export type KeyPrefix = (typeof KEY_PREFIXES)[keyof typeof KEY_PREFIXES];

/** The single-item operations the broker uses; nothing else is ever granted on the table. */
export type ItemAction = 'dynamodb:GetItem' | 'dynamodb:PutItem' | 'dynamodb:UpdateItem' | 'dynamodb:DeleteItem';

/** Items that remember a provider's logout tokens (`jti`) start with this (`lib/store/logout-tokens.ts`). */
export const LOGOUT_TOKEN_KEY_PREFIX = KEY_PREFIXES.logoutToken;

export function createTable(name: string, client: TableClient): Table {
  return {
    name,
    async call<O extends TableOperation>(operation: O, input: TableOperations[O][0], options?: CallOptions): Promise<TableOperations[O][1]> {
      try {
        return (await client.call(operation, input, options)) as TableOperations[O][1];
      } catch (err) {
        // The client has already retried; what is left of a transient failure is a 503 for the app.
        if (isTransient(err)) throw new BrokerUnavailableError('session storage is unavailable', { cause: err });
        throw err;
      }
    },
  };
}

const TRANSIENT = new Set(['ProvisionedThroughputExceededException', 'ThrottlingException', 'RequestLimitExceeded', 'InternalServerError', 'ServiceUnavailable', 'TimeoutError']);

const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);

/** Throttling, a 5xx, or no answer at all. */
function isTransient(err: unknown): boolean {
  const e = err as { name?: string; code?: string; $metadata?: { httpStatusCode?: number } } | null;
  if (!e || isConditionFailure(e)) return false;
  return TRANSIENT.has(e.name ?? '') || NETWORK.has(e.code ?? '') || (e.$metadata?.httpStatusCode ?? 0) >= 500;
}

/** For functions that use no storage: any use is a programming error. */
export const NO_TABLE: Table = {
  name: '',
  call: () => {
    throw new TypeError('this function has no table');
  },
};

export const S = (value: string): AttributeValue => ({ S: value });
export const N = (value: number): AttributeValue => ({ N: String(value) });

/** Marshals a flat record of strings and numbers, leaving out undefined values. */
export function toItem(record: Record<string, string | number | undefined>): Item {
  const item: Item = {};
  for (const [key, value] of Object.entries(record)) {
    if (value === undefined) continue;
    item[key] = typeof value === 'number' ? N(value) : S(value);
  }
  return item;
}

export function str(item: Item, key: string): string | undefined {
  return item[key]?.S;
}

export function num(item: Item, key: string): number | undefined {
  const n = item[key]?.N;
  return n === undefined ? undefined : Number(n);
}

/** A failed ConditionExpression, whichever client threw it. */
export function isConditionFailure(err: unknown): boolean {
  return (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}
