/** `GET /login`. */
import { startLogin } from '../broker/start-login.js';
import { clearCookie } from '../http/cookies.js';
import { redirect } from '../http/respond.js';
import { route } from './common.js';

/** More pending logins than this in one browser are abandoned ones: their cookies are cleared. */
const MAX_PENDING_LOGINS = 8;

export const loginRoute = route({ errors: 'redirect', cors: 'none' }, async (rt, req) => {
  const result = await startLogin(rt, req.query);
  const pending = [...req.cookies.keys()].filter((name) => /^(__Host-)?broker-txn-/.test(name));
  // Every pending login's cookie rides on every request to the broker: keep their number bounded.
  const cleared = pending.length >= MAX_PENDING_LOGINS
    ? pending.map((name) => clearCookie(name, { sameSite: 'Lax', secure: rt.config.secureCookies || name.startsWith('__Host-') }))
    : [];
  return redirect(result.location, { cookies: [...cleared, result.cookie] });
});
