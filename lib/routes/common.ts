/** Pieces shared by the app-facing routes. */
import { ForbiddenError, InvalidRequestError, SessionEndedError } from '../errors.js';
import { clearCookie, sessionCookieName } from '../http/cookies.js';
import { errorResponse, json } from '../http/respond.js';
import type { HttpRequest, HttpResponse } from '../http/types.js';
import { errorFields } from '../log.js';
import type { Runtime } from '../runtime.js';
import { readCredential, type Credential } from '../broker/credentials.js';

export type Route = (rt: Runtime, req: HttpRequest) => Promise<HttpResponse>;

/** A form-encoded body (RFC 6749 §3.2); anything else is `invalid_request`. */
export function formBody(req: HttpRequest): URLSearchParams {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new InvalidRequestError('the body must be application/x-www-form-urlencoded');
  return new URLSearchParams(req.body);
}

/**
 * Cookie-endpoint request checks: the `X-Broker-Csrf: 1` header (when required) and the
 * Origin, which must be one some client allows. Resolves the clients that allow that Origin
 * (undefined when the browser sent none).
 */
export function checkBrowserRequest(rt: Runtime, req: HttpRequest, csrf: boolean): readonly string[] | undefined {
  if (csrf && req.headers['x-broker-csrf'] !== '1') throw new ForbiddenError('the "X-Broker-Csrf: 1" header is required');
  const origin = req.headers['origin'];
  if (origin === undefined) return undefined;
  if (!rt.config.allowedOrigins.has(origin)) throw new ForbiddenError('this origin may not call the broker');
  return Object.values(rt.config.clients).filter((c) => c.allowedOrigins.includes(origin)).map((c) => c.id);
}

export function sessionCredential(rt: Runtime, req: HttpRequest): Credential | undefined {
  return readCredential(req.cookies.get(sessionCookieName(rt.config.secureCookies)));
}

export function clearSessionCookie(rt: Runtime): string {
  return clearCookie(sessionCookieName(rt.config.secureCookies), { sameSite: 'Strict', secure: rt.config.secureCookies });
}

/** A web session that has ended: `401 invalid_grant`, and the cookie is cleared. */
export function sessionEnded(rt: Runtime, headers: Record<string, string>, description = 'no live session'): HttpResponse {
  return json(401, { error: 'invalid_grant', error_description: description }, headers, [clearSessionCookie(rt)]);
}

/** Maps an error of a cookie endpoint: an ended session clears the cookie. */
export function browserError(rt: Runtime, err: unknown, headers: Record<string, string>): HttpResponse {
  logFailure(rt, err);
  if (err instanceof SessionEndedError) return sessionEnded(rt, headers, err.description);
  return errorResponse(err, headers);
}

export function logFailure(rt: Runtime, err: unknown): void {
  if (err instanceof Error && 'status' in err && typeof err.status === 'number' && err.status < 500) rt.log.info('request.rejected', errorFields(err));
  else rt.log.error('request.failed', errorFields(err));
}
