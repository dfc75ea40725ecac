/**
 * The table as one function's IAM role sees it: item actions only on the key prefixes granted
 * (`dynamodb:LeadingKeys`), `Query` only on the session indexes and only when granted, nothing
 * else. The local runner gives each function this view, so every integration test checks that
 * the grants of functions/manifest.ts cover what the code does, as IAM would in AWS.
 */
import type { ItemAction, KeyPrefix, Table } from './table.js';
import { PARTITION_KEY, SESSION_INDEXES } from './table.js';

export interface TableGrant {
  readonly items: Readonly<Partial<Record<KeyPrefix, readonly ItemAction[]>>>;
  readonly sessionLookup: boolean;
}

/** What IAM answers a call it does not allow (the SDK's error name), without the item's key. */
export class AccessDeniedError extends Error {
  override readonly name = 'AccessDeniedException';
}

const ITEM_ACTIONS: ReadonlySet<string> = new Set(['GetItem', 'PutItem', 'UpdateItem', 'DeleteItem']);

const INDEX_NAMES: ReadonlySet<string> = new Set(Object.values(SESSION_INDEXES).map((i) => i.indexName));

/** The action (`dynamodb:PutItem`, ...) and leading key of a call; the key only for item operations. */
export function describeCall(operation: string, input: object): { action: string; leadingKey?: string; indexName?: string } {
  const fields = input as Record<string, unknown>;
  const action = `dynamodb:${operation}`;
  const item = ITEM_ACTIONS.has(operation) ? (fields['Key'] ?? fields['Item']) as Record<string, { S?: string }> | undefined : undefined;
  const leadingKey = item?.[PARTITION_KEY]?.S;
  const indexName = typeof fields['IndexName'] === 'string' ? fields['IndexName'] : undefined;
  return { action, ...(leadingKey !== undefined ? { leadingKey } : {}), ...(indexName !== undefined ? { indexName } : {}) };
}

/** Does `grant` allow `operation` with `input`? */
export function allows(grant: TableGrant, operation: string, input: object): boolean {
  const { action, leadingKey, indexName } = describeCall(operation, input);
  if (action === 'dynamodb:Query') return grant.sessionLookup && indexName !== undefined && INDEX_NAMES.has(indexName);
  if (leadingKey === undefined) return false;
  return Object.entries(grant.items).some(([prefix, actions]) => leadingKey.startsWith(prefix) && (actions as readonly string[]).includes(action));
}

/** `table` as a role with `grant` may use it: any other call throws `AccessDeniedError` before it is sent. */
export function scopedTable(table: Table, grant: TableGrant, who: string): Table {
  const call = ((operation: string, input: object, options?: unknown) => {
    if (!allows(grant, operation, input)) {
      const { action, leadingKey, indexName } = describeCall(operation, input);
      // The key's prefix only: the rest of a key may be a session id.
      const prefix = leadingKey === undefined ? '' : ` on "${leadingKey.slice(0, leadingKey.indexOf('#') + 1)}…"`;
      return Promise.reject(new AccessDeniedError(`${who} is not granted ${action}${prefix}${indexName ? ` (index ${indexName})` : ''}`));
    }
    return (table.call as (o: string, i: object, c?: unknown) => Promise<unknown>).call(table, operation, input, options);
  }) as Table['call'];
  return { name: table.name, call };
}
