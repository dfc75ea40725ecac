/**
 * The session's access token for a call through the API proxy (CONTRACT.md, "API proxy for web
 * apps"), and what an API's `401` does to it.
 *
 * While the stored token is fresh, a proxied call costs one DynamoDB call, and that call is a
 * consistent `GetItem` (about a tenth of the price of a write, docs/design.md "Cost model") unless
 * the session's idle time is due to move: the idle expiry is moved by proxied calls at most every
 * `idleStep` seconds, not on every call. When it is due, or the stored token is not fresh, the
 * call goes through the very refresh of `/refresh` (`refreshSession`: the conditional claim that
 * extends the idle time, the lease, one upstream call for any number of concurrent callers on any
 * number of containers). A container remembers what it last saw of a session (`hints`), so that
 * when it knows a write is due it makes only the write, never a read first: one call either way.
 * What it remembers only picks read or write; both check the cookie, the session's life and the
 * Origin's client in DynamoDB, so a stale memory can cost a write, never let anything through.
 */
import type { Api, Client } from '../config/parse.js';
import { DecryptionError, ForbiddenError, NotFoundError, SessionEndedError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { endSession, getSession, isAlive, markAccessTokenSpent, type SeenAccessToken, type SessionRecord, type SpentResult } from '../store/sessions.js';
import type { Credential } from './credentials.js';
import { refreshSession, type RefreshSource } from './refresh.js';
import { fieldContext } from './session-tokens.js';

/** Proxied calls move a session's idle expiry at most this often (or a tenth of the idle time, if less). */
export const IDLE_STEP_SECONDS = 300;
/** An API's `401` marks a session's token spent at most this often: an API refusing every token cannot turn each call into an upstream refresh. */
export const SPENT_MARK_INTERVAL_SECONDS = 30;
/** Sessions a container remembers (`hints`), the oldest forgotten first. */
const HINTS_MAX = 10_000;

export interface ApiAccess {
  readonly accessToken: string;
  /** The token as read, for `markAccessTokenSpent`. */
  readonly seen: SeenAccessToken;
  readonly session: SessionRecord;
  /** `read`: the stored token, by a `GetItem`; else how `refreshSession` served it. */
  readonly source: 'read' | RefreshSource;
}

export interface PresentedCookie {
  readonly credential: Credential;
  /** When the browser sent an Origin, the clients that allow it. */
  readonly clientIds: readonly string[] | undefined;
}

interface Hint {
  readonly atExpiresAt: number;
  readonly idleExpiresAt: number;
}

/** What this container last saw of each session (never a token), by table and session id. */
const hints = new Map<string, Hint>();

function remember(key: string, s: SessionRecord): void {
  hints.delete(key);
  hints.set(key, { atExpiresAt: s.atExpiresAt, idleExpiresAt: s.idleExpiresAt });
  if (hints.size > HINTS_MAX) hints.delete(hints.keys().next().value!);
}

/** For tests: forget every session this process saw. */
export function clearApiAccessHints(): void {
  hints.clear();
}

export function idleStep(rt: Runtime): number {
  return Math.min(IDLE_STEP_SECONDS, Math.floor(rt.config.ttl.sessionIdleSeconds / 10));
}

/** Does the session (as last seen) need a write: a token that is not fresh, or an idle expiry due to move? */
function writeDue(rt: Runtime, s: Hint, now: number): boolean {
  const stale = s.atExpiresAt <= now + rt.config.ttl.minAccessTokenSeconds;
  const idleDue = s.idleExpiresAt - now <= rt.config.ttl.sessionIdleSeconds - idleStep(rt);
  return stale || idleDue;
}

/**
 * The API must be one of the session's client's `apis` and belong to the session's provider;
 * anything else is `404`, as if there were no such API (nothing tells a session about the others).
 */
function checkApi(rt: Runtime, clientId: string, provider: string, api: Api): Client {
  const client = Object.hasOwn(rt.config.clients, clientId) ? rt.config.clients[clientId] : undefined;
  if (!client) throw new SessionEndedError('the session\'s client is no longer configured');
  if (client.type !== 'web' || !client.apis.includes(api.name) || api.provider !== provider) throw new NotFoundError('no such API for this session');
  return client;
}

/** The access token to call `api` with, refreshed upstream first when it is due. */
export async function accessForApi(rt: Runtime, presented: PresentedCookie, api: Api): Promise<ApiAccess> {
  const { credential, clientIds } = presented;
  const key = `${rt.table.name}#${credential.sid}`;
  const hint = hints.get(key);
  // The memory picks read or write, nothing else: every check below is made on what DynamoDB holds.
  if (!hint || !writeDue(rt, hint, rt.now())) {
    const s = await getSession(rt.table, credential.sid);
    const now = rt.now();
    if (!s || s.cookieHash !== credential.hash || !isAlive(s, now)) {
      hints.delete(key);
      throw new SessionEndedError('no live session');
    }
    if (clientIds && !clientIds.includes(s.clientId)) throw new ForbiddenError('this origin may not use this session');
    checkApi(rt, s.clientId, s.provider, api);
    remember(key, s);
    if (!writeDue(rt, s, now)) return { accessToken: await decryptOrEnd(rt, s), seen: seenOf(s), session: s, source: 'read' };
  }
  const outcome = await refreshSession(rt, { kind: 'cookie', credential, ...(clientIds ? { clientIds } : {}) });
  const s = outcome.session;
  remember(key, s);
  checkApi(rt, s.clientId, s.provider, api);
  return { accessToken: outcome.grant.accessToken, seen: seenOf(s), session: s, source: outcome.source };
}

const seenOf = (s: SessionRecord): SeenAccessToken => ({ atExpiresAt: s.atExpiresAt, accessToken: s.accessToken });

async function decryptOrEnd(rt: Runtime, s: SessionRecord): Promise<string> {
  const cipher = await rt.cipher();
  try {
    return await cipher.decrypt(s.accessToken, fieldContext(s.sid, 'accessToken'));
  } catch (err) {
    if (!(err instanceof DecryptionError)) throw err;
    rt.log.warn('session.unreadable', { client_id: s.clientId, provider: s.provider });
    await endSession(rt.table, s.sid);
    throw new SessionEndedError('the session can no longer be read', { cause: err });
  }
}

/**
 * The API answered `401` to the token `access` carried: the stored token is spent, and the next
 * call refreshes upstream. The `401` itself goes back to the app as the API sent it.
 */
export async function apiRefusedToken(rt: Runtime, access: ApiAccess): Promise<SpentResult> {
  const now = rt.now();
  const result = await markAccessTokenSpent(rt.table, access.session.sid, access.seen, now, SPENT_MARK_INTERVAL_SECONDS);
  const key = `${rt.table.name}#${access.session.sid}`;
  if (result.ok) remember(key, result.session);
  else hints.delete(key);
  return result;
}
