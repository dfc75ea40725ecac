/**
 * The broker's one DynamoDB table: partition key `pk` (string), TTL attribute `expiresAt`
 * (epoch seconds). TTL deletion lags, so every read checks expiry itself. Only single-item
 * operations are used; single use and rotation are conditional writes.
 */
import { ConditionalCheckFailedException, DynamoDBClient, type AttributeValue } from '@aws-sdk/client-dynamodb';

export type Item = Record<string, AttributeValue>;

export interface Table {
  readonly client: DynamoDBClient;
  readonly name: string;
}

export const PARTITION_KEY = 'pk';
export const TTL_ATTRIBUTE = 'expiresAt';

export function createTable(name: string, client: DynamoDBClient = new DynamoDBClient({})): Table {
  return { client, name };
}

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

export function isConditionFailure(err: unknown): boolean {
  return err instanceof ConditionalCheckFailedException || (err as { name?: string } | null)?.name === 'ConditionalCheckFailedException';
}
