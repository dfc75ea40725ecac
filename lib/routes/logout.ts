/** `POST /logout`: web (cookie) and native (handle; also the RFC 7009 revocation endpoint). */
import { readHandle } from '../broker/credentials.js';
import { logout, type LogoutResult } from '../broker/logout.js';
import { required, single } from '../broker/params.js';
import { InvalidClientError } from '../errors.js';
import { sessionCookieName } from '../http/cookies.js';
import type { HttpRequest } from '../http/types.js';
import { json } from '../http/respond.js';
import { checkBrowserRequest, clearSessionCookie, formBody, route, sessionCredential } from './common.js';

const body = (r: LogoutResult) => (r.endSessionUrl ? { end_session_url: r.endSessionUrl } : {});

/**
 * A native logout or revocation carries the handle, and its `client_id`, in a form body; a web
 * logout carries the cookie and `X-Broker-Csrf`. A form with a `client_id` but no handle, no
 * CSRF header and no session cookie is a revocation request that lacks its token (RFC 7009
 * §2.1: 400); with the cookie it is a web logout (403 without the header, as the contract says).
 */
const isNative = (req: HttpRequest) => req.body.length > 0 && /^application\/x-www-form-urlencoded/i.test(req.headers['content-type'] ?? '')
  && (/(^|&)(refresh_token|token)=/.test(req.body)
    || (/(^|&)client_id=/.test(req.body) && req.headers['x-broker-csrf'] === undefined && !req.cookies.has(sessionCookieName(true)) && !req.cookies.has(sessionCookieName(false))));

export const logoutRoute = route(
  (req) => (isNative(req) ? { errors: 'native', cors: 'origins' } : { errors: 'browser', cors: 'credentials' }),
  async (rt, req) => {
    if (isNative(req)) {
      const form = formBody(req);
      const clientId = required(form, 'client_id');
      const client = Object.hasOwn(rt.config.clients, clientId) ? rt.config.clients[clientId] : undefined;
      if (!client) throw new InvalidClientError('unknown "client_id"');
      // RFC 7009 §2.1: `token` is required (`refresh_token` is the contract's own name for it).
      const token = single(form, 'refresh_token') ?? required(form, 'token');
      single(form, 'token_type_hint');
      // RFC 7009 §2.2: an invalid token is not an error; it is answered like an ended session.
      return json(200, body(await logout(rt, { kind: 'handle', credential: readHandle(token), client })));
    }
    const clientIds = checkBrowserRequest(rt, req, true);
    const credential = sessionCredential(rt, req);
    const result = credential ? await logout(rt, { kind: 'cookie', credential, ...(clientIds ? { clientIds } : {}) }) : { ended: false, endSessionUrl: undefined };
    return json(200, body(result), {}, [clearSessionCookie(rt)]);
  },
);
