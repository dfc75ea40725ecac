/**
 * Logout and revocation (`POST /logout`, RFC 7009): deletes the session in one conditional
 * delete, revokes its upstream refresh token where the provider can, and names the provider's
 * end-session URL (OIDC RP-Initiated Logout §2). Unknown or ended sessions answer the same.
 */
import type { Client } from '../config/parse.js';
import type { Runtime } from '../runtime.js';
import { deleteSession, type SessionRecord } from '../store/sessions.js';
import { S } from '../store/table.js';
import type { Credential } from './credentials.js';
import { providerEndSessionUrl } from './provider-end-session.js';
import { revokeUpstream } from './refresh.js';

export interface LogoutResult {
  readonly endSessionUrl: string | undefined;
  readonly ended: boolean;
}

export type LogoutCredential =
  /** `credential` undefined: a token that is not the broker's; answered like an ended session. */
  | { readonly kind: 'handle'; readonly credential: Credential | undefined; readonly client: Client }
  | { readonly kind: 'cookie'; readonly credential: Credential; readonly clientIds?: readonly string[] };

export async function logout(rt: Runtime, input: LogoutCredential): Promise<LogoutResult> {
  if (!input.credential) {
    return { ended: false, endSessionUrl: input.kind === 'handle' ? await endSessionUrl(rt, input.client, input.client.providers[0]!, undefined) : undefined };
  }
  const values = { ':h': S(input.credential.hash) };
  let expression: string;
  if (input.kind === 'handle') {
    Object.assign(values, { ':c': S(input.client.id) });
    expression = 'clientId = :c AND (handleHash = :h OR prevHandleHash = :h)';
  } else {
    expression = 'cookieHash = :h';
    if (input.clientIds) {
      input.clientIds.forEach((id, i) => Object.assign(values, { [`:c${i}`]: S(id) }));
      expression += input.clientIds.length ? ` AND clientId IN (${input.clientIds.map((_, i) => `:c${i}`).join(', ')})` : ' AND attribute_not_exists(pk)';
    }
  }
  const s = await deleteSession(rt.table, input.credential.sid, { expression, values });
  if (!s) {
    const client = input.kind === 'handle' ? input.client : undefined;
    return { ended: false, endSessionUrl: client ? await endSessionUrl(rt, client, client.providers[0]!, undefined) : undefined };
  }
  rt.log.info('session.logout', { client_id: s.clientId, provider: s.provider });
  await revokeUpstream(rt, s);
  const client = rt.config.clients[s.clientId];
  return { ended: true, endSessionUrl: client ? await endSessionUrl(rt, client, s.provider, s) : undefined };
}

function endSessionUrl(rt: Runtime, client: Client, providerName: string, s: SessionRecord | undefined): Promise<string | undefined> {
  return providerEndSessionUrl(rt, providerName, s, { postLogoutRedirectUri: client.postLogoutRedirectUri });
}
