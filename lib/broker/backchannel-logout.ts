/**
 * `POST /backchannel-logout/{provider}`: OpenID Connect Back-Channel Logout 1.0. The provider tells
 * the broker that a user's session there ended (a logout at the provider, an administrator's
 * action), and the broker ends the matching sessions at once.
 *
 * In order: the provider (configured with `backchannelLogout`, else 404), the form's single
 * `logout_token`, the provider's metadata and keys, every check of §2.6 but replay
 * (lib/oauth/logout-token.ts), then the replay check as one conditional write
 * (lib/store/logout-tokens.ts), and only then the sessions are ended (lib/broker/session-lookup.ts).
 * A token that fails a check ends nothing. If storage fails while sessions are being ended, the
 * token's use is forgotten again, so the provider's retry of the same token is served.
 *
 * Upstream refresh tokens are not revoked: the provider ended its side already (§2.7), and a
 * refresh token whose session item is deleted is unreachable (it was stored only there, encrypted).
 */
import type { Provider } from '../config/parse.js';
import { randomToken } from '../crypto/random.js';
import { BrokerError, BrokerUnavailableError, InvalidRequestError, NotFoundError, UpstreamUnavailableError } from '../errors.js';
import { errorFields } from '../log.js';
import { validateLogoutToken, type ValidatedLogoutToken } from '../oauth/logout-token.js';
import type { ProviderMetadata } from '../oauth/metadata.js';
import type { Runtime } from '../runtime.js';
import { forgetLogoutToken, markLogoutTokenDone, rememberLogoutToken } from '../store/logout-tokens.js';
import { single } from './params.js';
import { endSessionsMatching, sessionMatches } from './session-lookup.js';

export interface BackchannelLogoutResult {
  /** How many broker sessions this logout ended (0 is a success too: none matched). */
  readonly ended: number;
}

/** The provider a back-channel logout URI names, if it takes logout tokens; else 404, as for any unknown path. */
export function backchannelProvider(rt: Runtime, name: string | undefined): Provider {
  const provider = name !== undefined && Object.hasOwn(rt.config.providers, name) ? rt.config.providers[name] : undefined;
  if (!provider?.backchannelLogout) throw new NotFoundError();
  return provider;
}

export async function backchannelLogout(rt: Runtime, provider: Provider, form: URLSearchParams): Promise<BackchannelLogoutResult> {
  const log = rt.log.child({ provider: provider.name });
  let token: ValidatedLogoutToken;
  try {
    const logoutToken = single(form, 'logout_token');
    if (logoutToken === undefined) throw new InvalidRequestError('"logout_token" is required');
    let metadata: ProviderMetadata;
    try {
      metadata = await rt.metadata.get(provider);
    } catch (cause) {
      throw new UpstreamUnavailableError('the identity provider\'s metadata could not be fetched', { cause });
    }
    token = await validateLogoutToken({ provider, metadata, jwks: rt.jwks.get(provider, metadata), now: rt.now() }, logoutToken);
  } catch (err) {
    if (err instanceof BrokerError && err.status === 400) log.metric('backchannel.refused', { BackchannelLogoutsRefused: 1 }, errorFields(err));
    throw err;
  }

  // §2.6 step 8: a jti this provider used before is a replay. One conditional write remembers it.
  const owner = randomToken(16);
  const use = { provider: provider.name, jti: token.jti, until: token.acceptableUntil, now: rt.now(), owner };
  const recorded = await rememberLogoutToken(rt.table, use);
  if (recorded === 'replayed') {
    log.metric('backchannel.refused', { BackchannelLogoutsRefused: 1 }, { reason: 'jti replayed' });
    throw new InvalidRequestError('the logout token was used before ("jti")');
  }
  // Another request is ending its sessions right now: the provider's retry, later, is answered.
  if (recorded === 'in-progress') throw new BrokerUnavailableError('this logout token is being handled; try again');

  let ended: number;
  try {
    const cipher = await rt.cipher();
    ended = await endSessionsMatching(rt.table, sessionMatches(cipher, provider.name, { sub: token.sub, sid: token.sid }));
  } catch (err) {
    // Not done: let the provider's retry of this token through. Sessions ended so far stay ended.
    await forgetLogoutToken(rt.table, use).catch((e: unknown) => log.warn('backchannel.forget_failed', errorFields(e)));
    throw err;
  }
  // Done: from now on the token is a replay. Not marked (storage trouble), the record reads as
  // abandoned in a while and a retry ends the same sessions again, which changes nothing.
  await markLogoutTokenDone(rt.table, use).catch((e: unknown) => log.warn('backchannel.mark_failed', errorFields(e)));
  // The provider's identifiers are personal data: only what kind of logout it was goes to the log.
  log.metric('backchannel.logout', { BackchannelLogouts: 1, BackchannelSessionsEnded: ended }, { by: token.sid !== undefined ? (token.sub !== undefined ? 'sid+sub' : 'sid') : 'sub', ended });
  return { ended };
}
