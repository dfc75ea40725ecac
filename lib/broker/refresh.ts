/**
 * Refreshing a session, for native apps (`/token`, rotating handle) and web apps (`/refresh`,
 * session cookie), as a state machine of the session item (docs/design.md, "Refreshing: a state
 * machine of the session item").
 *
 * The common case is one DynamoDB call: `claimRefresh` checks the credential and the session's
 * life, extends its idle time, rotates a native handle and either finds the stored access token
 * fresh (served as is: the rotation is handed out) or, when it is stale, takes the refresh lease
 * in the same write (the rotation stays pending). The lease holder makes the one upstream call and
 * writes once more (`completeRefresh`), which hands out the pending rotation. Everyone else who
 * races it reads the item and waits for that write.
 *
 * Crash safety: a rotation is handed out only by the write that ends the request's storage work,
 * so a request that dies or fails earlier leaves the presented handle valid. Every failure after
 * the lease is taken releases it and rolls the rotation back in one place (`holdLease`'s
 * `finally`); a request that dies instead leaves an abandoned lease that the next request with
 * the same handle takes over as soon as it runs out (`LEASE_SECONDS`, longer than any holder can
 * still be working). A previous handle counts as stolen only once its successor was handed out
 * and the grace window has passed.
 */
import type { Provider } from '../config/parse.js';
import { randomToken, sha256 } from '../crypto/random.js';
import type { TokenCipher } from '../crypto/token-cipher.js';
import {
  BrokerError, BrokerUnavailableError, DecryptionError, ForbiddenError, InvalidGrantError, SessionEndedError, TokenValidationError,
  UpstreamOAuthError, UpstreamRejectedError, UpstreamUnavailableError,
} from '../errors.js';
import { errorFields, type Logger } from '../log.js';
import type { RefreshSource as MetricRefreshSource } from '../metrics-names.js';
import { withDeadline, withinDeadline } from '../oauth/http.js';
import { identityOf, isUnknownSigningKey, validateRefreshIdToken } from '../oauth/id-token.js';
import { MalformedRefreshAnswer, refreshGrant, REVOCATION_BUDGET_MS, revokeToken, type UpstreamContext } from '../oauth/token-endpoint.js';
import type { TokenSet } from '../oauth/token-response.js';
import type { Runtime } from '../runtime.js';
import {
  claimFromPrevious, claimRefresh, completeRefresh, endSession, endSessionHeldBy, getSession, isAlive, leaseState, releaseLease, rollBackRotation,
  rotationPending, storeDownstream, type LeaseTerms, type RefreshCredential, type SessionRecord, type StoredHandle,
} from '../store/sessions.js';
import { codeForgettable, isGenuine, newHandle, type Credential, type Handle } from './credentials.js';
import { downstreamFor, renewalDue, sealDownstream, type DownstreamGrant } from './downstream.js';
import { fieldContext, grantOf, storedTokens, type TokenGrant } from './session-tokens.js';

/**
 * How long a lease protects its holder. A holder stops calling providers after
 * `UPSTREAM_BUDGET_MS` and stops trying its final write `FINAL_WRITE_MS` later, so when the lease
 * runs out its holder has died or is done: taking it over then can never make a second provider
 * call with the same refresh token while the first is in flight. Shorter than the function
 * timeout, so a request that waited out a lease still has time to refresh itself.
 */
export const LEASE_SECONDS = 13;
/**
 * All provider calls of one upstream refresh (token, a retry after invalid_client, the ID token's
 * keys, the downstream login) share this budget, counted from when the lease was stamped.
 */
export const UPSTREAM_BUDGET_MS = 7_000;
/** After the provider answered, the final write is retried (storage trouble) until this much later, and then abandoned. */
export const FINAL_WRITE_MS = 2_000;
/** A holder with less of its budget left than this does not start a provider call (it could not finish in time). */
const MIN_PROVIDER_MS = 1_000;
/** How long a request waits for a concurrent refresh of the same session, at most: one lease, and a little. */
export const WAIT_MS = (LEASE_SECONDS + 1) * 1000;
const POLL_MS = 150;
/**
 * A provider that answers a refresh with a 4xx that is not an OAuth error (no JSON `error`), or
 * an OAuth error about the grant by another name than `invalid_grant` (`isRefusalOfTheGrant`), at
 * least `REJECTIONS_TO_END` times over at least `REJECTION_WINDOW_SECONDS` has ended the session
 * in all but words (Glewlwyd answers a revoked refresh token so): the session ends. One glitch, or
 * a burst within minutes, does not.
 */
export const REJECTIONS_TO_END = 3;
export const REJECTION_WINDOW_SECONDS = 600;

/**
 * An OAuth error at a refresh that speaks of the refresh token under another name than
 * `invalid_grant`: ownCloud's LibreGraph Connect answers an expired one `400 invalid_request`,
 * other sites `400 invalid_token`. It counts as a bare 4xx does. Only these two: every other code
 * (`invalid_client`, `unauthorized_client`, `invalid_scope`, `unsupported_grant_type`, ...), and
 * any 401 or 429, tells of a configuration, a secret or a load at fault, which would end every
 * session if it counted.
 */
function isRefusalOfTheGrant(err: unknown): boolean {
  return err instanceof UpstreamOAuthError && err.upstreamStatus === 400 && (err.upstreamCode === 'invalid_request' || err.upstreamCode === 'invalid_token');
}

export type Presented =
  | { readonly kind: 'handle'; readonly credential: Handle; readonly clientId: string }
  /** `clientIds`: when the browser sent an Origin, the clients that allow it. */
  | { readonly kind: 'cookie'; readonly credential: Credential; readonly clientIds?: readonly string[] };

/** Where a refresh's answer came from: one of the metric's `Source` values (lib/metrics-names.ts). */
export type RefreshSource = MetricRefreshSource;

export interface RefreshOutcome {
  readonly grant: TokenGrant;
  readonly session: SessionRecord;
  /** Native: the handle the app must use next. */
  readonly handle: string | undefined;
  readonly source: RefreshSource;
}

/** What to do next, decided from the item as read. */
type Step =
  | { readonly kind: 'claim' }
  | { readonly kind: 'wait' }
  | { readonly kind: 'serve'; readonly session: SessionRecord; readonly handle: string | undefined }
  /** Presented the previous handle: take the lease over (`abandonedBy`) or take a new one without rotating. */
  | { readonly kind: 'claim-previous'; readonly session: SessionRecord; readonly abandonedBy: string | undefined };

/** A lease this request holds, and what to hand out and restore. */
interface Held {
  readonly session: SessionRecord;
  readonly owner: string;
  /** Native: the handle the answer carries. */
  readonly handle: string | undefined;
  /**
   * Native, when the handle's rotation is pending: the presented handle, restored if the request
   * fails (sealed only then: most refreshes never need it).
   */
  readonly restore: Handle | undefined;
  /** When the lease was stamped (epoch ms): the holder's time budget counts from here. */
  readonly since: number;
}

export async function refreshSession(rt: Runtime, presented: Presented): Promise<RefreshOutcome> {
  const sid = presented.credential.sid;
  const owner = randomToken(12);
  const cipher = await rt.cipher();
  const credential: RefreshCredential = presented.kind === 'handle'
    ? { kind: 'handle', hash: presented.credential.hash, clientId: presented.clientId }
    : { kind: 'cookie', hash: presented.credential.hash, ...(presented.clientIds ? { clientIds: presented.clientIds } : {}) };
  const deadline = Date.now() + WAIT_MS;
  // The grace window is judged by when the request arrived, not by when it got its turn.
  const view: RequestView = { arrivedAt: rt.now(), sawValid: false, superseded: false };
  let waited = false;
  let claims = 0;
  let step: Step = { kind: 'claim' };
  for (;;) {
    if (step.kind === 'claim') {
      // A claim refused although the item looked claimable: someone wrote in between. Never spin.
      if (++claims > 5) step = { kind: 'wait' };
    }
    if (step.kind === 'claim') {
      const rotated = presented.kind === 'handle' ? newHandle(sid, presented.credential.generation + 1, cipher) : undefined;
      const rotation = rotated ? { hash: rotated.hash, generation: rotated.generation, enc: await cipher.encrypt(rotated.value, fieldContext(sid, 'handle')) } : undefined;
      const since = Date.now();
      const lease = leaseTerms(rt, owner);
      const result = await claimRefresh(rt.table, sid, credential, lease, lease.now + rt.config.ttl.sessionIdleSeconds, rotation);
      if (result.ok) {
        const s = result.session;
        if (leaseState(s, rt.now()) === 'none' || s.leaseOwner !== owner) return serve(rt, s, 'stored', rotated?.value, rotated && presented.kind === 'handle' ? presented.credential : undefined);
        return holdLease(rt, { session: s, owner, handle: rotated?.value, restore: presented.kind === 'handle' ? presented.credential : undefined, since });
      }
      step = await decide(rt, presented, result.current, cipher, waited, view);
    } else if (step.kind === 'claim-previous') {
      const held = await claimPrevious(rt, presented as Extract<Presented, { kind: 'handle' }>, step, owner, cipher);
      if (held) return holdLease(rt, held);
      step = await decide(rt, presented, await getSession(rt.table, sid), cipher, waited, view);
    } else if (step.kind === 'serve') {
      const serving = serve(rt, step.session, waited ? 'deduplicated' : 'grace', step.handle);
      // A superseded request must not invite a retry: the app's retry with the handle it
      // presented, now older than the previous one, would be theft.
      return view.superseded ? serving.catch((err: unknown) => {
        throw err instanceof SessionEndedError || err instanceof InvalidGrantError ? err : new InvalidGrantError(SUPERSEDED, { cause: err });
      }) : serving;
    } else {
      if (Date.now() >= deadline) throw view.superseded ? new InvalidGrantError(SUPERSEDED) : new UpstreamUnavailableError('a concurrent refresh of this session did not complete; try again');
      await new Promise((r) => setTimeout(r, POLL_MS));
      waited = true;
      step = await decide(rt, presented, await getSession(rt.table, sid), cipher, waited, view);
    }
  }
}

function leaseTerms(rt: Runtime, owner: string): LeaseTerms {
  // The clock is read after every await, so the write's view of "fresh" is as current as can be.
  const now = rt.now();
  return { now, fresh: now + rt.config.ttl.minAccessTokenSeconds, until: now + LEASE_SECONDS, owner };
}

async function storedHandle(cipher: TokenCipher, handle: Handle): Promise<StoredHandle> {
  return { hash: handle.hash, generation: handle.generation, enc: await cipher.encrypt(handle.value, fieldContext(handle.sid, 'handle')) };
}

/** What one request knows of its own course: when it arrived, and whether it has seen its handle valid. */
interface RequestView {
  readonly arrivedAt: number;
  /** Set once a read showed the presented handle as the session's current or previous one. */
  sawValid: boolean;
  /** Set once the presented handle was found refreshed past while this request was under way. */
  superseded: boolean;
}

const SUPERSEDED = 'the refresh token was superseded while this request was under way';

/**
 * Was an older handle of this session refreshed past while this request was under way, rather
 * than presented after its successors were in use? A duplicate an app sent beside its retry, or
 * one a slow instance gets to late, finds its handle superseded by the app's own next refresh:
 * the request saw the handle valid, or arrived before the rotation that made it older than the
 * previous one (`rotatedAt`, whole seconds: the same second is not "before"). No thief is shown
 * then, and the session is left alone.
 */
function supersededMeanwhile(s: SessionRecord, generation: number, view: RequestView): boolean {
  if (view.sawValid) return true;
  return s.handleGen !== undefined && generation === s.handleGen - 2 && s.rotatedAt !== undefined && view.arrivedAt < s.rotatedAt;
}

/** Reads the item's state against what was presented: the transitions of docs/design.md. */
async function decide(rt: Runtime, presented: Presented, s: SessionRecord | undefined, cipher: TokenCipher, waited: boolean, view: RequestView): Promise<Step> {
  const { arrivedAt } = view;
  const now = rt.now();
  if (!s || !isAlive(s, now)) {
    if (s) await endSession(rt.table, s.sid);
    throw new SessionEndedError();
  }
  const lease = leaseState(s, now);
  const fresh = s.atExpiresAt > now + rt.config.ttl.minAccessTokenSeconds;
  if (presented.kind === 'cookie') {
    if (s.cookieHash !== presented.credential.hash) throw new SessionEndedError();
    if (presented.clientIds && !presented.clientIds.includes(s.clientId)) throw new ForbiddenError('this origin may not use this session');
    if (lease === 'active') return { kind: 'wait' };
    return waited && fresh ? { kind: 'serve', session: s, handle: undefined } : { kind: 'claim' };
  }
  // RFC 6749 §6: a refresh token is bound to the client it was issued to.
  if (s.clientId !== presented.clientId) throw new InvalidGrantError('the refresh token was issued to another client');
  const hash = presented.credential.hash;
  if (s.handleHash === hash) {
    view.sawValid = true;
    return lease === 'active' ? { kind: 'wait' } : { kind: 'claim' };
  }
  if (s.prevHandleHash === hash) {
    if (rotationPending(s, now)) {
      // The successor was never handed out: the presented handle is still the valid one.
      view.sawValid = true;
      return lease === 'active' ? { kind: 'wait' } : { kind: 'claim-previous', session: s, abandonedBy: s.leaseOwner };
    }
    if (s.rotatedAt !== undefined && arrivedAt - s.rotatedAt <= rt.config.ttl.reuseGraceSeconds) {
      view.sawValid = true;
      if (lease === 'active') return { kind: 'wait' };
      if (fresh) return { kind: 'serve', session: s, handle: await currentHandle(rt, s, cipher) };
      return { kind: 'claim-previous', session: s, abandonedBy: undefined };
    }
  }
  const old = s.handleGen !== undefined && presented.credential.generation < s.handleGen && isGenuine(presented.credential, cipher);
  // Not a handle this session issued (a forgery): refused, and the session is left alone, so
  // knowing a session id is not enough to end it.
  if (!old) throw new InvalidGrantError('unknown refresh token');
  if (supersededMeanwhile(s, presented.credential.generation, view)) {
    view.superseded = true;
    // A request that saw its handle valid is one of racing tabs, answered as they are: with what
    // the app's newest request got (the current handle), once no rotation is pending.
    if (view.sawValid) {
      if (lease === 'active') return { kind: 'wait' };
      if (fresh && !rotationPending(s, now)) return { kind: 'serve', session: s, handle: await currentHandle(rt, s, cipher) };
    }
    rt.log.info('refresh.superseded', { client_id: s.clientId, provider: s.provider });
    throw new InvalidGrantError(SUPERSEDED);
  }
  // RFC 9700 §4.14.2: a handle whose successor was handed out, presented again after the grace
  // window, means one of its holders is a thief.
  await revokeSession(rt, s, 'reuse');
  throw new SessionEndedError('the refresh token was already used; the session is revoked');
}

/** The session's current handle, as stored for the answers that hand it out again. */
function currentHandle(rt: Runtime, s: SessionRecord, cipher: TokenCipher): Promise<string> {
  return readOrEnd(rt, s, () => cipher.decrypt(s.handleEnc!, fieldContext(s.sid, 'handle')));
}

/** Takes the lease for a request presenting the previous handle; undefined when someone else got there first. */
async function claimPrevious(rt: Runtime, presented: Extract<Presented, { kind: 'handle' }>, step: Extract<Step, { kind: 'claim-previous' }>, owner: string, cipher: TokenCipher): Promise<Held | undefined> {
  const since = Date.now();
  const result = await claimFromPrevious(rt.table, step.session.sid, presented.credential.hash, presented.clientId, leaseTerms(rt, owner), step.abandonedBy);
  if (!result.ok) return undefined;
  const s = result.session;
  if (step.abandonedBy !== undefined) rt.log.warn('refresh.lease_taken_over', { client_id: s.clientId, provider: s.provider });
  const handle = await currentHandle(rt, s, cipher);
  // A pending rotation is still the presented handle's to roll back; a handed-out one is not.
  return { session: s, owner, handle, restore: step.abandonedBy !== undefined ? presented.credential : undefined, since };
}

function providerOf(rt: Runtime, s: SessionRecord): Provider {
  const provider = rt.config.providers[s.provider];
  if (!provider) throw new SessionEndedError('the session\'s provider is no longer configured');
  return provider;
}

/**
 * The lease holder's work, with the one exit path: whatever fails before the final write
 * releases the lease and rolls a pending rotation back, so the app's handle stays valid and the
 * next request need not wait for the lease to run out.
 */
async function holdLease(rt: Runtime, held: Held): Promise<RefreshOutcome> {
  const log = rt.log.child({ client_id: held.session.clientId, provider: held.session.provider });
  const state: LeaseExit = { settled: false, rejected: false };
  try {
    return await refreshUpstream(rt, held, log, state);
  } finally {
    if (!state.settled) {
      let left: SessionRecord | undefined;
      try {
        const cipher = await rt.cipher();
        const restore = held.restore && await storedHandle(cipher, held.restore);
        const refreshToken = state.rotatedRefreshToken === undefined ? undefined : await cipher.encrypt(state.rotatedRefreshToken, fieldContext(held.session.sid, 'refreshToken'));
        left = await releaseLease(rt.table, held.session.sid, held.owner, restore, state.rejected ? rt.now() : undefined, refreshToken);
        // The lease was no longer this request's (the session ended, or another request took it
        // over with the token the provider has retired): the new token is nobody's, so it goes back.
        if (!left && state.rotatedRefreshToken !== undefined) await revokeUpstream(rt, held.session, state.rotatedRefreshToken);
      } catch (err) {
        // The lease then runs out by itself and the next request takes it over.
        log.warn('refresh.release_failed', errorFields(err));
      }
      // The provider's garbage answers have gone on long enough: the session ends instead.
      if (left && state.rejected) await endIfRejectedTooLong(rt, left, log);
    }
  }
}

interface LeaseExit {
  /** The lease ended by a write of this request (stored, or the session deleted). */
  settled: boolean;
  /** The provider's answer was a 4xx that is not an OAuth error. */
  rejected: boolean;
  /** A refused answer's new refresh token, stored as the lease is released (`MalformedRefreshAnswer`). */
  rotatedRefreshToken?: string;
}

async function refreshUpstream(rt: Runtime, held: Held, log: Logger, exit: LeaseExit): Promise<RefreshOutcome> {
  const s = held.session;
  const provider = providerOf(rt, s);
  const cipher = await rt.cipher();
  if (!s.refreshToken) {
    await endSession(rt.table, s.sid);
    exit.settled = true;
    throw new SessionEndedError('the session has no refresh token and its access token has expired');
  }
  const refreshToken = await readOrEnd(rt, s, () => cipher.decrypt(s.refreshToken!, fieldContext(s.sid, 'refreshToken')), exit);
  // Every provider call of this refresh ends by the budget's end, counted from the lease's stamp,
  // so the lease outlasts them; a holder that got its lease late does not start at all.
  const started = held.since;
  const budgetEnd = started + UPSTREAM_BUDGET_MS;
  if (budgetEnd - Date.now() < MIN_PROVIDER_MS) throw new UpstreamUnavailableError('the refresh could not start in time; try again');
  const http = withDeadline(rt.upstreamHttp(provider.name), budgetEnd);
  let upstream: UpstreamContext;
  let tokens: TokenSet;
  try {
    upstream = { provider, metadata: await rt.metadata.get(provider), secrets: rt.secrets, http };
    tokens = await refreshGrant(upstream, refreshToken);
  } catch (err) {
    log.warn('upstream.error', { step: 'refresh', ms: Date.now() - started, ...errorFields(err) });
    if (err instanceof UpstreamOAuthError && err.upstreamCode === 'invalid_grant') {
      // Only while the lease is still this request's: a request that took it over decides itself.
      const ended = await endSessionHeldBy(rt.table, s.sid, held.owner);
      exit.settled = true;
      if (!ended) throw new UpstreamUnavailableError('the refresh took too long; try again');
      throw new SessionEndedError('the provider ended the session');
    }
    if (err instanceof UpstreamRejectedError || isRefusalOfTheGrant(err)) exit.rejected = true;
    if (err instanceof MalformedRefreshAnswer) exit.rotatedRefreshToken = err.refreshToken;
    throw err instanceof UpstreamOAuthError ? new BrokerError('server_error', 502, 'the identity provider refused the refresh') : err;
  }
  const upstreamMs = Date.now() - started;
  // The provider may have rotated its refresh token: from here on, storing the answer comes first.
  tokens = await checkRefreshIdToken(rt, provider, upstream.metadata, s, tokens, refreshToken, log, exit, budgetEnd);

  let downstream: DownstreamGrant | undefined;
  let downstreamError: unknown;
  try {
    downstream = await downstreamFor(provider)?.login(rt, tokens.accessToken, s.instanceId, http);
  } catch (err) {
    log.warn('upstream.error', { step: 'downstream_login', ...errorFields(err) });
    downstreamError = err;
  }
  const now = rt.now();
  // A failed downstream login with no valid old downstream token fails the request: the new
  // tokens are stored, but the rotation is not handed out (the app keeps the handle it has).
  const failing = downstreamError !== undefined && !(s.extrasExpiresAt !== undefined && s.extrasExpiresAt > now);
  const stored = await storedTokens(cipher, s.sid, tokens, now, s.maxExpiresAt, true);
  const fields = {
    ...stored,
    expiresAt: Math.min(s.idleExpiresAt, stored.hardExpiresAt),
    ...(downstream ? await sealDownstream(cipher, s.sid, downstream, now) : {}),
  };
  // A handle taken over within the grace window was handed out already: its rotatedAt stays.
  const handOut = held.restore === undefined ? undefined : failing ? await storedHandle(cipher, held.restore) : now;
  // A redeemed code whose replays are no longer tracked: its fields go (item size is write units).
  const forgetCode = s.codeHash !== undefined && codeForgettable(s.codeExpiresAt, now);
  const written = await finalWrite(rt, s.sid, held.owner, fields, handOut, started, log, forgetCode);
  exit.settled = true;
  if (!written.ok) return leaseLost(rt, s, written.current, tokens.refreshToken, log);
  if (failing) throw downstreamError;
  // While the old downstream token lives it is still handed out, as when renewing it early.
  // The access token is the one just received: no need to decrypt what was just encrypted.
  return serve(rt, written.session, 'upstream', held.handle, undefined, downstreamError === undefined, { accessToken: tokens.accessToken, upstreamMs });
}

/**
 * The final write, retried on storage trouble until its time is up: the provider has already
 * answered (and may have rotated its refresh token), so giving up early would lose it.
 * `handOut`: native only; the time the rotation is handed out, or the handle to restore instead.
 */
async function finalWrite(rt: Runtime, sid: string, owner: string, fields: Parameters<typeof completeRefresh>[3], handOut: number | StoredHandle | undefined, started: number, log: Logger, forgetCode: boolean) {
  const until = started + UPSTREAM_BUDGET_MS + FINAL_WRITE_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      // No attempt may land after `until`: the client's own retries are cut off there too.
      return await completeRefresh(rt.table, sid, owner, fields, handOut, until, forgetCode);
    } catch (err) {
      const left = until - Date.now();
      if (!(err instanceof BrokerUnavailableError) || left < 100 * attempt) {
        log.error('refresh.store_failed', { attempts: attempt, ...errorFields(err) });
        throw left <= 0 ? new BrokerUnavailableError('session storage did not answer in time', { cause: err }) : err;
      }
      await new Promise((r) => setTimeout(r, 50 * attempt + Math.random() * 50));
    }
  }
}

/** A refreshed ID token must keep the session's identity (OIDC Core §12.2); else the session ends. */
async function checkRefreshIdToken(rt: Runtime, provider: Provider, metadata: UpstreamContext['metadata'], s: SessionRecord, tokens: TokenSet, refreshToken: string, log: Logger, exit: LeaseExit, budgetEnd: number): Promise<TokenSet> {
  // No ID token is checked for a provider without openid, so none is kept or handed out.
  if (!provider.openid) return { ...tokens, idToken: undefined };
  if (!tokens.idToken) return tokens;
  const cipher = await rt.cipher();
  try {
    const identity = s.idToken ? identityOf(await cipher.decrypt(s.idToken, fieldContext(s.sid, 'idToken'))) : undefined;
    if (!identity) throw new TokenValidationError('the session has no ID token to compare with');
    // The provider's keys may need fetching: that too ends with the budget (then: unchecked, below).
    await withinDeadline(validateRefreshIdToken({ provider, metadata, jwks: rt.jwks.get(provider, metadata) }, tokens.idToken, identity), budgetEnd, 'the provider\'s keys could not be read in time');
    return tokens;
  } catch (err) {
    if (err instanceof UpstreamUnavailableError || isUnknownSigningKey(err)) {
      // The keys could not be fetched, or not yet the new one: keep the session and its checked ID
      // token; the new refresh and access tokens came straight from the token endpoint and are stored.
      log.warn('refresh.id_token_unchecked', errorFields(err));
      return { ...tokens, idToken: undefined };
    }
    log.warn('refresh.id_token_rejected', errorFields(err));
    await revokeSession(rt, s, 'id_token', tokens.refreshToken ?? refreshToken);
    exit.settled = true;
    throw new SessionEndedError('the refreshed ID token does not match the session');
  }
}

/**
 * The final write found the lease gone: the session was ended meanwhile (logout, reuse
 * revocation), or the lease ran out and another request took it over. Tokens that were not stored
 * are never handed out: an ended session gets the new refresh token revoked; a live one is
 * served once the request that took over has stored its answer.
 */
async function leaseLost(rt: Runtime, original: SessionRecord, current: SessionRecord | undefined, newRefreshToken: string | undefined, log: Logger): Promise<RefreshOutcome> {
  if (!current || !isAlive(current, rt.now())) {
    log.warn('refresh.lease_lost', { outcome: 'session_ended' });
    if (newRefreshToken) await revokeUpstream(rt, original, newRefreshToken);
    throw new SessionEndedError('the session ended during the refresh');
  }
  log.warn('refresh.lease_lost', { outcome: 'taken_over' });
  throw new UpstreamUnavailableError('the refresh took too long; try again');
}

/**
 * Answers with the session's tokens. `upstream`: after an upstream refresh, the access token in
 * plaintext and how long the provider took (logged on the served line, one line per refresh).
 */
async function serve(rt: Runtime, s: SessionRecord, source: RefreshSource, handle: string | undefined, rotatedFrom?: Handle, renew = true, upstream?: { accessToken: string; upstreamMs: number }): Promise<RefreshOutcome> {
  let current = s;
  const provider = providerOf(rt, s);
  const downstream = downstreamFor(provider);
  const now = rt.now();
  if (renew && downstream && renewalDue(s.extrasExpiresAt, s.extrasLifetime, now)) {
    try {
      current = await renewDownstream(rt, provider, s, handle);
    } catch (err) {
      // The handle this answer would carry was taken back: never handed out, whatever else holds.
      if (err instanceof RotationTakenBack) throw err;
      rt.log.warn('upstream.error', { provider: provider.name, step: 'downstream_login', ...errorFields(err) });
      // Renewal is early: while the old downstream token lives, hand it out; else fail, handle intact.
      if (s.extrasExpiresAt === undefined || s.extrasExpiresAt <= now) {
        // The rotation this request handed out is taken back, unless a retry within the grace window
        // has meanwhile renewed the downstream token and handed the new handle out with it: then
        // the rotation stands and this answer carries that token too.
        const standing = rotatedFrom && s.handleHash ? await rollBackRotation(rt.table, s.sid, s.handleHash, await storedHandle(await rt.cipher(), rotatedFrom), s.extrasExpiresAt) : undefined;
        if (standing?.extrasExpiresAt === undefined || standing.extrasExpiresAt <= now) throw err;
        current = standing;
      }
    }
  }
  const grant = await readOrEnd(rt, current, () => grantOf(rt, current, current === s ? upstream?.accessToken : undefined));
  rt.log.metric('refresh.served', { Refreshes: 1 }, { client_id: s.clientId, provider: s.provider, ...(upstream ? { upstream_ms: upstream.upstreamMs } : {}) }, { name: 'Source', value: source });
  return { grant, session: current, handle, source };
}

/** A renewal of a rotation its maker rolled back meanwhile: the app keeps the handle it presented, and tries again. */
class RotationTakenBack extends UpstreamUnavailableError {}

/**
 * Logs in downstream again with the stored (fresh) access token, before the old token expires.
 * `handle`: the handle the answer carries (native), stored with the renewal only while it is still
 * the session's current or previous one.
 */
async function renewDownstream(rt: Runtime, provider: Provider, s: SessionRecord, handle: string | undefined): Promise<SessionRecord> {
  const cipher = await rt.cipher();
  const accessToken = await readOrEnd(rt, s, () => cipher.decrypt(s.accessToken, fieldContext(s.sid, 'accessToken')));
  const grant = await downstreamFor(provider)!.login(rt, accessToken, s.instanceId, rt.upstreamHttp(provider.name));
  const sealed = await sealDownstream(cipher, s.sid, grant, rt.now());
  const handedOut = handle === undefined ? undefined : sha256(handle);
  const written = await storeDownstream(rt.table, s.sid, s.atExpiresAt, sealed, handedOut);
  if (!written.ok && handedOut !== undefined && written.current && written.current.handleHash !== handedOut && written.current.prevHandleHash !== handedOut) {
    // The request that rotated to this handle failed and took the rotation back: the handle the
    // app presented is current again.
    rt.log.warn('refresh.rotation_taken_back', { client_id: s.clientId, provider: s.provider });
    throw new RotationTakenBack('a concurrent refresh of this session failed; try again');
  }
  rt.log.info('downstream.renewed', { client_id: s.clientId, provider: s.provider });
  // Not stored (an upstream refresh replaced the access token meanwhile): handed out all the same.
  return written.ok ? written.session : { ...s, ...sealed };
}

/** After a provider answer that was neither tokens nor an OAuth error: ends the session once such answers have gone on long enough. */
async function endIfRejectedTooLong(rt: Runtime, s: SessionRecord, log: Logger): Promise<void> {
  if (s.rejectedSince === undefined || (s.rejectedCount ?? 0) < REJECTIONS_TO_END || rt.now() - s.rejectedSince < REJECTION_WINDOW_SECONDS) return;
  log.warn('session.ended_by_rejections', { rejections: s.rejectedCount, seconds: rt.now() - s.rejectedSince });
  await endSession(rt.table, s.sid);
  throw new SessionEndedError('the provider keeps refusing to refresh this session');
}

/** Runs a read of stored ciphertext; an unreadable session (e.g. its key was retired) is ended. */
async function readOrEnd<T>(rt: Runtime, s: SessionRecord, read: () => Promise<T>, exit?: LeaseExit): Promise<T> {
  try {
    return await read();
  } catch (err) {
    if (!(err instanceof DecryptionError)) throw err;
    rt.log.warn('session.unreadable', { client_id: s.clientId, provider: s.provider });
    await endSession(rt.table, s.sid);
    if (exit) exit.settled = true;
    throw new SessionEndedError('the session can no longer be read', { cause: err });
  }
}

/**
 * Ends a session for cause (refresh token reuse, a bad refreshed ID token, a reused code): deletes
 * it and revokes the upstream refresh token where the provider can.
 */
export async function revokeSession(rt: Runtime, s: SessionRecord, reason: 'reuse' | 'id_token' | 'code_reuse', refreshToken?: string): Promise<void> {
  const deleted = await endSession(rt.table, s.sid);
  if (reason === 'id_token') rt.log.warn('session.revoked', { client_id: s.clientId, provider: s.provider, reason });
  else rt.log.metric('session.revoked_reuse', { ReuseRevocations: 1 }, { client_id: s.clientId, provider: s.provider, reason });
  await revokeUpstream(rt, deleted ?? s, refreshToken);
}

/**
 * Revokes a session's upstream refresh token (RFC 7009), logging instead of failing; by
 * `deadline` (epoch ms), by default `REVOCATION_BUDGET_MS` from now: a revocation endpoint that
 * hangs never holds an answer past the function's time.
 */
export async function revokeUpstream(rt: Runtime, s: SessionRecord, refreshToken?: string, deadline = Date.now() + REVOCATION_BUDGET_MS): Promise<void> {
  const provider = rt.config.providers[s.provider];
  if (!provider || (!s.refreshToken && !refreshToken)) return;
  try {
    const cipher = await rt.cipher();
    const token = refreshToken ?? (await cipher.decrypt(s.refreshToken!, fieldContext(s.sid, 'refreshToken')));
    await revokeToken({ provider, metadata: await rt.metadata.get(provider), secrets: rt.secrets, http: withDeadline(rt.upstreamHttp(provider.name), deadline) }, token, 'refresh_token');
  } catch (err) {
    rt.log.warn('upstream.error', { provider: s.provider, step: 'revocation', ...errorFields(err) });
  }
}
