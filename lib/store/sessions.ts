/**
 * Session records, keyed by a random session id. One item holds everything about one login:
 * the encrypted upstream tokens, the native app's one-time code or rotating handle (as hashes),
 * the web session cookie (as a hash), and the refresh lease that makes concurrent refreshes of
 * one session, on any number of containers, call the provider once.
 *
 * Every write is one conditional single-item operation named for what it means (`claimRefresh`,
 * `completeRefresh`, `releaseLease`, `redeemCode`, ...). Each is idempotent under the SDK's
 * retries: when a retried write finds its own first attempt applied (its condition now fails),
 * the operation recognises the item as its own (by the owner token or the hash it wrote) and
 * reports success. Items are parsed into typed records; nothing outside this module sees an
 * expression string or an attribute value. The state machine these operations implement is in
 * docs/design.md, "Refreshing: a state machine of the session item".
 */
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import * as v from 'valibot';
import { BrokerUnavailableError } from '../errors.js';
import { isConditionFailure, KEY_PREFIXES, N, S, SESSION_INDEXES, toItem, type Item, type Table } from './table.js';

const int = v.pipe(v.number(), v.integer());
const str = v.string();

const SessionSchema = v.object({
  sid: str,
  provider: str,
  clientId: str,
  clientType: v.picklist(['web', 'native']),
  createdAt: int,
  /** createdAt + sessionMaxSeconds; rotation never moves it. */
  maxExpiresAt: int,
  /** min(maxExpiresAt, the provider's refresh token expiry). */
  hardExpiresAt: int,
  idleExpiresAt: int,
  /** The TTL attribute: min(idleExpiresAt, hardExpiresAt). */
  expiresAt: int,
  /** Encrypted (JWE) upstream tokens. */
  refreshToken: v.optional(str),
  accessToken: str,
  atExpiresAt: int,
  idToken: v.optional(str),
  scope: v.optional(str),
  /** Encrypted JSON of provider extras (e.g. XProtect's vms_token) and when they must be renewed. */
  extras: v.optional(str),
  extrasExpiresAt: v.optional(int),
  /** Seconds the downstream token lived when obtained, to renew it before it expires. */
  extrasLifetime: v.optional(int),
  /** A stable id of this session at the downstream service (XProtect instanceId). */
  instanceId: v.optional(str),
  /**
   * Encrypted JSON (JWE): the app's granted scope and nonce, and what the broker's own ID tokens
   * copy from the provider's validated ID token (lib/oidc/session-identity.ts). Written at login.
   */
  identity: v.optional(str),
  /**
   * Keyed hashes of the provider's name and its `sub` / `sid` from the validated ID token
   * (lib/broker/session-lookup.ts): the keys of the sparse indexes that back-channel logout and
   * the operator CLI find a user's sessions by. Written at login, never changed.
   */
  idpSubKey: v.optional(str),
  idpSidKey: v.optional(str),
  // native: one-time code
  codeHash: v.optional(str),
  codeChallenge: v.optional(str),
  codeRedirectUri: v.optional(str),
  codeExpiresAt: v.optional(int),
  codeUsedAt: v.optional(int),
  // native: rotating handle
  handleHash: v.optional(str),
  /** The generation of the current handle: 1 at redemption, one more at each rotation. */
  handleGen: v.optional(int),
  /** The current handle, encrypted, so a retry gets the same answer. */
  handleEnc: v.optional(str),
  prevHandleHash: v.optional(str),
  /** When the current handle was handed out (the rotation committed). */
  rotatedAt: v.optional(int),
  // web
  cookieHash: v.optional(str),
  // refresh lease
  /** The owner token of the last request that wrote the lease; kept after the lease ends, so a retried write knows its own. */
  leaseOwner: v.optional(str),
  leaseUntil: v.optional(int),
  leaseAtExp: v.optional(int),
  leaseFreshBound: v.optional(int),
  /** 1 when the lease's request rotated the handle: the rotation is pending until it completes. */
  leaseRotates: v.optional(int),
  // provider answers that are neither tokens nor an OAuth error (see `recordRejection`)
  rejectedSince: v.optional(int),
  rejectedCount: v.optional(int),
  /** When an API behind the proxy last had the stored access token marked spent (see `markAccessTokenSpent`). */
  spentMarkedAt: v.optional(int),
});

declare const parsed: unique symbol;
/** A stored session, as only `parseSession` makes it (never a cast). */
export type SessionRecord = Readonly<v.InferOutput<typeof SessionSchema>> & { readonly [parsed]: true };

export const sessionKey = (sid: string) => `${KEY_PREFIXES.session}${sid}`;
const key = (sid: string) => ({ pk: S(sessionKey(sid)) });

/**
 * A stored session that no longer parses (a corrupt record, or one this version cannot read):
 * storage trouble for every request but a logout, which ends it on a proof DynamoDB checks
 * (`endUnreadableSession`).
 */
export class UnreadableSessionError extends BrokerUnavailableError {
  override readonly name = 'UnreadableSessionError';
}

/** Parses a stored item; an item that does not parse is a corrupt record, answered as storage trouble. */
export function parseSession(item: Item): SessionRecord {
  const flat: Record<string, string | number> = {};
  for (const [k, val] of Object.entries(item)) {
    if (val.S !== undefined) flat[k] = val.S;
    else if (val.N !== undefined) flat[k] = Number(val.N);
  }
  const pk = flat['pk'];
  if (typeof pk === 'string' && pk.startsWith(KEY_PREFIXES.session)) flat['sid'] = pk.slice(KEY_PREFIXES.session.length);
  const out = v.safeParse(SessionSchema, flat);
  if (!out.success) {
    const fields = out.issues.map((i) => v.getDotPath(i) ?? '?').join(', ');
    throw new UnreadableSessionError('a stored session could not be read', { cause: new TypeError(`session item fails its schema at ${fields}`) });
  }
  return out.output as SessionRecord;
}

/** Is the session still alive at `now` (TTL deletion lags, so this is checked on every read)? */
export function isAlive(s: SessionRecord, now: number): boolean {
  return s.hardExpiresAt > now && s.idleExpiresAt > now;
}

/**
 * The lease on a session at `now`. A lease is *real* only when it was taken while the access
 * token was stale (`leaseAtExp <= leaseFreshBound`) and that token is still the stored one
 * (`leaseAtExp = atExpiresAt`): a request that found the token fresh writes lease fields that
 * block no one. A real lease is `active` until `leaseUntil`, then `abandoned` (its holder died).
 */
export function leaseState(s: SessionRecord, now: number): 'none' | 'active' | 'abandoned' {
  if (s.leaseUntil === undefined || s.leaseAtExp === undefined || s.leaseFreshBound === undefined) return 'none';
  if (s.leaseAtExp !== s.atExpiresAt || s.leaseAtExp > s.leaseFreshBound) return 'none';
  return s.leaseUntil > now ? 'active' : 'abandoned';
}

/** Does a real lease (active or abandoned) hold a native rotation that has not been handed out? */
export function rotationPending(s: SessionRecord, now: number): boolean {
  return s.leaseRotates === 1 && leaseState(s, now) !== 'none';
}

/**
 * The condition under which a refresh may take the lease: the session is alive and no real lease
 * is active. Even a request that finds the token fresh waits for an active lease: its clock may
 * lag the holder's, and its write would void the lease. Placeholder: `:now`.
 */
const MAY_TAKE_LEASE =
  'hardExpiresAt > :now AND idleExpiresAt > :now AND (attribute_not_exists(leaseUntil) ' +
  'OR leaseUntil <= :now OR leaseAtExp <> atExpiresAt OR leaseAtExp > leaseFreshBound)';

const LEASE_FIELDS = ['leaseUntil', 'leaseAtExp', 'leaseFreshBound', 'leaseRotates'] as const;
/** A native session's one-time code, kept after redemption only while its replays are tracked. */
const CODE_FIELDS = ['codeHash', 'codeChallenge', 'codeRedirectUri', 'codeExpiresAt', 'codeUsedAt'] as const;

/** The result of a conditional write: the record as written, or the record as found (undefined: no item). */
export type WriteResult =
  | { readonly ok: true; readonly session: SessionRecord }
  | { readonly ok: false; readonly current: SessionRecord | undefined };

export async function getSession(table: Table, sid: string): Promise<SessionRecord | undefined> {
  const out = await table.call('GetItem', { TableName: table.name, Key: key(sid), ConsistentRead: true });
  return out.Item ? parseSession(out.Item) : undefined;
}

export type NewSession = Omit<v.InferInput<typeof SessionSchema>, 'sid'> & { readonly sid: string };

/**
 * Creates a session. The condition lets the SDK's retry of an applied put succeed: the item
 * then holds this request's code or cookie hash, 256 bits no one else has.
 */
export async function createSession(table: Table, s: NewSession): Promise<void> {
  const { sid, ...rest } = s;
  const own = s.codeHash !== undefined ? { expression: 'codeHash = :own', value: s.codeHash } : { expression: 'cookieHash = :own', value: s.cookieHash ?? '' };
  await table.call('PutItem', {
    TableName: table.name,
    Item: { ...key(sid), kind: S('session'), ...toItem(rest as Record<string, string | number | undefined>) },
    ConditionExpression: `attribute_not_exists(pk) OR ${own.expression}`,
    ExpressionAttributeValues: { ':own': S(own.value) },
  });
}

/** How a refresh request proves it may use the session. */
export type RefreshCredential =
  | { readonly kind: 'handle'; readonly hash: string; readonly clientId: string }
  /** `clientIds`: when the browser sent an Origin, the clients that allow it. */
  | { readonly kind: 'cookie'; readonly hash: string; readonly clientIds?: readonly string[] };

/**
 * The condition that a credential is this session's: a native handle (`handle`: which handle
 * attributes may match `:h`) of that client, or the cookie, of a client that allows the Origin
 * when the browser sent one (none allowing it: a condition that never holds).
 */
function credentialCondition(credential: RefreshCredential, handle: string): { condition: string; values: Record<string, AttributeValue> } {
  const values: Record<string, AttributeValue> = { ':h': S(credential.hash) };
  if (credential.kind === 'handle') {
    values[':c'] = S(credential.clientId);
    return { condition: `${handle} AND clientId = :c`, values };
  }
  let condition = 'cookieHash = :h';
  if (credential.clientIds) {
    credential.clientIds.forEach((id, i) => (values[`:c${i}`] = S(id)));
    condition += credential.clientIds.length ? ` AND clientId IN (${credential.clientIds.map((_, i) => `:c${i}`).join(', ')})` : ' AND attribute_not_exists(pk)';
  }
  return { condition, values };
}

export interface LeaseTerms {
  readonly now: number;
  /** now + minAccessTokenSeconds: a token expiring by then is stale. */
  readonly fresh: number;
  readonly until: number;
  readonly owner: string;
}

/** A native handle as written: its hash, generation and encrypted value. */
export interface StoredHandle {
  readonly hash: string;
  readonly generation: number;
  readonly enc: string;
}

/**
 * The first write of every refresh: checks the credential and the session's life, extends the
 * idle time, writes lease fields (real only if the token is stale, see `leaseState`) and, for a
 * handle, rotates it. If the lease turns out real, the rotation stays pending until
 * `completeRefresh`; if not, this write is the whole refresh and the new handle is handed out.
 */
export async function claimRefresh(table: Table, sid: string, credential: RefreshCredential, lease: LeaseTerms, idleUntil: number, rotation?: StoredHandle): Promise<WriteResult> {
  const { condition, values } = credentialCondition(credential, 'handleHash = :h');
  const set: Record<string, string | number> = {
    idleExpiresAt: idleUntil,
    expiresAt: idleUntil,
    leaseUntil: lease.until,
    leaseOwner: lease.owner,
    leaseFreshBound: lease.fresh,
  };
  const copy: Record<string, string> = { leaseAtExp: 'atExpiresAt' };
  const remove: string[] = [];
  if (rotation) {
    Object.assign(set, { handleHash: rotation.hash, handleGen: rotation.generation, handleEnc: rotation.enc, rotatedAt: lease.now, leaseRotates: 1 });
    copy['prevHandleHash'] = 'handleHash';
  } else {
    remove.push('leaseRotates');
  }
  // The idle time moves, but never past the session's hard end (expiresAt is the TTL).
  const result = await update(table, sid, `${condition} AND ${MAY_TAKE_LEASE}`, { ...values, ':now': N(lease.now) }, { set, copy, remove });
  if (result.ok || !result.current) return result;
  // The SDK's retry of this very write, applied the first time, fails its own condition.
  const own = result.current.leaseOwner === lease.owner && (!rotation || result.current.handleHash === rotation.hash);
  return own ? { ok: true, session: result.current } : result;
}

/**
 * Takes the lease for a request that presents the previous handle: either the rotation is pending
 * and its lease was abandoned (`abandonedBy`: that lease's owner; the pending rotation is kept and
 * will be handed out), or the rotation was handed out within the grace window and the token has
 * gone stale since (no rotation: the current handle is handed out again).
 */
export async function claimFromPrevious(table: Table, sid: string, prevHash: string, clientId: string, lease: LeaseTerms, abandonedBy?: string): Promise<WriteResult> {
  const values: Record<string, AttributeValue> = { ':p': S(prevHash), ':c': S(clientId), ':now': N(lease.now) };
  let condition = `prevHandleHash = :p AND clientId = :c AND ${MAY_TAKE_LEASE}`;
  const set: Record<string, string | number> = { leaseUntil: lease.until, leaseOwner: lease.owner };
  const copy: Record<string, string> = {};
  const remove: string[] = [];
  if (abandonedBy !== undefined) {
    values[':old'] = S(abandonedBy);
    condition += ' AND leaseOwner = :old AND leaseRotates = :one';
    values[':one'] = N(1);
  } else {
    set['leaseFreshBound'] = lease.fresh;
    copy['leaseAtExp'] = 'atExpiresAt';
    remove.push('leaseRotates');
  }
  const result = await update(table, sid, condition, values, { set, copy, remove });
  if (result.ok || !result.current) return result;
  return result.current.leaseOwner === lease.owner && result.current.leaseUntil !== undefined ? { ok: true, session: result.current } : result;
}

/** What the lease holder stores after an upstream refresh. */
export interface RefreshedFields {
  readonly accessToken: string;
  readonly atExpiresAt: number;
  readonly hardExpiresAt: number;
  readonly expiresAt: number;
  readonly refreshToken?: string | undefined;
  readonly idToken?: string | undefined;
  readonly scope?: string | undefined;
  readonly extras?: string | undefined;
  readonly extrasExpiresAt?: number | undefined;
  readonly extrasLifetime?: number | undefined;
  readonly instanceId?: string | undefined;
}

/**
 * The lease holder's final write: stores the new tokens and ends the lease. For a native session
 * whose rotation is pending, `handOut` either hands it out (a time: the new `rotatedAt`, from which
 * the grace window runs) or rolls it back (the presented handle, current again). Conditioned on
 * the owner token; a retry of an applied write finds the owner with no lease and reports success.
 * `forgetCode`: the redeemed code's fields go too, once its replays are no longer tracked.
 */
export async function completeRefresh(table: Table, sid: string, owner: string, fields: RefreshedFields, handOut: number | StoredHandle | undefined, deadline?: number, forgetCode = false): Promise<WriteResult> {
  const set: Record<string, string | number | undefined> = { ...fields };
  const remove: string[] = [...LEASE_FIELDS, 'rejectedSince', 'rejectedCount', ...(forgetCode ? CODE_FIELDS : [])];
  if (typeof handOut === 'number') set['rotatedAt'] = handOut;
  else if (handOut) {
    Object.assign(set, { handleHash: handOut.hash, handleGen: handOut.generation, handleEnc: handOut.enc });
    remove.push('prevHandleHash', 'rotatedAt');
  }
  const result = await update(table, sid, 'leaseOwner = :o AND attribute_exists(leaseUntil)', { ':o': S(owner) }, { set, copy: {}, remove }, deadline);
  if (result.ok || !result.current) return result;
  return result.current.leaseOwner === owner && result.current.leaseUntil === undefined ? { ok: true, session: result.current } : result;
}

/**
 * Ends a session whose provider refused its refresh token, only while the lease is still this
 * request's: if another request took the lease over, it has the last word. Resolves whether the
 * session is gone (a retry of an applied delete finds no item, which is the same).
 */
export async function endSessionHeldBy(table: Table, sid: string, owner: string): Promise<boolean> {
  try {
    await table.call('DeleteItem', {
      TableName: table.name,
      Key: key(sid),
      ConditionExpression: 'attribute_not_exists(pk) OR leaseOwner = :o',
      ExpressionAttributeValues: { ':o': S(owner) },
    });
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/**
 * Rolls a handed-out rotation back when the request that made it fails after all (its downstream
 * login failed and there is no valid old downstream token, `seenExtrasExpiresAt` being the one it
 * read): the presented handle is current again. Not once another request has stored a renewed
 * downstream token: that request was a retry within the grace window, and the new handle went
 * out with it (`storeDownstream`). Resolves that record then (the rotation stands, with a valid
 * downstream token to hand out), else undefined.
 */
export async function rollBackRotation(table: Table, sid: string, currentHash: string, restore: StoredHandle, seenExtrasExpiresAt: number | undefined): Promise<SessionRecord | undefined> {
  const values: Record<string, AttributeValue> = { ':cur': S(currentHash) };
  let condition = 'handleHash = :cur AND ';
  if (seenExtrasExpiresAt === undefined) condition += 'attribute_not_exists(extrasExpiresAt)';
  else {
    condition += 'extrasExpiresAt = :seen';
    values[':seen'] = N(seenExtrasExpiresAt);
  }
  const result = await update(table, sid, condition, values, {
    set: { handleHash: restore.hash, handleGen: restore.generation, handleEnc: restore.enc },
    copy: {},
    remove: ['prevHandleHash', 'rotatedAt'],
  });
  if (result.ok || !result.current) return undefined;
  const { current } = result;
  return current.handleHash === currentHash && current.extrasExpiresAt !== seenExtrasExpiresAt ? current : undefined;
}

/**
 * Gives a lease back after a failed refresh. A pending rotation is rolled back: the presented
 * handle (`restore`) is current again, so the app's retry with it works. With `rejectedAt`, the
 * provider's answer was neither tokens nor an OAuth error, and the session counts it (see
 * docs/design.md, "A provider that answers garbage"). With `refreshToken` (encrypted), a refused
 * answer carried a new refresh token, which replaces the one a rotating provider has retired.
 * Resolves the record as left, or undefined
 * when the lease was no longer this owner's.
 */
export async function releaseLease(table: Table, sid: string, owner: string, restore?: StoredHandle, rejectedAt?: number, refreshToken?: string): Promise<SessionRecord | undefined> {
  const set: Record<string, string | number> = {};
  const remove: string[] = [...LEASE_FIELDS];
  if (refreshToken !== undefined) set['refreshToken'] = refreshToken;
  if (restore) {
    Object.assign(set, { handleHash: restore.hash, handleGen: restore.generation, handleEnc: restore.enc });
    remove.push('prevHandleHash', 'rotatedAt');
  }
  const values: Record<string, AttributeValue> = { ':o': S(owner) };
  const counters = rejectedAt === undefined ? undefined : { since: rejectedAt };
  const result = await update(table, sid, 'leaseOwner = :o AND attribute_exists(leaseUntil)', values, { set, copy: {}, remove, counters });
  if (result.ok) return result.session;
  return result.current?.leaseOwner === owner && result.current.leaseUntil === undefined ? result.current : undefined;
}

/**
 * Stores a renewed downstream token, unless an upstream refresh replaced the access token meanwhile.
 * `handedOut`: the hash of the handle the answer will carry (native), which must still be the
 * session's current or previous one: a rotation the request that made it has rolled back
 * (`rollBackRotation`) is not handed out with a new downstream token.
 */
export async function storeDownstream(table: Table, sid: string, atExpiresAt: number, fields: Pick<RefreshedFields, 'extras' | 'extrasExpiresAt' | 'extrasLifetime' | 'instanceId'>, handedOut?: string): Promise<WriteResult> {
  const values: Record<string, AttributeValue> = { ':a': N(atExpiresAt) };
  let condition = 'atExpiresAt = :a';
  if (handedOut !== undefined) {
    condition += ' AND (handleHash = :h OR prevHandleHash = :h)';
    values[':h'] = S(handedOut);
  }
  return update(table, sid, condition, values, { set: { ...fields }, copy: {}, remove: [] });
}

/** The access token a request used, as it read it: its expiry and its ciphertext. */
export interface SeenAccessToken {
  readonly atExpiresAt: number;
  readonly accessToken: string;
}

export type SpentResult =
  /** Marked now (or by this request's own write that the SDK retried, or by another request: the same outcome). */
  | { readonly ok: true; readonly session: SessionRecord }
  /**
   * Not marked: `replaced` (the token is no longer the stored one: a refresh got there first),
   * `refreshing` (a real lease is on it: its refresh is under way or will be taken over), `recent`
   * (a token of this session was marked less than `minInterval` ago), `gone` (no session).
   */
  | { readonly ok: false; readonly reason: 'replaced' | 'refreshing' | 'recent' | 'gone' };

/**
 * An API refused the stored access token (`401`): marks it spent, so that the next request
 * refreshes upstream (through the same claim, lease and single flight as every refresh). The mark
 * sets `atExpiresAt` to `spentAt - 1`, a time already past, only
 *
 * - while that token (its expiry and its very ciphertext) is still the stored one: a token a
 *   refresh has replaced meanwhile is never touched;
 * - while no real lease is on it (`leaseState` not `none`): changing `atExpiresAt` would make a
 *   real lease look unreal and let a second request refresh beside its holder; the holder is
 *   replacing the token anyway;
 * - at most once per `minInterval` seconds per session (`spentMarkedAt`), so an API that answers
 *   `401` to every token cannot make each proxied call an upstream refresh.
 *
 * A leftover lease field set (from a request that found the token fresh) does not matter: its
 * `leaseAtExp` no longer equals `atExpiresAt`, so it stays unreal. A retried write that finds its
 * own mark (the same ciphertext, `atExpiresAt` spent, `spentMarkedAt` its time) reports success.
 */
export async function markAccessTokenSpent(table: Table, sid: string, seen: SeenAccessToken, spentAt: number, minInterval: number): Promise<SpentResult> {
  const condition = 'atExpiresAt = :seen AND accessToken = :token'
    + ' AND (attribute_not_exists(leaseUntil) OR leaseAtExp <> atExpiresAt OR leaseAtExp > leaseFreshBound)'
    + ' AND (attribute_not_exists(spentMarkedAt) OR spentMarkedAt <= :recent)';
  const result = await update(table, sid, condition, { ':seen': N(seen.atExpiresAt), ':token': S(seen.accessToken), ':recent': N(spentAt - minInterval) }, {
    set: { atExpiresAt: spentAt - 1, spentMarkedAt: spentAt },
    copy: {},
    remove: [],
  });
  if (result.ok) return result;
  const s = result.current;
  if (!s) return { ok: false, reason: 'gone' };
  if (s.accessToken !== seen.accessToken) return { ok: false, reason: 'replaced' };
  if (s.atExpiresAt < seen.atExpiresAt && s.spentMarkedAt !== undefined && s.atExpiresAt === s.spentMarkedAt - 1) return { ok: true, session: s };
  if (s.atExpiresAt !== seen.atExpiresAt) return { ok: false, reason: 'replaced' };
  if (s.spentMarkedAt !== undefined && s.spentMarkedAt > spentAt - minInterval) return { ok: false, reason: 'recent' };
  return { ok: false, reason: 'refreshing' };
}

export interface Redemption {
  readonly codeHash: string;
  readonly clientId: string;
  readonly redirectUri: string;
  /** S256 of the presented verifier: the condition compares it with the stored challenge. */
  readonly challenge: string;
  readonly now: number;
  readonly idleUntil: number;
  readonly handle: StoredHandle;
  /** A random token of this request, written as `leaseOwner` (no lease), to know its own write. */
  readonly owner: string;
}

/**
 * Redeems a one-time code: code, expiry, client, redirect URI and PKCE are all in the condition,
 * so a wrong verifier changes nothing. Issues the first handle. A retry of an applied write finds
 * the code used by this request's owner token and reports success.
 */
export async function redeemCode(table: Table, sid: string, r: Redemption): Promise<WriteResult> {
  const result = await update(table, sid,
    'codeHash = :h AND attribute_not_exists(codeUsedAt) AND codeExpiresAt > :now AND clientId = :c AND codeRedirectUri = :r AND codeChallenge = :ch',
    { ':h': S(r.codeHash), ':now': N(r.now), ':c': S(r.clientId), ':r': S(r.redirectUri), ':ch': S(r.challenge) },
    { set: { codeUsedAt: r.now, handleHash: r.handle.hash, handleGen: r.handle.generation, handleEnc: r.handle.enc, idleExpiresAt: r.idleUntil, expiresAt: r.idleUntil, leaseOwner: r.owner }, copy: {}, remove: [] });
  if (result.ok || !result.current) return result;
  // The first handle is the same for every redemption of a code (credentials.ts): the owner token tells.
  return result.current.codeUsedAt !== undefined && result.current.leaseOwner === r.owner ? { ok: true, session: result.current } : result;
}

/**
 * Undoes a redemption whose follow-up refresh failed, so the app's retry with the same code
 * works: only while the first handle is still current and unused.
 */
export async function unredeemCode(table: Table, sid: string, handleHash: string, codeExpiresAt: number): Promise<boolean> {
  const result = await update(table, sid, 'handleHash = :h AND handleGen = :one AND attribute_exists(codeUsedAt) AND attribute_not_exists(leaseUntil)', { ':h': S(handleHash), ':one': N(1) }, {
    set: { idleExpiresAt: codeExpiresAt, expiresAt: codeExpiresAt },
    copy: {},
    remove: ['codeUsedAt', 'handleHash', 'handleGen', 'handleEnc', 'prevHandleHash', 'rotatedAt'],
  });
  return result.ok || (result.current !== undefined && result.current.codeUsedAt === undefined);
}

/** Ends a session: deletes it and resolves what it held (undefined: it was already gone). */
export async function endSession(table: Table, sid: string): Promise<SessionRecord | undefined> {
  const out = await table.call('DeleteItem', { TableName: table.name, Key: key(sid), ReturnValues: 'ALL_OLD' });
  return out.Attributes ? parseSession(out.Attributes) : undefined;
}

/** Who may end a session: a refresh credential (`POST /logout`), or a broker ID token's client and provider (`/end-session`). */
export type SessionOwner = RefreshCredential | { readonly kind: 'client'; readonly clientId: string; readonly provider: string };

/**
 * The session a logout names, read (strongly consistent) before it is ended, when `owner` may
 * end it: the test `credentialCondition` makes in DynamoDB (a native handle, current or previous,
 * of that client; the cookie, of a client allowing the Origin), or a broker ID token's client and
 * provider. Logout reads first so that what the session holds (the provider's refresh token, to
 * revoke) is known before the delete: a delete whose answer is lost, retried by the client, finds
 * the item gone, and an item once deleted tells nothing (lib/broker/logout.ts, `endHeldSession`).
 */
export async function findSessionOf(table: Table, sid: string, owner: SessionOwner): Promise<SessionRecord | undefined> {
  const s = await getSession(table, sid);
  return s && isOwner(s, owner) ? s : undefined;
}

function isOwner(s: SessionRecord, owner: SessionOwner): boolean {
  switch (owner.kind) {
    case 'handle':
      return (s.handleHash === owner.hash || s.prevHandleHash === owner.hash) && s.clientId === owner.clientId;
    case 'cookie':
      return s.cookieHash === owner.hash && (owner.clientIds === undefined || owner.clientIds.includes(s.clientId));
    case 'client':
      return s.clientId === owner.clientId && s.provider === owner.provider;
  }
}

/**
 * Ends a session whose item no longer parses (`UnreadableSessionError`), when `owner` may end it:
 * the same test as `findSessionOf`, made by DynamoDB in the delete's condition, so that nothing of
 * the item need be read. A logout must work even then; what the item held is not read, so its
 * provider refresh token cannot be revoked. False when it is gone or not `owner`'s.
 */
export async function endUnreadableSession(table: Table, sid: string, owner: SessionOwner): Promise<boolean> {
  const { condition, values } = owner.kind === 'client'
    ? { condition: 'clientId = :c AND provider = :p', values: { ':c': S(owner.clientId), ':p': S(owner.provider) } }
    : credentialCondition(owner, '(handleHash = :h OR prevHandleHash = :h)');
  try {
    await table.call('DeleteItem', { TableName: table.name, Key: key(sid), ConditionExpression: `attribute_exists(pk) AND ${condition}`, ExpressionAttributeValues: values });
    return true;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

/** Ends a session named by a broker ID token (RP-initiated logout), only if it is that client's at that provider. */
export async function endSessionOf(table: Table, sid: string, owner: { readonly clientId: string; readonly provider: string }): Promise<SessionRecord | undefined> {
  return deleteIf(table, sid, 'clientId = :c AND provider = :p', { ':c': S(owner.clientId), ':p': S(owner.provider) });
}

/** A conditional delete resolving what the item held; undefined when it was gone or not as required. */
async function deleteIf(table: Table, sid: string, condition: string, values: Record<string, AttributeValue>): Promise<SessionRecord | undefined> {
  try {
    const out = await table.call('DeleteItem', {
      TableName: table.name,
      Key: key(sid),
      ReturnValues: 'ALL_OLD',
      ConditionExpression: condition,
      ExpressionAttributeValues: values,
    });
    return out.Attributes ? parseSession(out.Attributes) : undefined;
  } catch (err) {
    if (isConditionFailure(err)) return undefined;
    throw err;
  }
}

/**
 * Which sessions a provider's logout (or an operator) names, as lookup keys made under one key of
 * the ring: every session of the user (`subKey`), or those of one provider session (`sidKey`; with
 * `subKey` too, only those with both).
 */
export type SessionMatch =
  | { readonly provider: string; readonly subKey: string; readonly sidKey?: undefined }
  | { readonly provider: string; readonly sidKey: string; readonly subKey?: string };

/**
 * The ids of the sessions a match names, from the sparse index of `sid` or else `sub` (one Query
 * per page; keys only). The index is eventually consistent: it may still list a session that has
 * ended, which `endMatchingSession` then finds gone, and a session written a moment ago may not be
 * listed yet.
 */
export async function findMatchingSessions(table: Table, match: SessionMatch): Promise<string[]> {
  const index = match.sidKey !== undefined ? SESSION_INDEXES.sid : SESSION_INDEXES.sub;
  const value = match.sidKey ?? match.subKey!;
  const sids: string[] = [];
  let start: Item | undefined;
  do {
    const out = await table.call('Query', {
      TableName: table.name,
      IndexName: index.indexName,
      KeyConditionExpression: '#k = :k',
      ExpressionAttributeNames: { '#k': index.attribute },
      ExpressionAttributeValues: { ':k': S(value) },
      ...(start ? { ExclusiveStartKey: start } : {}),
    });
    for (const item of out.Items ?? []) {
      const pk = item['pk']?.S;
      if (pk?.startsWith(KEY_PREFIXES.session)) sids.push(pk.slice(KEY_PREFIXES.session.length));
    }
    start = out.LastEvaluatedKey;
  } while (start);
  return sids;
}

/**
 * Ends (deletes) a session the index listed, only if the item itself still matches: the provider
 * and the lookup keys are in the condition, so a stale index entry can never end another session.
 * Resolves true when this call deleted it; false when it was already gone (also when the SDK
 * retried this very delete after it applied: the effect is the same) or does not match.
 */
export async function endMatchingSession(table: Table, sid: string, match: SessionMatch): Promise<boolean> {
  const values: Record<string, AttributeValue> = { ':p': S(match.provider) };
  let condition = 'provider = :p';
  if (match.subKey !== undefined) {
    values[':u'] = S(match.subKey);
    condition += ` AND ${SESSION_INDEXES.sub.attribute} = :u`;
  }
  if (match.sidKey !== undefined) {
    values[':s'] = S(match.sidKey);
    condition += ` AND ${SESSION_INDEXES.sid.attribute} = :s`;
  }
  try {
    const out = await table.call('DeleteItem', {
      TableName: table.name,
      Key: key(sid),
      // A session already gone is no failure: ending is idempotent.
      ConditionExpression: `attribute_not_exists(pk) OR (${condition})`,
      ExpressionAttributeValues: values,
      ReturnValues: 'ALL_OLD',
    });
    return out.Attributes !== undefined;
  } catch (err) {
    if (isConditionFailure(err)) return false;
    throw err;
  }
}

interface Changes {
  readonly set: Record<string, string | number | undefined>;
  /** Attributes copied from other attributes of the same item: `target = source`. */
  readonly copy: Record<string, string>;
  readonly remove: readonly string[];
  /** Counts a rejected provider answer: `rejectedSince` kept if set, `rejectedCount` + 1. */
  readonly counters?: { readonly since: number };
}

/**
 * A conditional UpdateItem returning the new record; when the condition fails, one consistent
 * read returns the record as it is (so callers can tell their own retried write from a refusal).
 */
async function update(table: Table, sid: string, condition: string, conditionValues: Record<string, AttributeValue>, changes: Changes, deadline?: number): Promise<WriteResult> {
  const names: Record<string, string> = {};
  const values: Record<string, AttributeValue> = { ...conditionValues };
  const sets: string[] = [];
  let i = 0;
  const name = (attr: string) => {
    names[`#${attr}`] = attr;
    return `#${attr}`;
  };
  const value = (val: string | number) => {
    const ph = `:u${i++}`;
    values[ph] = typeof val === 'number' ? N(val) : S(val);
    return ph;
  };
  for (const [attr, val] of Object.entries(changes.set)) if (val !== undefined) sets.push(`${name(attr)} = ${value(val)}`);
  for (const [target, source] of Object.entries(changes.copy)) sets.push(`${name(target)} = ${name(source)}`);
  if (changes.counters) {
    sets.push(`${name('rejectedSince')} = if_not_exists(${name('rejectedSince')}, ${value(changes.counters.since)})`);
    sets.push(`${name('rejectedCount')} = if_not_exists(${name('rejectedCount')}, ${value(0)}) + ${value(1)}`);
  }
  const removes = changes.remove.filter((a) => !(a in changes.set && changes.set[a] !== undefined)).map(name);
  const expression = [sets.length ? `SET ${sets.join(', ')}` : '', removes.length ? `REMOVE ${removes.join(', ')}` : ''].filter(Boolean).join(' ');
  if (!expression) throw new TypeError('an update without changes');
  try {
    const out = await table.call('UpdateItem', {
      TableName: table.name,
      Key: key(sid),
      ConditionExpression: `attribute_exists(pk) AND (${condition})`,
      UpdateExpression: expression,
      ...(Object.keys(names).length ? { ExpressionAttributeNames: names } : {}),
      ExpressionAttributeValues: values,
      ReturnValues: 'ALL_NEW',
    }, deadline === undefined ? undefined : { deadline });
    if (!out.Attributes) throw new TypeError('UpdateItem returned no attributes');
    return { ok: true, session: parseSession(out.Attributes) };
  } catch (err) {
    if (!isConditionFailure(err)) throw err;
    return { ok: false, current: await getSession(table, sid) };
  }
}
