/**
 * Redeeming a one-time broker code at `/token` (RFC 6749 §4.1.3, RFC 7636 §4.6). One conditional
 * UpdateItem checks code, expiry, client, redirect URI and PKCE together and issues the first
 * handle. A wrong `code_verifier` leaves the code usable (a thief's guess cannot lock the app out).
 *
 * A used code presented again is judged by the same checks a redemption makes (client, redirect
 * URI, PKCE): one that fails them has not used the code and ends nothing. One that passes them is
 * a second use, denied with the session revoked (RFC 6749 §4.1.2), unless the first redemption
 * never produced an answer (its follow-up refresh failed or died): then it is the app's retry and
 * is carried on. The SDK's retry of an applied redemption write is recognised in the store. Reuse
 * stops being tracked `CODE_REUSE_TRACKED_SECONDS` after the code's expiry.
 */
import { randomToken, s256 } from '../crypto/random.js';
import { InvalidGrantError, SessionEndedError } from '../errors.js';
import { errorFields } from '../log.js';
import type { Runtime } from '../runtime.js';
import { isAlive, redeemCode as redeemStored, rotationPending, unredeemCode, type SessionRecord } from '../store/sessions.js';
import { codeForgettable, newHandle, readCredential, type Credential, type Handle } from './credentials.js';
import { PKCE_VALUE } from './params.js';
import { refreshSession, revokeSession, type RefreshOutcome } from './refresh.js';
import { fieldContext, grantOf } from './session-tokens.js';

export { CODE_REUSE_TRACKED_SECONDS } from './credentials.js';
/** A code with less time than this left is not handed back after a failed follow-up refresh. */
const UNREDEEM_MARGIN_SECONDS = 5;

export interface RedeemInput {
  readonly code: string;
  readonly codeVerifier: string;
  readonly clientId: string;
  readonly redirectUri: string;
}

const REFUSED = 'unknown, expired or already used code, or a wrong client, redirect_uri or code_verifier';

export async function redeemCode(rt: Runtime, input: RedeemInput): Promise<RefreshOutcome> {
  const code = readCredential(input.code);
  if (!code) throw new InvalidGrantError('unknown or expired code');
  if (!PKCE_VALUE.test(input.codeVerifier)) throw new InvalidGrantError('"code_verifier" is malformed (RFC 7636 §4.1)');
  const now = rt.now();
  const cipher = await rt.cipher();
  const handle = newHandle(code.sid, 1, cipher);
  const result = await redeemStored(rt.table, code.sid, {
    codeHash: code.hash,
    clientId: input.clientId,
    redirectUri: input.redirectUri,
    challenge: s256(input.codeVerifier),
    now,
    idleUntil: now + rt.config.ttl.sessionIdleSeconds,
    handle: { hash: handle.hash, generation: 1, enc: await cipher.encrypt(handle.value, fieldContext(code.sid, 'handle')) },
    owner: randomToken(12),
  });
  if (!result.ok) return replayed(rt, input, code, handle, result.current, now);
  rt.log.info('token.issued', { client_id: result.session.clientId, provider: result.session.provider });
  return answer(rt, result.session, handle, input.clientId);
}

/** The first answer: the stored token, or, when it is already due, a refresh with the new handle. */
async function answer(rt: Runtime, s: SessionRecord, credential: Handle, clientId: string): Promise<RefreshOutcome> {
  const now = rt.now();
  // A refresh with the first handle may be pending already (the request that redeemed died in it).
  if (rotationPending(s, now) || (s.atExpiresAt <= now + rt.config.ttl.minAccessTokenSeconds && s.refreshToken)) {
    try {
      return await refreshSession(rt, { kind: 'handle', credential, clientId });
    } catch (err) {
      // A failed follow-up refresh does not spend the code: the app's retry redeems it again.
      // (Only while the code has time left to be redeemed again; after that the retry is carried
      // on as a redemption that never answered, see `replayed`.)
      if (!(err instanceof SessionEndedError) && s.codeExpiresAt !== undefined && s.codeExpiresAt > rt.now() + UNREDEEM_MARGIN_SECONDS) {
        await unredeemCode(rt.table, s.sid, credential.hash, s.codeExpiresAt).catch((e: unknown) => rt.log.warn('token.unredeem_failed', errorFields(e)));
      }
      throw err;
    }
  }
  try {
    return { grant: await grantOf(rt, s), session: s, handle: credential.value, source: 'stored' };
  } catch (err) {
    throw new SessionEndedError('the session can no longer be read', { cause: err });
  }
}

/** `arrivedAt`: when this request arrived (epoch seconds, whole). */
async function replayed(rt: Runtime, input: RedeemInput, code: Credential, first: Handle, s: SessionRecord | undefined, arrivedAt: number): Promise<RefreshOutcome> {
  const now = rt.now();
  if (!s || s.codeHash !== code.hash || s.codeUsedAt === undefined) throw new InvalidGrantError(REFUSED);
  // The same checks a redemption makes: whoever fails them has not used the code.
  if (s.clientId !== input.clientId || s.codeRedirectUri !== input.redirectUri || s.codeChallenge !== s256(input.codeVerifier)) throw new InvalidGrantError(REFUSED);
  if (s.codeExpiresAt === undefined || codeForgettable(s.codeExpiresAt, now)) throw new InvalidGrantError(REFUSED);
  // RFC 6749 §4.1.2: a code used more than once is denied. But a redemption that never produced
  // an answer has not used it: its stored token was due, and the refresh that had to follow
  // failed or died before handing out a handle. The first handle is a function of the session and
  // the key (credentials.ts), so the retry knows it: still current, or where a pending rotation began.
  const dueAtRedemption = s.refreshToken !== undefined && s.atExpiresAt <= s.codeUsedAt + rt.config.ttl.minAccessTokenSeconds;
  const unanswered = dueAtRedemption
    && ((rotationPending(s, now) && s.prevHandleHash === first.hash) || (s.handleHash === first.hash && s.prevHandleHash === undefined));
  if (unanswered && isAlive(s, now)) {
    rt.log.info('token.redeem_retried', { client_id: s.clientId, provider: s.provider });
    return answer(rt, s, first, input.clientId);
  }
  // A request that arrived in an earlier second than the redemption that used the code is not a
  // second use after the fact but a duplicate under way at the same time: the app's own retry
  // after a timeout won, and this one, slow (a stalled instance, a late write), only gets to it
  // now. Denied (RFC 6749 §4.1.2's MUST), and the session the app holds is left alone.
  if (arrivedAt < s.codeUsedAt) {
    rt.log.info('token.redeem_superseded', { client_id: s.clientId, provider: s.provider });
    throw new InvalidGrantError('the code was redeemed by another request while this one was under way');
  }
  await revokeSession(rt, s, 'code_reuse');
  throw new InvalidGrantError('the code was already used; the session it created is revoked');
}
