/** `POST /backchannel-logout/{provider}`: a provider's logout token (lib/broker/backchannel-logout.ts). */
import { backchannelLogout, backchannelProvider } from '../broker/backchannel-logout.js';
import { NO_STORE } from '../http/respond.js';
import type { HttpResponse } from '../http/types.js';
import { formBody, route } from './common.js';

/**
 * Server to server: no CORS, no cookies. Back-Channel Logout 1.0 §2.8: `200` when the logout
 * succeeded (also when no session matched), `400` with a JSON error when the token failed a check,
 * never cached. An unknown provider, or one without `backchannelLogout`, is `404` before anything
 * else is read.
 */
export const backchannelLogoutRoute = route({ errors: 'page', cors: 'none' }, async (rt, req): Promise<HttpResponse> => {
  const provider = backchannelProvider(rt, req.params['provider']);
  await backchannelLogout(rt, provider, formBody(req));
  return { status: 200, headers: { ...NO_STORE, 'x-content-type-options': 'nosniff' }, cookies: [], body: '' };
});
