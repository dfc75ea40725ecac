/** The web apps' cookie endpoints: `POST /refresh` and `GET /session`. */
import { refreshSession } from '../broker/refresh.js';
import { sessionEndsAt } from '../broker/session-tokens.js';
import { serializeCookie, sessionCookieName } from '../http/cookies.js';
import { sessionInfo } from '../broker/session-info.js';
import { SessionEndedError } from '../errors.js';
import { json } from '../http/respond.js';
import { oidcAnswer } from '../oidc/id-token-issuer.js';
import { checkBrowserRequest, route, sessionCredential } from './common.js';

export const refreshRoute = route({ errors: 'browser', cors: 'credentials' }, async (rt, req) => {
  const clientIds = checkBrowserRequest(rt, req, true);
  const credential = sessionCredential(rt, req);
  if (!credential) throw new SessionEndedError('no live session');
  const { grant, source, session } = await refreshSession(rt, { kind: 'cookie', credential, ...(clientIds ? { clientIds } : {}) });
  // The session's end moves with every refresh (idle time, the provider's refresh_expires_in):
  // the cookie's lifetime follows it.
  const cookie = serializeCookie(sessionCookieName(rt.config.secureCookies), credential.value, {
    sameSite: 'Strict', secure: rt.config.secureCookies, maxAge: Math.max(0, sessionEndsAt(session) - rt.now()),
  });
  // (v2) A client in proxy mode never holds a token: it learns only how long the stored one lives.
  if (rt.config.clients[session.clientId]?.tokenDelivery === 'proxy') {
    return json(200, { expires_in: grant.expiresIn }, { 'x-broker-token-source': source }, [cookie]);
  }
  const oidc = await oidcAnswer(rt, session, { codeExchange: false });
  return json(200, {
    access_token: grant.accessToken,
    token_type: 'Bearer',
    expires_in: grant.expiresIn,
    ...oidc,
    ...(grant.scope !== undefined ? { provider_scope: grant.scope } : {}),
    ...grant.extras,
  }, { 'x-broker-token-source': source }, [cookie]);
});

export const sessionRoute = route({ errors: 'browser', cors: 'credentials' }, async (rt, req) => {
  const clientIds = checkBrowserRequest(rt, req, false);
  const credential = sessionCredential(rt, req);
  if (!credential) throw new SessionEndedError('no live session');
  return json(200, await sessionInfo(rt, credential, clientIds));
});
