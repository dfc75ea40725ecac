/** `GET /end-session`: RP-Initiated Logout (lib/broker/end-session.ts). */
import { endSession } from '../broker/end-session.js';
import { errorResponse, NO_STORE, redirect } from '../http/respond.js';
import type { HttpResponse } from '../http/types.js';
import { clearSessionCookie, logFailure, sessionCredential, type Route } from './common.js';

const LOGGED_OUT_PAGE = '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Logged out</title></head><body><p>You are logged out.</p></body></html>';

export const endSessionRoute: Route = async (rt, req): Promise<HttpResponse> => {
  try {
    const result = await endSession(rt, req.query);
    // Only this browser's cookie of the ended session is cleared, never another session's.
    const cookies = sessionCredential(rt, req)?.sid === result.sid ? [clearSessionCookie(rt)] : [];
    if (result.location) return redirect(result.location, { cookies });
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
  } catch (err) {
    logFailure(rt, err);
    return errorResponse(err);
  }
};
