/**
 * `GET /session`: who is logged in, for a web app (CONTRACT.md v2): the broker's subject, the
 * provider and its subject, the claims of the broker's ID token for this client, and when the
 * session ends. Nothing secret, and never a provider token or its claims as such.
 */
import { ForbiddenError, SessionEndedError } from '../errors.js';
import { idTokenClaims, sessionIdentity } from '../oidc/id-token-issuer.js';
import { brokerSubject } from '../oidc/subject.js';
import type { Runtime } from '../runtime.js';
import { getSession, isAlive } from '../store/sessions.js';
import type { Credential } from './credentials.js';
import { sessionEndsAt } from './session-tokens.js';

export interface SessionInfo {
  /** The broker's subject, as in its ID tokens; absent for a provider that names no subject. */
  readonly sub?: string;
  readonly provider: string;
  /** The provider's subject. */
  readonly idp_sub?: string;
  /** The claims of the broker's ID token for this client; `{}` when the login did not ask for `openid`. */
  readonly claims: Record<string, unknown>;
  readonly expires_at: number;
}

/** `clientIds`: when the browser sent an Origin, the clients that allow it; the session must be one's. */
export async function sessionInfo(rt: Runtime, credential: Credential, clientIds?: readonly string[]): Promise<SessionInfo> {
  const s = await getSession(rt.table, credential.sid);
  if (!s || s.cookieHash !== credential.hash || !isAlive(s, rt.now())) throw new SessionEndedError('no live session', { status: 401 });
  if (clientIds && !clientIds.includes(s.clientId)) throw new ForbiddenError('this origin may not use this session');
  let found;
  try {
    found = await sessionIdentity(rt, s);
  } catch (err) {
    if (err instanceof SessionEndedError) throw new SessionEndedError(err.description, { cause: err, status: 401 });
    throw err;
  }
  const idpSub = found?.identity.idpSub;
  const issuer = found?.provider.issuer;
  const claims = found ? idTokenClaims({ config: rt.config, client: found.client, provider: found.provider, sid: s.sid, identity: found.identity, now: rt.now() }) : undefined;
  return {
    ...(idpSub !== undefined && issuer !== undefined ? { sub: brokerSubject(issuer, idpSub) } : {}),
    provider: s.provider,
    ...(idpSub !== undefined ? { idp_sub: idpSub } : {}),
    claims: claims ? { ...claims } : {},
    expires_at: sessionEndsAt(s),
  };
}
