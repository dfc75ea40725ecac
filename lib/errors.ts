/**
 * The broker's one error model.
 *
 * A programmer's mistake is a `TypeError`. Everything a request can cause is a `BrokerError`
 * with a stable OAuth error `code` (RFC 6749 §4.1.2.1, §5.2), an HTTP `status` and a `cause`.
 * `errorBody` is the only place an error becomes a response body, and `errorResponse`
 * (lib/http/error-response.ts) the only place it becomes a response.
 */

/** Every error code a broker response can carry. */
export const ERROR_CODES = [
  'invalid_request',
  'invalid_client',
  'invalid_grant',
  'unauthorized_client',
  'unsupported_grant_type',
  'invalid_scope',
  'access_denied',
  'unsupported_response_type',
  'server_error',
  'temporarily_unavailable',
  // OIDC Core §3.1.2.6: what an OP that takes no request objects and no registration answers.
  'request_not_supported',
  'request_uri_not_supported',
  'registration_not_supported',
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class BrokerError extends Error {
  override readonly name: string = 'BrokerError';
  readonly code: ErrorCode;
  readonly status: number;
  /** Text for `error_description`; never holds a token, a secret or internal detail. */
  readonly description: string;

  constructor(code: ErrorCode, status: number, description: string, options?: { cause?: unknown }) {
    super(`${code}: ${description}`, options);
    this.code = code;
    this.status = status;
    this.description = description;
  }
}

/** `400 invalid_request`: the caller's input is malformed. */
export class InvalidRequestError extends BrokerError {
  override readonly name: string = 'InvalidRequestError';
  constructor(description: string, options?: { cause?: unknown }) {
    super('invalid_request', 400, description, options);
  }
}

/** `400 invalid_grant`: a code, handle or session that is unknown, used, expired or ended. */
export class InvalidGrantError extends BrokerError {
  override readonly name: string = 'InvalidGrantError';
  constructor(description: string, options?: { cause?: unknown; status?: number }) {
    super('invalid_grant', options?.status ?? 400, description, options);
  }
}

/** The session is over (ended, expired, revoked or unreadable): `invalid_grant`; web clears the cookie. */
export class SessionEndedError extends InvalidGrantError {
  override readonly name: string = 'SessionEndedError';
  constructor(description = 'the session has ended', options?: { cause?: unknown; status?: number }) {
    super(description, options);
  }
}

/** `401 invalid_client`: the `client_id` is not registered (RFC 6749 §5.2). */
export class InvalidClientError extends BrokerError {
  override readonly name: string = 'InvalidClientError';
  constructor(description: string) {
    super('invalid_client', 401, description);
  }
}

/** `403 access_denied`: a missing CSRF header or a foreign Origin. */
export class ForbiddenError extends BrokerError {
  override readonly name: string = 'ForbiddenError';
  constructor(description: string) {
    super('access_denied', 403, description);
  }
}

/** The provider could not be reached, timed out or answered 5xx: `503 temporarily_unavailable`. */
export class UpstreamUnavailableError extends BrokerError {
  override readonly name: string = 'UpstreamUnavailableError';
  constructor(description: string, options?: { cause?: unknown }) {
    super('temporarily_unavailable', 503, description, options);
  }
}

/** A dependency of the broker itself (storage, secrets) is briefly unavailable: `503 temporarily_unavailable`. */
export class BrokerUnavailableError extends BrokerError {
  override readonly name: string = 'BrokerUnavailableError';
  constructor(description: string, options?: { cause?: unknown }) {
    super('temporarily_unavailable', 503, description, options);
  }
}

/** The provider answered something malformed or oversized: `502 server_error`. */
export class UpstreamMalformedError extends BrokerError {
  override readonly name: string = 'UpstreamMalformedError';
  constructor(description: string, options?: { cause?: unknown }) {
    super('server_error', 502, description, options);
  }
}

/**
 * The provider refused a request with a 4xx that is not an OAuth error (no JSON `error`, e.g.
 * Glewlwyd's bare 400 for a revoked refresh token): `502 server_error`, and on refresh it counts
 * towards ending the session (docs/design.md, "A provider that answers garbage").
 */
export class UpstreamRejectedError extends UpstreamMalformedError {
  override readonly name: string = 'UpstreamRejectedError';
  readonly upstreamStatus: number;
  constructor(description: string, upstreamStatus: number) {
    super(description);
    this.upstreamStatus = upstreamStatus;
  }
}

/**
 * The provider answered with an OAuth error body (RFC 6749 §5.2). `upstreamCode` is the
 * provider's `error`, kept for the log; what the app sees depends on the operation.
 */
export class UpstreamOAuthError extends BrokerError {
  override readonly name: string = 'UpstreamOAuthError';
  readonly upstreamCode: string;
  readonly upstreamStatus: number;
  constructor(upstreamCode: string, upstreamStatus: number) {
    super(upstreamCode === 'invalid_grant' ? 'invalid_grant' : 'server_error', upstreamCode === 'invalid_grant' ? 400 : 502,
      `the provider refused the request (${upstreamCode})`);
    this.upstreamCode = upstreamCode;
    this.upstreamStatus = upstreamStatus;
  }
}

/** An ID token or other signed answer from the provider failed a check (OIDC Core §3.1.3.7). */
export class TokenValidationError extends BrokerError {
  override readonly name: string = 'TokenValidationError';
  constructor(description: string, options?: { cause?: unknown }) {
    super('access_denied', 400, description, options);
  }
}

/** A stored ciphertext could not be decrypted: wrong key, removed key, wrong record, tampered. */
export class DecryptionError extends BrokerError {
  override readonly name: string = 'DecryptionError';
  constructor(options?: { cause?: unknown }) {
    super('invalid_grant', 400, 'the session can no longer be read', options);
  }
}

/** `404 invalid_request`: no such endpoint (a route no function serves). */
export class NotFoundError extends BrokerError {
  override readonly name: string = 'NotFoundError';
  constructor(description = 'no such endpoint') {
    super('invalid_request', 404, description);
  }
}

/**
 * `405 invalid_request`: a method the API proxy does not carry (e.g. TRACE, which would reflect
 * the token); `allow` the ones it does, for the `Allow` header RFC 9110 §15.5.6 asks for.
 */
export class MethodNotAllowedError extends BrokerError {
  override readonly name: string = 'MethodNotAllowedError';
  constructor(description: string, readonly allow: readonly string[] = []) {
    super('invalid_request', 405, description);
  }
}

/** `413 invalid_request`: a request body over the API proxy's cap; nothing is sent on. */
export class PayloadTooLargeError extends BrokerError {
  override readonly name: string = 'PayloadTooLargeError';
  constructor(description: string) {
    super('invalid_request', 413, description);
  }
}

/**
 * `502 server_error`: an API behind the proxy could not be reached, broke off its answer, or
 * answered more than the proxy carries. Nothing of the API's answer reaches the app.
 */
export class ApiUnavailableError extends BrokerError {
  override readonly name: string = 'ApiUnavailableError';
  constructor(description: string, options?: { cause?: unknown }) {
    super('server_error', 502, description, options);
  }
}

/** `504 temporarily_unavailable`: an API behind the proxy did not answer in time. */
export class ApiTimeoutError extends BrokerError {
  override readonly name: string = 'ApiTimeoutError';
  constructor(description: string, options?: { cause?: unknown }) {
    super('temporarily_unavailable', 504, description, options);
  }
}

/**
 * An error answered by a redirect to the app (RFC 6749 §4.1.2.1): thrown by `/login` and
 * `/callback` once the app's redirect URI is trusted. `location` carries the error, the app's
 * `state` and `iss`; `cookies` are set with it (e.g. the cleared transaction cookie).
 */
export class AppRedirectError extends BrokerError {
  override readonly name: string = 'AppRedirectError';
  readonly location: string;
  readonly cookies: readonly string[];
  constructor(code: ErrorCode, description: string, location: string, options?: { cause?: unknown; cookies?: readonly string[] }) {
    super(code, 302, description, options);
    this.location = location;
    this.cookies = options?.cookies ?? [];
  }
}

export interface ErrorBody {
  readonly error: ErrorCode;
  readonly error_description: string;
}

/** Maps any thrown value to a status and body; unknown errors become a bare `500 server_error`. */
/**
 * RFC 6749 §4.1.2.1, §5.2: an `error_description` is NQSCHAR only (%x20-21 / %x23-5B / %x5D-7E):
 * the broker's texts quote parameter names, so `"` becomes `'`, `\` `/`, and anything else
 * outside the set (`§`, a line break) goes.
 */
export const oauthDescription = (text: string): string =>
  text.replace(/"/g, "'").replace(/\\/g, '/').replace(/§\s?/g, 'section ').replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, '');

export function errorBody(err: unknown): { status: number; body: ErrorBody } {
  if (err instanceof BrokerError) {
    return { status: err.status, body: { error: err.code, error_description: oauthDescription(err.description) } };
  }
  return { status: 500, body: { error: 'server_error', error_description: 'internal error' } };
}
