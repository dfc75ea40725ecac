/**
 * Refreshing a session, for native apps (`/token`, rotating handle) and web apps (`/refresh`,
 * session cookie). The common case is one DynamoDB call: an UpdateItem that checks the
 * credential and the session's life, extends its idle time, rotates a native handle, and either
 * finds the stored access token fresh (served as is) or, when it is stale, claims the refresh
 * lease in the same write. The lease holder makes the one upstream call and writes the result
 * (a second call). Everyone else who races it waits for that write and is served from it.
 *
 * When the first write's condition fails, one read tells why: an ended session, another
 * client's handle, a previous handle within the grace window (served the same answer), a
 * previous handle after it (reuse: the session is revoked, RFC 9700 §4.14.2), or a lease held
 * by a concurrent refresh.
 */
import type { Provider } from '../config/parse.js';
import { randomToken } from '../crypto/random.js';
import { BrokerError, DecryptionError, ForbiddenError, InvalidGrantError, SessionEndedError, TokenValidationError, UpstreamOAuthError, UpstreamUnavailableError } from '../errors.js';
import { errorFields } from '../log.js';
import { identityOf, isUnknownSigningKey, validateRefreshIdToken } from '../oauth/id-token.js';
import { withDeadline } from '../oauth/http.js';
import { refreshGrant, revokeToken, type UpstreamContext } from '../oauth/token-endpoint.js';
import type { Runtime } from '../runtime.js';
import { deleteSession, getSession, hasActiveLease, isAlive, REFRESH_MAY_PROCEED, updateSession, type SessionRecord } from '../store/sessions.js';
import { N, S } from '../store/table.js';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { isGenuine, newHandle, type Credential, type Handle } from './credentials.js';
import { renewalDue, runDownstreamLogin, sealDownstream } from './downstream.js';
import { fieldContext, grantOf, storedTokens, type TokenGrant } from './session-tokens.js';

/** Longer than any request's work (upstream calls time out at 8 s) and than the function timeout. */
export const LEASE_SECONDS = 30;
/**
 * All provider calls of one upstream refresh (token, a retry after invalid_client, the downstream
 * login) share this budget, so with the JWKS fetch and the writes they end well inside the
 * function timeout: a function killed mid-refresh could lose a refresh token just rotated.
 */
export const UPSTREAM_BUDGET_MS = 15_000;
/** How long a request waits for a concurrent refresh of the same session. */
const WAIT_MS = 15_000;
const POLL_MS = 150;

export type Presented =
  | { readonly kind: 'handle'; readonly credential: Handle; readonly clientId: string }
  /** `clientIds`: when the browser sent an Origin, the clients that allow it. */
  | { readonly kind: 'cookie'; readonly credential: Credential; readonly clientIds?: readonly string[] };

export type RefreshSource = 'stored' | 'upstream' | 'grace' | 'deduplicated';

/** A native handle rotated by this request: rolled back if the request then fails. */
interface Rotation {
  readonly from: Handle;
  readonly to: Handle;
}

export interface RefreshOutcome {
  readonly grant: TokenGrant;
  readonly session: SessionRecord;
  /** Native: the handle the app must use next. */
  readonly handle: string | undefined;
  readonly source: RefreshSource;
}

export async function refreshSession(rt: Runtime, presented: Presented): Promise<RefreshOutcome> {
  const sid = presented.credential.sid;
  const ttl = rt.config.ttl;
  const owner = randomToken(12);
  const cipher = await rt.cipher();
  const rotated = presented.kind === 'handle' ? newHandle(sid, presented.credential.generation + 1, cipher) : undefined;
  const rotatedEnc = rotated ? await cipher.encrypt(rotated.value, fieldContext(sid, 'handle')) : undefined;
  // The clock is read after every await, so the write's view of "fresh" is as current as can be.
  const now = rt.now();
  const fresh = now + ttl.minAccessTokenSeconds;

  const values: Record<string, AttributeValue> = { ':now': N(now), ':h': S(presented.credential.hash) };
  let credential: string;
  if (presented.kind === 'handle') {
    values[':c'] = S(presented.clientId);
    credential = 'handleHash = :h AND clientId = :c';
  } else {
    credential = 'cookieHash = :h';
    if (presented.clientIds) {
      presented.clientIds.forEach((id, i) => (values[`:c${i}`] = S(id)));
      credential += presented.clientIds.length ? ` AND clientId IN (${presented.clientIds.map((_, i) => `:c${i}`).join(', ')})` : ' AND attribute_not_exists(pk)';
    }
  }
  const set: Record<string, string | number> = {
    idleExpiresAt: now + ttl.sessionIdleSeconds,
    expiresAt: now + ttl.sessionIdleSeconds,
    leaseUntil: now + LEASE_SECONDS,
    leaseOwner: owner,
    leaseFreshBound: fresh,
  };
  const copy: Record<string, string> = { leaseAtExp: 'atExpiresAt' };
  if (rotated && rotatedEnc) {
    set['handleHash'] = rotated.hash;
    set['handleGen'] = rotated.generation;
    set['handleEnc'] = rotatedEnc;
    set['rotatedAt'] = now;
    copy['prevHandleHash'] = 'handleHash';
  }

  const s = await updateSession(rt.table, sid, { expression: `${credential} AND ${REFRESH_MAY_PROCEED}`, values }, { set, copy });
  if (s) {
    const rotation = rotated && presented.kind === 'handle' ? { from: presented.credential, to: rotated } : undefined;
    if (s.atExpiresAt > fresh) return serve(rt, s, 'stored', rotated?.value, rotation);
    // The token is stale and the condition held, so no one else holds a real lease: this one is ours.
    return refreshUpstream(rt, s, owner, rotated?.value, rotation);
  }
  return diagnose(rt, presented, owner);
}

async function diagnose(rt: Runtime, presented: Presented, owner: string): Promise<RefreshOutcome> {
  const sid = presented.credential.sid;
  const s = await getSession(rt.table, sid);
  const now = rt.now();
  if (!s || !isAlive(s, now)) {
    if (s) await deleteSession(rt.table, sid);
    throw new SessionEndedError();
  }
  if (presented.kind === 'cookie') {
    if (s.cookieHash !== presented.credential.hash) throw new SessionEndedError();
    if (presented.clientIds && !presented.clientIds.includes(s.clientId)) throw new ForbiddenError('this origin may not use this session');
    return waitForRefresh(rt, s, undefined);
  }
  // RFC 6749 §6: a refresh token is bound to the client it was issued to.
  if (s.clientId !== presented.clientId) throw new InvalidGrantError('the refresh token was issued to another client');
  if (s.handleHash === presented.credential.hash) return waitForRefresh(rt, s, presented.credential.value);
  const cipher = await rt.cipher();
  const inGrace = s.prevHandleHash === presented.credential.hash && s.rotatedAt !== undefined && now - s.rotatedAt <= rt.config.ttl.reuseGraceSeconds;
  if (!inGrace) {
    const old = s.handleGen !== undefined && presented.credential.generation < s.handleGen && isGenuine(presented.credential, cipher);
    if (!old) {
      // Not a handle this session issued (a forgery): refused, and the session is left alone,
      // so knowing a session id is not enough to end it.
      throw new InvalidGrantError('unknown refresh token');
    }
    // RFC 9700 §4.14.2: a rotated-out refresh token presented again means one of its holders is a thief.
    await revokeSession(rt, s, 'reuse');
    throw new SessionEndedError('the refresh token was already used; the session is revoked');
  }
  const handle = await readOrEnd(rt, s, () => cipher.decrypt(s.handleEnc!, fieldContext(sid, 'handle')));
  rt.log.info('refresh.grace_hit', { client_id: s.clientId, provider: s.provider });
  const fresh = now + rt.config.ttl.minAccessTokenSeconds;
  if (s.atExpiresAt > fresh) return serve(rt, s, 'grace', handle);
  if (hasActiveLease(s, now)) return waitForRefresh(rt, s, handle);
  // The request that rotated the handle did not finish its refresh: take it over, without rotating.
  const taken = await updateSession(rt.table, sid, {
    expression: `prevHandleHash = :h AND clientId = :c AND ${REFRESH_MAY_PROCEED}`,
    values: { ':h': S(presented.credential.hash), ':c': S(presented.clientId), ':now': N(now) },
  }, { set: { leaseUntil: now + LEASE_SECONDS, leaseOwner: owner, leaseFreshBound: fresh }, copy: { leaseAtExp: 'atExpiresAt' } });
  if (!taken) return waitForRefresh(rt, s, handle);
  if (taken.atExpiresAt > fresh) return serve(rt, taken, 'grace', handle);
  return refreshUpstream(rt, taken, owner, handle, undefined);
}

/** Waits for the lease holder's write, then serves what it stored. */
async function waitForRefresh(rt: Runtime, seen: SessionRecord, handle: string | undefined): Promise<RefreshOutcome> {
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, POLL_MS));
    const s = await getSession(rt.table, seen.sid);
    const now = rt.now();
    if (!s || !isAlive(s, now)) throw new SessionEndedError();
    if (s.atExpiresAt !== seen.atExpiresAt || s.atExpiresAt > now + rt.config.ttl.minAccessTokenSeconds) {
      rt.log.metric('refresh.deduplicated', { RefreshesDeduplicated: 1 }, { client_id: s.clientId, provider: s.provider });
      return serve(rt, s, 'deduplicated', handle);
    }
    if (!hasActiveLease(s, now)) break;
  }
  throw new UpstreamUnavailableError('a concurrent refresh of this session did not complete; try again');
}

function providerOf(rt: Runtime, s: SessionRecord): Provider {
  const provider = rt.config.providers[s.provider];
  if (!provider) throw new SessionEndedError('the session\'s provider is no longer configured');
  return provider;
}

/** The lease holder's work: one refresh grant at the provider, then one write. */
async function refreshUpstream(rt: Runtime, s: SessionRecord, owner: string, handle: string | undefined, rotation: Rotation | undefined): Promise<RefreshOutcome> {
  const provider = providerOf(rt, s);
  const log = rt.log.child({ client_id: s.clientId, provider: provider.name });
  const cipher = await rt.cipher();
  if (!s.refreshToken) {
    await deleteSession(rt.table, s.sid);
    throw new SessionEndedError('the session has no refresh token and its access token has expired');
  }
  const refreshToken = await readOrEnd(rt, s, () => cipher.decrypt(s.refreshToken!, fieldContext(s.sid, 'refreshToken')));
  let upstream: UpstreamContext;
  let tokens;
  const started = Date.now();
  const http = withDeadline(rt.http, started + UPSTREAM_BUDGET_MS);
  try {
    upstream = { provider, metadata: await rt.metadata.get(provider), secrets: rt.secrets, http };
    tokens = await refreshGrant(upstream, refreshToken);
  } catch (err) {
    log.warn('upstream.error', { step: 'refresh', ms: Date.now() - started, ...errorFields(err) });
    if (err instanceof UpstreamOAuthError && err.upstreamCode === 'invalid_grant') {
      await deleteSession(rt.table, s.sid);
      throw new SessionEndedError('the provider ended the session');
    }
    await releaseLease(rt, s.sid, owner, rotation?.from);
    throw err instanceof UpstreamOAuthError ? new BrokerError('server_error', 502, 'the identity provider refused the refresh') : err;
  }
  log.info('refresh.upstream', { ms: Date.now() - started });

  if (!provider.openid) {
    // No ID token is checked for such a provider, so none is kept or handed out.
    tokens = { ...tokens, idToken: undefined };
  } else if (tokens.idToken) {
    try {
      const identity = s.idToken ? identityOf(await cipher.decrypt(s.idToken, fieldContext(s.sid, 'idToken'))) : undefined;
      if (!identity) throw new TokenValidationError('the session has no ID token to compare with');
      await validateRefreshIdToken({ provider, metadata: upstream.metadata, jwks: rt.jwks.get(provider, upstream.metadata) }, tokens.idToken, identity);
    } catch (err) {
      if (err instanceof UpstreamUnavailableError || isUnknownSigningKey(err)) {
        // The keys could not be fetched, or not yet the new one: keep the session and its checked ID token; the new
        // refresh and access tokens came straight from the token endpoint and are stored.
        log.warn('refresh.id_token_unchecked', errorFields(err));
        tokens = { ...tokens, idToken: undefined };
      } else {
        log.warn('refresh.id_token_rejected', errorFields(err));
        await revokeSession(rt, s, 'id_token', tokens.refreshToken ?? refreshToken);
        throw new SessionEndedError('the refreshed ID token does not match the session');
      }
    }
  }

  const now = rt.now();
  const stored = await storedTokens(cipher, s.sid, tokens, now, s.maxExpiresAt, true);
  let downstreamError: unknown;
  let downstream;
  try {
    downstream = await runDownstreamLogin(rt, provider, tokens.accessToken, s.instanceId, http);
  } catch (err) {
    log.warn('upstream.error', { step: 'downstream_login', ...errorFields(err) });
    downstreamError = err;
  }
  const written = await updateSession(rt.table, s.sid, { expression: 'leaseOwner = :o', values: { ':o': S(owner) } }, {
    set: {
      ...stored,
      expiresAt: Math.min(s.idleExpiresAt, stored.hardExpiresAt),
      ...(downstream ? await sealDownstream(cipher, s.sid, downstream, now) : {}),
    },
    remove: ['leaseUntil', 'leaseOwner', 'leaseAtExp', 'leaseFreshBound'],
  });
  if (!written) return leaseLost(rt, s, tokens.refreshToken, handle);
  // The OAuth session is stored; a failed downstream login is the caller's 502, and the app
  // keeps the handle it has.
  if (downstreamError) {
    // While the old downstream token lives it is still handed out, as when renewing it early.
    if (s.extrasExpiresAt !== undefined && s.extrasExpiresAt > now) return serve(rt, written, 'upstream', handle, undefined, false);
    if (rotation) await restoreHandle(rt, s.sid, rotation);
    throw downstreamError;
  }
  return serve(rt, written, 'upstream', handle);
}

/**
 * The write after an upstream refresh found the lease gone: the session was ended meanwhile
 * (logout, reuse revocation), or the lease expired and another request took it over. Tokens that
 * were not stored are never handed out: an ended session gets the new refresh token revoked, a
 * live one is served from what it stores.
 */
async function leaseLost(rt: Runtime, original: SessionRecord, newRefreshToken: string | undefined, handle: string | undefined): Promise<RefreshOutcome> {
  const s = await getSession(rt.table, original.sid);
  const now = rt.now();
  if (!s || !isAlive(s, now)) {
    rt.log.warn('refresh.lease_lost', { outcome: 'session_ended', client_id: original.clientId, provider: original.provider });
    if (newRefreshToken) await revokeUpstream(rt, original, newRefreshToken);
    throw new SessionEndedError('the session ended during the refresh');
  }
  rt.log.warn('refresh.lease_lost', { outcome: 'taken_over', client_id: s.clientId, provider: s.provider });
  return waitForRefresh(rt, { ...s, atExpiresAt: -1 }, handle);
}

/** Rotates a handle back after the request that rotated it failed, so the app's handle stays valid. */
async function restoreHandle(rt: Runtime, sid: string, rotation: Rotation): Promise<void> {
  const cipher = await rt.cipher();
  await updateSession(rt.table, sid, { expression: 'handleHash = :new', values: { ':new': S(rotation.to.hash) } }, {
    set: { handleHash: rotation.from.hash, handleGen: rotation.from.generation, handleEnc: await cipher.encrypt(rotation.from.value, fieldContext(sid, 'handle')) },
    remove: ['prevHandleHash', 'rotatedAt'],
  });
}

/** Gives the lease back after a failed upstream call; a rotated handle is rotated back. */
async function releaseLease(rt: Runtime, sid: string, owner: string, rotatedFrom: Handle | undefined): Promise<void> {
  const set: Record<string, string | number> = {};
  if (rotatedFrom) {
    const cipher = await rt.cipher();
    set['handleHash'] = rotatedFrom.hash;
    set['handleGen'] = rotatedFrom.generation;
    set['handleEnc'] = await cipher.encrypt(rotatedFrom.value, fieldContext(sid, 'handle'));
  }
  await updateSession(rt.table, sid, { expression: 'leaseOwner = :o', values: { ':o': S(owner) } }, {
    set,
    remove: ['leaseUntil', 'leaseOwner', 'leaseAtExp', 'leaseFreshBound', ...(rotatedFrom ? ['prevHandleHash', 'rotatedAt'] : [])],
  });
}

async function serve(rt: Runtime, s: SessionRecord, source: RefreshSource, handle: string | undefined, rotation?: Rotation, renew = true): Promise<RefreshOutcome> {
  let current = s;
  const provider = providerOf(rt, s);
  const now = rt.now();
  if (renew && provider.downstreamLogin && renewalDue(s.extrasExpiresAt, s.extrasLifetime, now)) {
    try {
      current = await renewDownstream(rt, provider, s);
    } catch (err) {
      rt.log.warn('upstream.error', { provider: provider.name, step: 'downstream_login', ...errorFields(err) });
      // Renewal is early: while the old downstream token lives, hand it out; else fail, handle intact.
      if (s.extrasExpiresAt === undefined || s.extrasExpiresAt <= now) {
        if (rotation) await restoreHandle(rt, s.sid, rotation);
        throw err;
      }
    }
  }
  const grant = await readOrEnd(rt, current, () => grantOf(rt, current));
  rt.log.metric('refresh.served', { Refreshes: 1 }, { client_id: s.clientId, provider: s.provider }, { name: 'Source', value: source });
  return { grant, session: current, handle, source };
}

/** Logs in downstream again with the stored (fresh) access token, before the old token expires. */
async function renewDownstream(rt: Runtime, provider: Provider, s: SessionRecord): Promise<SessionRecord> {
  const cipher = await rt.cipher();
  const accessToken = await readOrEnd(rt, s, () => cipher.decrypt(s.accessToken, fieldContext(s.sid, 'accessToken')));
  const grant = await runDownstreamLogin(rt, provider, accessToken, s.instanceId);
  if (!grant) return s;
  const sealed = await sealDownstream(cipher, s.sid, grant, rt.now());
  const written = await updateSession(rt.table, s.sid, { expression: 'atExpiresAt = :a', values: { ':a': N(s.atExpiresAt) } }, { set: sealed });
  rt.log.info('downstream.renewed', { client_id: s.clientId, provider: s.provider });
  return written ?? { ...s, ...sealed };
}

/** Runs a read of stored ciphertext; an unreadable session (e.g. its key was retired) is ended. */
async function readOrEnd<T>(rt: Runtime, s: SessionRecord, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof DecryptionError)) throw err;
    rt.log.warn('session.unreadable', { client_id: s.clientId, provider: s.provider });
    await deleteSession(rt.table, s.sid);
    throw new SessionEndedError('the session can no longer be read', { cause: err });
  }
}

/**
 * Ends a session for cause (refresh token reuse, a bad refreshed ID token): deletes it and
 * revokes the upstream refresh token where the provider can.
 */
export async function revokeSession(rt: Runtime, s: SessionRecord, reason: 'reuse' | 'id_token' | 'code_reuse', refreshToken?: string): Promise<void> {
  const deleted = await deleteSession(rt.table, s.sid);
  if (reason === 'id_token') rt.log.warn('session.revoked', { client_id: s.clientId, provider: s.provider, reason });
  else rt.log.metric('session.revoked_reuse', { ReuseRevocations: 1 }, { client_id: s.clientId, provider: s.provider, reason });
  await revokeUpstream(rt, deleted ?? s, refreshToken);
}

/** Revokes a session's upstream refresh token (RFC 7009), logging instead of failing. */
export async function revokeUpstream(rt: Runtime, s: SessionRecord, refreshToken?: string): Promise<void> {
  const provider = rt.config.providers[s.provider];
  if (!provider || (!s.refreshToken && !refreshToken)) return;
  try {
    const cipher = await rt.cipher();
    const token = refreshToken ?? (await cipher.decrypt(s.refreshToken!, fieldContext(s.sid, 'refreshToken')));
    await revokeToken({ provider, metadata: await rt.metadata.get(provider), secrets: rt.secrets, http: rt.http }, token, 'refresh_token');
  } catch (err) {
    rt.log.warn('upstream.error', { provider: s.provider, step: 'revocation', ...errorFields(err) });
  }
}
