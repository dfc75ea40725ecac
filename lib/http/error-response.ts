/**
 * The one place an error becomes a response. Routes only throw; each route names its error
 * profile (`RouteSpec.errors`), and `lambdaHandler` applies it:
 *
 * - `native`: JSON for apps that hold a handle (`/token`, native `/logout`); an ended session is
 *   `400 invalid_grant` (RFC 6749 §5.2).
 * - `browser`: JSON for the cookie endpoints; an ended session is `401 invalid_grant` and the
 *   session cookie is cleared.
 * - `redirect`: `/login` and `/callback`; an `AppRedirectError` (the app's redirect URI is
 *   trusted) is a redirect to the app, `303` after a form_post; anything else is JSON.
 * - `page`: plain JSON (metadata, unknown routes).
 *
 * A `BrokerError` gives its status and `{error, error_description}`; anything else is a bare
 * `500 server_error`, its detail only in the log, which never holds a secret or token.
 */
import { AppRedirectError, BrokerError, errorBody, MethodNotAllowedError, SessionEndedError } from '../errors.js';
import { errorFields, type Logger } from '../log.js';
import { clearCookie, sessionCookieName } from './cookies.js';
import { json, redirect } from './respond.js';
import type { HttpRequest, HttpResponse } from './types.js';

export type ErrorProfile = 'native' | 'browser' | 'redirect' | 'page';

export interface ErrorContext {
  readonly log: Logger;
  readonly secureCookies: boolean;
}

export function errorResponse(ctx: ErrorContext, err: unknown, profile: ErrorProfile, req: Pick<HttpRequest, 'method'>, headers: Record<string, string> = {}): HttpResponse {
  logFailure(ctx.log, err);
  if (profile === 'redirect' && err instanceof AppRedirectError) {
    return redirect(err.location, { status: req.method === 'POST' ? 303 : 302, cookies: [...err.cookies] });
  }
  const { status, body } = errorBody(err instanceof AppRedirectError ? new BrokerError(err.code, 400, err.description) : err);
  const extra: Record<string, string> = { ...headers };
  // RFC 6749 §5.2: a 401 for client authentication carries a challenge.
  if (status === 401 && body.error === 'invalid_client') extra['www-authenticate'] = 'Basic realm="broker"';
  if (err instanceof MethodNotAllowedError && err.allow.length) extra['allow'] = err.allow.join(', ');
  if (profile === 'browser' && err instanceof SessionEndedError) {
    const cleared = clearCookie(sessionCookieName(ctx.secureCookies), { sameSite: 'Strict', secure: ctx.secureCookies });
    return json(401, body, extra, [cleared]);
  }
  return json(status, body, extra);
}

function logFailure(log: Logger, err: unknown): void {
  if (err instanceof BrokerError && err.status < 500) log.info('request.rejected', errorFields(err));
  else log.error('request.failed', errorFields(err));
}
