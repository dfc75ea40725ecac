/** `GET /login`, and `POST /login` with the same parameters as a form (OIDC Core §3.1.2.1). */
import { startLogin } from '../broker/start-login.js';
import { clearCookie, isTxnCookieName } from '../http/cookies.js';
import { redirect } from '../http/respond.js';
import { requestParams, route } from './common.js';

/** More pending logins than this in one browser are abandoned ones: their cookies are cleared. */
const MAX_PENDING_LOGINS = 8;

export const loginRoute = route({ errors: 'redirect', cors: 'none' }, async (rt, req) => {
  const result = await startLogin(rt, requestParams(req));
  const secure = rt.config.secureCookies;
  const pending = [...req.cookies.keys()].filter((name) => isTxnCookieName(name, secure));
  // Every pending login's cookie rides on every request to the broker: keep their number bounded.
  const cleared = pending.length >= MAX_PENDING_LOGINS ? pending.map((name) => clearCookie(name, { sameSite: 'Lax', secure })) : [];
  // After a POST, 303 (RFC 9110 §15.4.4): the provider's authorization endpoint is fetched with GET.
  return redirect(result.location, { status: req.method === 'POST' ? 303 : 302, cookies: [...cleared, result.cookie] });
});
