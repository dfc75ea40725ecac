/** What the provider holds for a broker session, seen from a test. */
import { fieldContext } from '../../lib/broker/session-tokens.js';
import { getSession } from '../../lib/store/sessions.js';
import type { Harness } from './harness.js';

/** The provider's refresh token a session holds now, as the broker stored it. */
export async function upstreamRefreshToken(h: Harness, sid: string): Promise<string> {
  const s = await getSession(h.runtime.table, sid);
  return (await h.runtime.cipher()).decrypt(s!.refreshToken!, fieldContext(sid, 'refreshToken'));
}

/** Does the provider (oidc-provider) still know this refresh token? It forgets a revoked one. */
export async function aliveAtProvider(h: Harness, refreshToken: string): Promise<boolean> {
  const models = h.op.provider as unknown as { RefreshToken: { find(value: string): Promise<unknown> } };
  return (await models.RefreshToken.find(refreshToken)) !== undefined;
}
