/**
 * Redeeming a one-time broker code at `/token` (RFC 6749 §4.1.3, RFC 7636 §4.6). One conditional
 * UpdateItem checks code, expiry, client, redirect URI and PKCE together and issues the first
 * handle. A wrong `code_verifier` leaves the code usable (a thief's guess cannot lock the app
 * out); a second use of a used code revokes the session it created (RFC 6749 §4.1.2).
 */
import { s256 } from '../crypto/random.js';
import { InvalidGrantError, SessionEndedError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { getSession, updateSession } from '../store/sessions.js';
import { N, S } from '../store/table.js';
import { newHandle, readCredential } from './credentials.js';
import { PKCE_VALUE } from './params.js';
import { refreshSession, revokeSession, type RefreshOutcome } from './refresh.js';
import { fieldContext, grantOf } from './session-tokens.js';

export interface RedeemInput {
  readonly code: string;
  readonly codeVerifier: string;
  readonly clientId: string;
  readonly redirectUri: string;
}

export async function redeemCode(rt: Runtime, input: RedeemInput): Promise<RefreshOutcome> {
  const code = readCredential(input.code);
  if (!code) throw new InvalidGrantError('unknown or expired code');
  if (!PKCE_VALUE.test(input.codeVerifier)) throw new InvalidGrantError('"code_verifier" is malformed (RFC 7636 §4.1)');
  const now = rt.now();
  const ttl = rt.config.ttl;
  const cipher = await rt.cipher();
  const handle = newHandle(code.sid, 1, cipher);
  const s = await updateSession(rt.table, code.sid, {
    expression: 'codeHash = :h AND attribute_not_exists(codeUsedAt) AND codeExpiresAt > :now AND clientId = :c AND codeRedirectUri = :r AND codeChallenge = :ch',
    values: { ':h': S(code.hash), ':now': N(now), ':c': S(input.clientId), ':r': S(input.redirectUri), ':ch': S(s256(input.codeVerifier)) },
  }, {
    set: {
      codeUsedAt: now,
      handleHash: handle.hash,
      handleGen: handle.generation,
      handleEnc: await cipher.encrypt(handle.value, fieldContext(code.sid, 'handle')),
      idleExpiresAt: now + ttl.sessionIdleSeconds,
      expiresAt: now + ttl.sessionIdleSeconds,
    },
  });
  if (!s) {
    const existing = await getSession(rt.table, code.sid);
    if (existing && existing.codeHash === code.hash && existing.codeUsedAt !== undefined) {
      await revokeSession(rt, existing, 'code_reuse');
      throw new InvalidGrantError('the code was already used; the session it created is revoked');
    }
    throw new InvalidGrantError('unknown, expired or already used code, or a wrong client, redirect_uri or code_verifier');
  }
  rt.log.info('token.issued', { client_id: s.clientId, provider: s.provider });
  // The code is spent; a stale stored token is refreshed at once, like any later refresh.
  if (s.atExpiresAt <= now + ttl.minAccessTokenSeconds && s.refreshToken) {
    return refreshSession(rt, { kind: 'handle', credential: handle, clientId: input.clientId });
  }
  try {
    return { grant: await grantOf(rt, s), session: s, handle: handle.value, source: 'stored' };
  } catch (err) {
    throw new SessionEndedError('the session can no longer be read', { cause: err });
  }
}
