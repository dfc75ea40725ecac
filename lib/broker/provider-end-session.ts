/**
 * The provider's end-session URL (OpenID Connect RP-Initiated Logout 1.0 §2), as `POST /logout`
 * names it and `GET /end-session` redirects to it: the broker's client id there, the provider's
 * own ID token of the session as `id_token_hint` (the only way that token ever leaves the
 * broker), and the app's post-logout redirect URI and `state`, which the provider must know too.
 */
import { errorFields } from '../log.js';
import type { Runtime } from '../runtime.js';
import type { SessionRecord } from '../store/sessions.js';
import { withParams } from './params.js';
import { fieldContext } from './session-tokens.js';

export interface EndSessionParams {
  readonly postLogoutRedirectUri?: string | undefined;
  readonly state?: string | undefined;
}

/**
 * Resolves undefined when the provider has no end-session endpoint or its metadata cannot be
 * read (logged): a logout never fails over the provider's half of it.
 */
export async function providerEndSessionUrl(rt: Runtime, providerName: string, s: SessionRecord | undefined, params: EndSessionParams): Promise<string | undefined> {
  const provider = Object.hasOwn(rt.config.providers, providerName) ? rt.config.providers[providerName] : undefined;
  if (!provider) return undefined;
  try {
    const endpoint = (await rt.metadata.get(provider)).endSessionEndpoint;
    if (!endpoint) return undefined;
    let idTokenHint: string | undefined;
    if (s?.idToken) {
      const cipher = await rt.cipher();
      idTokenHint = await cipher.decrypt(s.idToken, fieldContext(s.sid, 'idToken')).catch(() => undefined);
    }
    return withParams(endpoint, {
      client_id: provider.clientId,
      id_token_hint: idTokenHint,
      post_logout_redirect_uri: params.postLogoutRedirectUri,
      state: params.state,
    });
  } catch (err) {
    rt.log.warn('upstream.error', { provider: provider.name, step: 'discovery', ...errorFields(err) });
    return undefined;
  }
}
