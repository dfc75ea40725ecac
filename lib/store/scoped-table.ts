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

const ITEM_COMMANDS: Readonly<Record<string, ItemAction>> = {
  GetItemCommand: 'dynamodb:GetItem',
  PutItemCommand: 'dynamodb:PutItem',
  UpdateItemCommand: 'dynamodb:UpdateItem',
  DeleteItemCommand: 'dynamodb:DeleteItem',
};

const INDEX_NAMES: ReadonlySet<string> = new Set(Object.values(SESSION_INDEXES).map((i) => i.indexName));

/** The action (`dynamodb:PutItem`, ...) and leading key of a command; the key only for item commands. */
export function describeCommand(command: unknown): { action: string; leadingKey?: string; indexName?: string } {
  const name = (command as { constructor?: { name?: string } }).constructor?.name ?? '';
  const input = (command as { input?: Record<string, unknown> }).input ?? {};
  const action = ITEM_COMMANDS[name] ?? `dynamodb:${name.replace(/Command$/, '')}`;
  const item = (input['Key'] ?? input['Item']) as Record<string, { S?: string }> | undefined;
  const leadingKey = item?.[PARTITION_KEY]?.S;
  const indexName = typeof input['IndexName'] === 'string' ? input['IndexName'] : undefined;
  return { action, ...(leadingKey !== undefined ? { leadingKey } : {}), ...(indexName !== undefined ? { indexName } : {}) };
}

/** Does `grant` allow `command`? */
export function allows(grant: TableGrant, command: unknown): boolean {
  const { action, leadingKey, indexName } = describeCommand(command);
  if (action === 'dynamodb:Query') return grant.sessionLookup && indexName !== undefined && INDEX_NAMES.has(indexName);
  if (leadingKey === undefined) return false;
  return Object.entries(grant.items).some(([prefix, actions]) => leadingKey.startsWith(prefix) && (actions as readonly string[]).includes(action));
}

/** `table` as a role with `grant` may use it: any other call throws `AccessDeniedError` before it is sent. */
export function scopedTable(table: Table, grant: TableGrant, who: string): Table {
  const send = ((command: unknown, options?: unknown) => {
    if (!allows(grant, command)) {
      const { action, leadingKey, indexName } = describeCommand(command);
      // The key's prefix only: the rest of a key may be a session id.
      const prefix = leadingKey === undefined ? '' : ` on "${leadingKey.slice(0, leadingKey.indexOf('#') + 1)}…"`;
      return Promise.reject(new AccessDeniedError(`${who} is not granted ${action}${prefix}${indexName ? ` (index ${indexName})` : ''}`));
    }
    return (table.send as (c: unknown, o?: unknown) => Promise<unknown>)(command, options);
  }) as Table['send'];
  return { name: table.name, send };
}
