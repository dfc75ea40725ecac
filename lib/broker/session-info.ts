/** `GET /session`: who is logged in, for a web app. Nothing secret: ID token claims and expiry. */
import { decodeJwt } from 'jose';
import { ForbiddenError, SessionEndedError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { getSession, isAlive } from '../store/sessions.js';
import type { Credential } from './credentials.js';
import { fieldContext, sessionEndsAt } from './session-tokens.js';

export interface SessionInfo {
  readonly sub: string | undefined;
  readonly provider: string;
  readonly claims: Record<string, unknown>;
  readonly expires_at: number;
}

/** `clientIds`: when the browser sent an Origin, the clients that allow it; the session must be one's. */
export async function sessionInfo(rt: Runtime, credential: Credential, clientIds?: readonly string[]): Promise<SessionInfo> {
  const s = await getSession(rt.table, credential.sid);
  if (!s || s.cookieHash !== credential.hash || !isAlive(s, rt.now())) throw new SessionEndedError('no live session', { status: 401 });
  if (clientIds && !clientIds.includes(s.clientId)) throw new ForbiddenError('this origin may not use this session');
  let claims: Record<string, unknown> = {};
  if (s.idToken) {
    const cipher = await rt.cipher();
    try {
      claims = decodeJwt(await cipher.decrypt(s.idToken, fieldContext(s.sid, 'idToken')));
    } catch (cause) {
      throw new SessionEndedError('the session can no longer be read', { cause, status: 401 });
    }
  }
  return { sub: typeof claims['sub'] === 'string' ? claims['sub'] : undefined, provider: s.provider, claims, expires_at: sessionEndsAt(s) };
}
