/**
 * Logout and revocation (`POST /logout`, RFC 7009): reads the session, revokes its upstream
 * refresh token where the provider can, deletes the session in one conditional delete, and names the provider's
 * end-session URL (OIDC RP-Initiated Logout §2). Unknown or ended sessions answer the same.
 */
import type { Client } from '../config/parse.js';
import { ForbiddenError } from '../errors.js';
import { errorFields } from '../log.js';
import type { Runtime } from '../runtime.js';
import { endSessionOf, endUnreadableSession, findSessionOf, getSession, UnreadableSessionError, type RefreshCredential, type SessionOwner, type SessionRecord } from '../store/sessions.js';
import { isGenuine, type Credential, type Handle } from './credentials.js';
import { providerEndSessionUrl } from './provider-end-session.js';
import { revokeSession, revokeUpstream } from './refresh.js';

export interface LogoutResult {
  readonly endSessionUrl: string | undefined;
  readonly ended: boolean;
}

export type LogoutCredential =
  /** `credential` undefined: a token that is not the broker's; answered like an ended session. */
  | { readonly kind: 'handle'; readonly credential: Handle | undefined; readonly client: Client }
  | { readonly kind: 'cookie'; readonly credential: Credential; readonly clientIds?: readonly string[] };

export async function logout(rt: Runtime, input: LogoutCredential): Promise<LogoutResult> {
  if (!input.credential) {
    return { ended: false, endSessionUrl: input.kind === 'handle' ? await endSessionUrl(rt, input.client, input.client.providers[0]!, undefined) : undefined };
  }
  const sid = input.credential.sid;
  const credential: RefreshCredential = input.kind === 'handle'
    ? { kind: 'handle', hash: input.credential.hash, clientId: input.client.id }
    : { kind: 'cookie', hash: input.credential.hash };
  const { ended, session: s } = await endSessionFor(rt, sid, credential, input.kind === 'cookie' ? input.clientIds : undefined);
  if (!s) {
    const client = input.kind === 'handle' ? input.client : undefined;
    const revoked = !ended && input.kind === 'handle' ? await endIfRotatedOut(rt, input.credential, input.client) : undefined;
    if (revoked && client) return { ended: true, endSessionUrl: await endSessionUrl(rt, client, revoked.provider, revoked) };
    return { ended, endSessionUrl: client ? await endSessionUrl(rt, client, client.providers[0]!, undefined) : undefined };
  }
  rt.log.info('session.logout', { client_id: s.clientId, provider: s.provider });
  const client = rt.config.clients[s.clientId];
  return { ended: true, endSessionUrl: client ? await endSessionUrl(rt, client, s.provider, s) : undefined };
}

/**
 * A handle of this session and client that is neither its current nor its previous one, but one
 * it issued earlier (its mac checks out, its generation is older): someone went on refreshing
 * past it, which /token answers by revoking the session (RFC 9700 §4.14.2). A logout with it
 * does the same, or the app's "log out" would leave a thief's copy alive. Resolves the session
 * ended, or undefined when the handle is no such one.
 */
async function endIfRotatedOut(rt: Runtime, handle: Handle, client: Client): Promise<SessionRecord | undefined> {
  let s: SessionRecord | undefined;
  try {
    s = await getSession(rt.table, handle.sid);
  } catch (err) {
    // An item that no longer parses is ended by its owner's proof alone (`endSessionFor`).
    if (err instanceof UnreadableSessionError) return undefined;
    throw err;
  }
  if (!s || s.clientId !== client.id || s.handleGen === undefined || handle.generation >= s.handleGen) return undefined;
  if (!isGenuine(handle, await rt.cipher())) return undefined;
  await revokeSession(rt, s, 'reuse');
  return s;
}

/**
 * Ends the session `owner` may end (`POST /logout`, `GET /end-session`): read, revoked and deleted
 * (`endHeldSession`); `session` is what it held. An item that no longer parses, which no other
 * request can use, is deleted all the same, on the owner's proof checked by DynamoDB in the
 * delete's condition (`endUnreadableSession`): a user can always log out. Its provider refresh
 * token cannot be read, so it is not revoked, and `session` is undefined. `clientIds`: when a
 * browser sent an Origin, the clients that allow it; a session of another client is refused (403).
 */
export async function endSessionFor(
  rt: Runtime, sid: string, owner: SessionOwner, clientIds?: readonly string[],
): Promise<{ readonly ended: boolean; readonly session?: SessionRecord }> {
  let held: SessionRecord | undefined;
  try {
    held = await findSessionOf(rt.table, sid, owner);
  } catch (err) {
    if (!(err instanceof UnreadableSessionError)) throw err;
    const ended = await endUnreadableSession(rt.table, sid, owner.kind === 'cookie' && clientIds ? { ...owner, clientIds } : owner);
    rt.log.warn('session.unreadable', { step: 'logout', ended, ...errorFields(err) });
    return { ended };
  }
  // A live session of a client that does not allow the browser's Origin: refused as /refresh
  // refuses it (403), and the cookie kept; answering as for an ended session would clear the
  // browser's cookie and leave the session, and its provider refresh token, alive.
  if (held && clientIds && !clientIds.includes(held.clientId)) throw new ForbiddenError('this origin may not use this session');
  return held ? { ended: true, session: await endHeldSession(rt, held) } : { ended: false };
}


/**
 * Ends a session this request was shown to hold (`findSessionOf`, a strongly consistent read):
 * revokes the provider's refresh token, then deletes the item. Read, revoke, then delete: a retry
 * after any step finds the session still there (and revokes again, which RFC 7009 §2.2 answers
 * alike) or gone with its token already revoked; deleting first lost the token to a delete whose
 * answer was lost, or to a process that died right after it.
 *
 * The delete is conditioned on what never changes in a session (its client and provider), not on
 * the credential: a refresh may rotate the handle between the read and the delete, and the logout
 * that proved it held the session must still end it. A refresh that completed in between stored a
 * new refresh token; the delete returns it, and it is revoked too. Gone by the delete (this
 * request's own delete retried, or another logout): ended all the same.
 */
export async function endHeldSession(rt: Runtime, held: SessionRecord): Promise<SessionRecord> {
  await revokeUpstream(rt, held);
  const deleted = await endSessionOf(rt.table, held.sid, { clientId: held.clientId, provider: held.provider });
  if (deleted?.refreshToken !== undefined && deleted.refreshToken !== held.refreshToken) await revokeUpstream(rt, deleted);
  return deleted ?? held;
}

/** A client in proxy mode never receives a token, so its end-session URL carries no `id_token_hint`. */
function endSessionUrl(rt: Runtime, client: Client, providerName: string, s: SessionRecord | undefined): Promise<string | undefined> {
  return providerEndSessionUrl(rt, providerName, client.tokenDelivery === 'proxy' ? undefined : s, { postLogoutRedirectUri: client.postLogoutRedirectUri });
}
