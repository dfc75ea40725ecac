/** `GET /end-session`, and `POST /end-session` with the same parameters as a form: RP-Initiated Logout 1.0 §2 (lib/broker/end-session.ts). */
import { endSession } from '../broker/end-session.js';
import { NO_STORE, redirect } from '../http/respond.js';
import type { HttpResponse } from '../http/types.js';
import { clearSessionCookie, requestParams, route, sessionCredential } from './common.js';

const LOGGED_OUT_PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Logged out</title></head><body><p>You are logged out.</p></body></html>';

/** A refused request is `400` JSON, never a redirect (RP-Initiated Logout 1.0 §2, CONTRACT.md). */
export const endSessionRoute = route({ errors: 'page', cors: 'none' }, async (rt, req): Promise<HttpResponse> => {
  const result = await endSession(rt, requestParams(req));
  // Only this browser's cookie of the ended session is cleared, never another session's.
  const cookies = sessionCredential(rt, req)?.sid === result.sid ? [clearSessionCookie(rt)] : [];
  if (result.location) return redirect(result.location, { status: req.method === 'POST' ? 303 : 302, cookies });
  return {
    status: 200,
    headers: {
      ...NO_STORE,
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': "default-src 'none'",
      'x-content-type-options': 'nosniff',
      'referrer-policy': 'no-referrer',
    },
    cookies,
    body: LOGGED_OUT_PAGE,
  };
});
