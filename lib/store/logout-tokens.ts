/**
 * The replay cache of back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.6 step 8 and
 * §4.2 of the contract): one item per `jti` a provider used, kept for as long as the token could be
 * accepted, written with one conditional `PutItem`.
 *
 * Item: `pk` = `logout-jti#<sha256(provider NUL jti)>`, `owner` (a random token of the request that
 * wrote it), `startedAt`, `doneAt` once its sessions are ended, `expiresAt` (TTL). The `jti`
 * itself is not stored. Two phases, so that a request that dies between recording the token and
 * ending its sessions (a crash, the function's timeout, storage gone for its clean-up) does not
 * turn the provider's retry into a "replay" that ends nothing: a record without `doneAt` older than
 * `ABANDONED_AFTER_SECONDS` is taken over by the next request with that token.
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { sha256 } from '../crypto/random.js';
import { isConditionFailure, LOGOUT_TOKEN_KEY_PREFIX, N, num, S, str, type Table } from './table.js';

export interface LogoutTokenUse {
  readonly provider: string;
  readonly jti: string;
  /** Until when the token could still be accepted (epoch seconds): the record lives at least that long. */
  readonly until: number;
  readonly now: number;
  /** A random token of this request, to know its own write when the SDK retries it. */
  readonly owner: string;
}

const key = (provider: string, jti: string) => ({ pk: S(`${LOGOUT_TOKEN_KEY_PREFIX}${sha256(`${provider}\u0000${jti}`)}`) });

/** A record this much older than its start, and not done, belongs to a request that died (the function's timeout is 25 s). */
export const ABANDONED_AFTER_SECONDS = 30;

/**
 * Records that a logout token is being used: `'first'` for the request that is to end its
 * sessions; `'replayed'` when the provider's `jti` is on record as done (or from before the two
 * phases); `'in-progress'` when another request recorded it moments ago and has not finished. The
 * SDK's retry of this very write, applied the first time, fails its condition and finds this
 * request's `owner`: that is `'first'`, never a replay, so a lost answer cannot turn a valid
 * logout into a 400. A record abandoned by a request that died is taken over (`'first'`).
 */
export async function rememberLogoutToken(table: Table, use: LogoutTokenUse): Promise<'first' | 'replayed' | 'in-progress'> {
  try {
    await table.call('PutItem', {
      TableName: table.name,
      Item: { ...key(use.provider, use.jti), kind: S('logout-token'), owner: S(use.owner), startedAt: N(use.now), expiresAt: N(use.until) },
      // TTL deletes late: a record that has run out may be replaced.
      ConditionExpression: 'attribute_not_exists(pk) OR expiresAt <= :now',
      ExpressionAttributeValues: { ':now': N(use.now) },
    });
    return 'first';
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
  }
  const item = await readUse(table, use);
  if (!item || (num(item, 'expiresAt') ?? 0) <= use.now) return 'replayed';
  if (str(item, 'owner') === use.owner) return 'first';
  const startedAt = num(item, 'startedAt');
  if (num(item, 'doneAt') !== undefined || startedAt === undefined) return 'replayed';
  if (use.now - startedAt < ABANDONED_AFTER_SECONDS) return 'in-progress';
  // Abandoned: this request takes it over, unless another one just did, or it was finished.
  const prev = str(item, 'owner') ?? '';
  if (await updateUse(table, use, 'SET #o = :o, startedAt = :now', '#o = :prev AND attribute_not_exists(doneAt)', { ':prev': S(prev) })) return 'first';
  // The SDK's retry of a take-over that was applied finds this request's owner.
  const now = await readUse(table, use);
  return now && str(now, 'owner') === use.owner && num(now, 'doneAt') === undefined ? 'first' : 'in-progress';
}

/** Marks a recorded use done: its sessions are ended, and the token is a replay from now on. */
export async function markLogoutTokenDone(table: Table, use: Pick<LogoutTokenUse, 'provider' | 'jti' | 'owner' | 'now'>): Promise<void> {
  await updateUse(table, use, 'SET doneAt = :now', '#o = :o');
}

const readUse = async (table: Table, use: Pick<LogoutTokenUse, 'provider' | 'jti'>) =>
  (await table.call('GetItem', { TableName: table.name, Key: key(use.provider, use.jti), ConsistentRead: true })).Item;

/** One conditional update of a use's record (`:o` this request's owner, `:now` its time); false when the condition failed. */
async function updateUse(table: Table, use: Pick<LogoutTokenUse, 'provider' | 'jti' | 'owner' | 'now'>, update: string, condition: string, values: Record<string, AttributeValue> = {}): Promise<boolean> {
  try {
    await table.call('UpdateItem', {
      TableName: table.name,
      Key: key(use.provider, use.jti),
      UpdateExpression: update,
      ConditionExpression: condition,
      ExpressionAttributeNames: { '#o': 'owner' },
      ExpressionAttributeValues: { ':o': S(use.owner), ':now': N(use.now), ...values },
    });
    return true;
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    return false;
  }
}

/**
 * Forgets a use this request recorded, when it could not finish the logout (storage trouble): the
 * provider's retry of the same token must then be served, not refused as a replay.
 */
export async function forgetLogoutToken(table: Table, use: Pick<LogoutTokenUse, 'provider' | 'jti' | 'owner'>): Promise<void> {
  try {
    await table.call('DeleteItem', {
      TableName: table.name,
      Key: key(use.provider, use.jti),
      ConditionExpression: 'attribute_not_exists(pk) OR #o = :o',
      ExpressionAttributeNames: { '#o': 'owner' },
      ExpressionAttributeValues: { ':o': S(use.owner) },
    });
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
  }
}
