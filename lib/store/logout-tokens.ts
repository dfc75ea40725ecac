/**
 * The replay cache of back-channel logout tokens (OIDC Back-Channel Logout 1.0 §2.6 step 8 and
 * §4.2 of the contract): one item per `jti` a provider used, kept for as long as the token could be
 * accepted, written with one conditional `PutItem`.
 *
 * Item: `pk` = `logout-jti#<sha256(provider NUL jti)>`, `owner` (a random token of the request that
 * wrote it), `expiresAt` (TTL). The `jti` itself is not stored.
 */
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

/**
 * Records that a logout token was used. `'replayed'` when the provider's `jti` is already on record
 * (and that record has not run out). The SDK's retry of this very write, applied the first time,
 * fails its condition and finds this request's `owner`: that is `'first'`, never a replay, so a
 * lost answer cannot turn a valid logout into a 400.
 */
export async function rememberLogoutToken(table: Table, use: LogoutTokenUse): Promise<'first' | 'replayed'> {
  try {
    await table.call('PutItem', {
      TableName: table.name,
      Item: { ...key(use.provider, use.jti), kind: S('logout-token'), owner: S(use.owner), expiresAt: N(use.until) },
      // TTL deletes late: a record that has run out may be replaced.
      ConditionExpression: 'attribute_not_exists(pk) OR expiresAt <= :now',
      ExpressionAttributeValues: { ':now': N(use.now) },
    });
    return 'first';
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
  }
  const out = await table.call('GetItem', { TableName: table.name, Key: key(use.provider, use.jti), ConsistentRead: true });
  const item = out.Item;
  return item && str(item, 'owner') === use.owner && (num(item, 'expiresAt') ?? 0) > use.now ? 'first' : 'replayed';
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
