/**
 * `GET /end-session` (OpenID Connect RP-Initiated Logout 1.0, CONTRACT.md v2): an app sends the
 * browser here with a broker ID token as `id_token_hint`. Checks first, and nothing happens when
 * one fails (`400`, no redirect, the session alive): parameters, `client_id`, the hint (signature
 * before claims), `post_logout_redirect_uri` equal to the client's, character for character. Then
 * the session the hint names ends as at `POST /logout` (one conditional delete, the upstream refresh
 * token revoked), and the browser goes on to the provider's end-session endpoint, which sends it
 * back to the app, or straight back to the app when the provider has none.
 */
import type { Client } from '../config/parse.js';
import { InvalidRequestError } from '../errors.js';
import { verifyIdTokenHint } from '../oidc/id-token-hint.js';
import type { Runtime } from '../runtime.js';
import { endSessionFor } from './logout.js';
import { single, withParams } from './params.js';
import { providerEndSessionUrl } from './provider-end-session.js';
import { MAX_STATE_LENGTH } from './start-login.js';

export interface EndSessionResult {
  /** The session the hint named (ended now, or already before). */
  readonly sid: string;
  readonly ended: boolean;
  /** Where the browser goes next; undefined: nowhere (no URI to return to and no provider endpoint). */
  readonly location: string | undefined;
}

function checkRedirect(client: Client, uri: string | undefined): void {
  if (uri !== undefined && uri !== client.postLogoutRedirectUri) {
    throw new InvalidRequestError('"post_logout_redirect_uri" is not the client\'s registered postLogoutRedirectUri');
  }
}

export async function endSession(rt: Runtime, query: URLSearchParams): Promise<EndSessionResult> {
  const hint = single(query, 'id_token_hint');
  const clientId = single(query, 'client_id');
  const redirectUri = single(query, 'post_logout_redirect_uri');
  const state = single(query, 'state');
  if (hint === undefined) throw new InvalidRequestError('"id_token_hint" is required: a broker ID token of the session to end');
  if (state !== undefined && state.length > MAX_STATE_LENGTH) throw new InvalidRequestError(`"state" must hold at most ${MAX_STATE_LENGTH} characters`);
  if (clientId !== undefined) {
    const client = Object.hasOwn(rt.config.clients, clientId) ? rt.config.clients[clientId] : undefined;
    if (!client) throw new InvalidRequestError('unknown "client_id"');
    checkRedirect(client, redirectUri); // cheap, before any signature check
  }
  const verified = await verifyIdTokenHint(rt, hint, clientId);
  const client = verified.client;
  checkRedirect(client, redirectUri);

  // Read, revoke, then delete, as `POST /logout` does (lib/broker/logout.ts).
  const { ended, session: s } = await endSessionFor(rt, verified.sid, { kind: 'client', clientId: client.id, provider: verified.idp });
  if (s) rt.log.info('session.logout', { client_id: s.clientId, provider: s.provider, via: 'end_session' });
  // Ended before (or just now): either way the provider's browser session is ended too.
  // A client in proxy mode holds no broker ID token to send here; should it come anyway, its
  // redirect carries no provider ID token either.
  const upstream = await providerEndSessionUrl(rt, verified.idp, client.tokenDelivery === 'proxy' ? undefined : s, { postLogoutRedirectUri: redirectUri, state });
  const location = upstream ?? (redirectUri !== undefined ? withParams(redirectUri, { state, iss: rt.config.publicUrl }) : undefined);
  return { sid: verified.sid, ended, location };
}
