/**
 * Session records, keyed by a random session id. One item holds everything about one login:
 * the encrypted upstream tokens, the native app's one-time code or rotating handle (as hashes),
 * the web session cookie (as a hash), and the refresh lease that makes concurrent refreshes of
 * one session, on any number of containers, call the provider once.
 *
 * A lease is *real* only when it was taken while the access token was stale
 * (`leaseAtExp <= leaseFreshBound`) and that token is still the stored one
 * (`leaseAtExp = atExpiresAt`). A request that finds the token fresh takes no real lease, so it
 * never blocks anyone: that is what lets one UpdateItem both serve a fresh token and, when the
 * token is stale, claim the right to refresh it.
 */
import { DeleteItemCommand, GetItemCommand, PutItemCommand, UpdateItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { isConditionFailure, N, S, toItem, type Item, type Table } from './table.js';

export interface SessionRecord {
  readonly sid: string;
  readonly provider: string;
  readonly clientId: string;
  readonly clientType: 'web' | 'native';
  readonly createdAt: number;
  /** createdAt + sessionMaxSeconds; rotation never moves it. */
  readonly maxExpiresAt: number;
  /** min(maxExpiresAt, the provider's refresh token expiry). */
  readonly hardExpiresAt: number;
  readonly idleExpiresAt: number;
  readonly expiresAt: number;
  /** Encrypted (JWE) upstream tokens. */
  readonly refreshToken?: string;
  readonly accessToken: string;
  readonly atExpiresAt: number;
  readonly idToken?: string;
  readonly scope?: string;
  /** Encrypted JSON of provider extras (e.g. XProtect's vms_token) and when they must be renewed. */
  readonly extras?: string;
  readonly extrasExpiresAt?: number;
  /** Seconds the downstream token lived when obtained, to renew it before it expires. */
  readonly extrasLifetime?: number;
  /** A stable id of this session at the downstream service (XProtect instanceId). */
  readonly instanceId?: string;
  /**
   * Encrypted JSON (JWE): the app's granted scope and nonce, and what the broker's own ID tokens
   * copy from the provider's validated ID token (lib/oidc/session-identity.ts). Written at login.
   */
  readonly identity?: string;
  // native: one-time code
  readonly codeHash?: string;
  readonly codeChallenge?: string;
  readonly codeRedirectUri?: string;
  readonly codeExpiresAt?: number;
  readonly codeUsedAt?: number;
  // native: rotating handle
  readonly handleHash?: string;
  /** The generation of the current handle: 1 at redemption, one more at each rotation. */
  readonly handleGen?: number;
  /** The current handle, encrypted, so a retry within the grace window gets the same answer. */
  readonly handleEnc?: string;
  readonly prevHandleHash?: string;
  readonly rotatedAt?: number;
  // web
  readonly cookieHash?: string;
  // refresh lease
  readonly leaseUntil?: number;
  readonly leaseOwner?: string;
  readonly leaseAtExp?: number;
  readonly leaseFreshBound?: number;
}

export const sessionKey = (sid: string) => `session#${sid}`;
const key = (sid: string) => ({ pk: S(sessionKey(sid)) });

function fromItem(item: Item): SessionRecord {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(item)) {
    if (v.S !== undefined) out[k] = v.S;
    else if (v.N !== undefined) out[k] = Number(v.N);
  }
  out['sid'] = String(out['pk']).slice('session#'.length);
  return out as unknown as SessionRecord;
}

/** Is the session still alive at `now` (TTL deletion lags, so this is checked on every read)? */
export function isAlive(s: SessionRecord, now: number): boolean {
  return s.hardExpiresAt > now && s.idleExpiresAt > now;
}

/** Is a real refresh lease held on this session at `now`? */
export function hasActiveLease(s: SessionRecord, now: number): boolean {
  return s.leaseUntil !== undefined && s.leaseUntil > now && s.leaseAtExp === s.atExpiresAt
    && s.leaseAtExp !== undefined && s.leaseFreshBound !== undefined && s.leaseAtExp <= s.leaseFreshBound;
}

export async function createSession(table: Table, s: Omit<SessionRecord, 'sid'> & { sid: string }): Promise<void> {
  const { sid, ...rest } = s;
  await table.send(new PutItemCommand({
    TableName: table.name,
    Item: { ...key(sid), kind: S('session'), ...toItem(rest as Record<string, string | number | undefined>) },
    ConditionExpression: 'attribute_not_exists(pk)',
  }));
}

export async function getSession(table: Table, sid: string): Promise<SessionRecord | undefined> {
  const out = await table.send(new GetItemCommand({ TableName: table.name, Key: key(sid), ConsistentRead: true }));
  return out.Item ? fromItem(out.Item) : undefined;
}

/** Deletes a session, optionally only under a condition; resolves the deleted record. */
export async function deleteSession(table: Table, sid: string, condition?: Condition): Promise<SessionRecord | undefined> {
  try {
    const out = await table.send(new DeleteItemCommand({
      TableName: table.name,
      Key: key(sid),
      ReturnValues: 'ALL_OLD',
      ...(condition ? { ConditionExpression: condition.expression, ExpressionAttributeValues: condition.values } : {}),
    }));
    return out.Attributes ? fromItem(out.Attributes) : undefined;
  } catch (err) {
    if (isConditionFailure(err)) return undefined;
    throw err;
  }
}

export interface Condition {
  readonly expression: string;
  readonly values: Record<string, AttributeValue>;
}

/** A set of attribute changes, built as an UpdateExpression with placeholders only. */
export interface Changes {
  readonly set?: Record<string, string | number | undefined>;
  /** Attributes copied from other attributes of the same item: `target = source`. */
  readonly copy?: Record<string, string>;
  readonly remove?: readonly string[];
}

/**
 * A conditional UpdateItem returning the new record, or undefined when the condition failed.
 * The condition always includes that the item exists.
 */
export async function updateSession(table: Table, sid: string, condition: Condition, changes: Changes): Promise<SessionRecord | undefined> {
  const names: Record<string, string> = {};
  const values: Record<string, AttributeValue> = { ...condition.values };
  const sets: string[] = [];
  let i = 0;
  const name = (attr: string) => {
    const n = `#${attr}`;
    names[n] = attr;
    return n;
  };
  for (const [attr, value] of Object.entries(changes.set ?? {})) {
    if (value === undefined) continue;
    const v = `:u${i++}`;
    values[v] = typeof value === 'number' ? N(value) : S(value);
    sets.push(`${name(attr)} = ${v}`);
  }
  for (const [target, source] of Object.entries(changes.copy ?? {})) sets.push(`${name(target)} = ${name(source)}`);
  const removes = (changes.remove ?? []).map(name);
  const expression = [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' ');
  if (!expression) throw new TypeError('updateSession without changes');
  try {
    const out = await table.send(new UpdateItemCommand({
      TableName: table.name,
      Key: key(sid),
      ConditionExpression: `attribute_exists(pk) AND (${condition.expression})`,
      UpdateExpression: expression,
      ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
      ExpressionAttributeValues: values,
      ReturnValues: 'ALL_NEW',
    }));
    return out.Attributes ? fromItem(out.Attributes) : undefined;
  } catch (err) {
    if (isConditionFailure(err)) return undefined;
    throw err;
  }
}

/**
 * The condition under which a refresh request may proceed without waiting: the session is alive
 * and no real lease is held on it. Even a request that finds the token fresh waits for a real
 * lease: its clock may lag the lease holder's, and its write would void the lease.
 * Placeholder: `:now`.
 */
export const REFRESH_MAY_PROCEED =
  'hardExpiresAt > :now AND idleExpiresAt > :now AND (attribute_not_exists(leaseUntil) ' +
  'OR leaseUntil <= :now OR leaseAtExp <> atExpiresAt OR leaseAtExp > leaseFreshBound)';
