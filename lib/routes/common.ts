/** Pieces shared by the app-facing routes. */
import { ForbiddenError, InvalidRequestError } from '../errors.js';
import { clearCookie, sessionCookieName } from '../http/cookies.js';
import type { ErrorProfile } from '../http/error-response.js';
import type { HttpRequest, HttpResponse } from '../http/types.js';
import type { Runtime } from '../runtime.js';
import { readCredential, type Credential } from '../broker/credentials.js';

/** A route's work: it answers, or throws; `lambdaHandler` turns what it throws into an answer. */
export type Handle = (rt: Runtime, req: HttpRequest) => Promise<HttpResponse>;

/** CORS of a route's answers, errors included: none, for allowed origins, or with credentials. */
export type CorsMode = 'none' | 'origins' | 'credentials';

/** How a request is answered: the route's work, its error profile and its CORS. */
export interface RouteProfile {
  readonly errors: ErrorProfile;
  readonly cors: CorsMode;
}

export interface Route {
  readonly handle: Handle;
  /** Fixed, or per request (`/logout` serves native and web apps alike). */
  readonly profile: RouteProfile | ((req: HttpRequest) => RouteProfile);
}

export function route(profile: Route['profile'], handle: Handle): Route {
  return { profile, handle };
}

/** A form-encoded body (RFC 6749 §3.2); anything else is `invalid_request`. */
export function formBody(req: HttpRequest): URLSearchParams {
  const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new InvalidRequestError('the body must be application/x-www-form-urlencoded');
  return new URLSearchParams(req.body);
}

/** An endpoint's parameters: the query of a GET, the form body of a POST (OIDC Core §3.1.2.1's two serializations). */
export function requestParams(req: HttpRequest): URLSearchParams {
  return req.method === 'POST' ? formBody(req) : req.query;
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

