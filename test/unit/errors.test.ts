import { describe, expect, it } from 'vitest';
import {
  ApiTimeoutError,
  ApiUnavailableError,
  BrokerError,
  DecryptionError,
  ERROR_CODES,
  ForbiddenError,
  InvalidClientError,
  InvalidGrantError,
  InvalidRequestError,
  MethodNotAllowedError,
  PayloadTooLargeError,
  TokenValidationError,
  UpstreamMalformedError,
  UpstreamOAuthError,
  UpstreamUnavailableError,
  errorBody,
} from '../../lib/errors.js';

describe('errorBody: anything that is not a BrokerError', () => {
  it('maps a plain Error to 500 server_error without its message', () => {
    const out = errorBody(new Error('db password is hunter2'));
    expect(out).toEqual({ status: 500, body: { error: 'server_error', error_description: 'internal error' } });
    expect(JSON.stringify(out)).not.toContain('hunter2');
  });

  it('maps a TypeError, a string and undefined the same way', () => {
    for (const thrown of [new TypeError('x is undefined'), 'just a string', undefined, null, { status: 400, code: 'invalid_grant' }]) {
      expect(errorBody(thrown)).toEqual({ status: 500, body: { error: 'server_error', error_description: 'internal error' } });
    }
  });
});

describe('errorBody: BrokerError subclasses', () => {
  it.each([
    ['InvalidRequestError', new InvalidRequestError('missing code'), 400, 'invalid_request', 'missing code'],
    ['InvalidGrantError', new InvalidGrantError('unknown handle'), 400, 'invalid_grant', 'unknown handle'],
    ['InvalidGrantError with status', new InvalidGrantError('ended', { status: 401 }), 401, 'invalid_grant', 'ended'],
    ['InvalidClientError', new InvalidClientError('unknown client'), 401, 'invalid_client', 'unknown client'],
    ['ForbiddenError', new ForbiddenError('bad origin'), 403, 'access_denied', 'bad origin'],
    ['UpstreamUnavailableError', new UpstreamUnavailableError('timed out'), 503, 'temporarily_unavailable', 'timed out'],
    ['UpstreamMalformedError', new UpstreamMalformedError('not JSON'), 502, 'server_error', 'not JSON'],
    ['TokenValidationError', new TokenValidationError('bad iss'), 400, 'access_denied', 'bad iss'],
    ['PayloadTooLargeError', new PayloadTooLargeError('too large'), 413, 'invalid_request', 'too large'],
    ['MethodNotAllowedError', new MethodNotAllowedError('no TRACE'), 405, 'invalid_request', 'no TRACE'],
    ['ApiUnavailableError', new ApiUnavailableError('unreachable'), 502, 'server_error', 'unreachable'],
    ['ApiTimeoutError', new ApiTimeoutError('no answer'), 504, 'temporarily_unavailable', 'no answer'],
    ['DecryptionError', new DecryptionError(), 400, 'invalid_grant', 'the session can no longer be read'],
    ['BrokerError', new BrokerError('unsupported_grant_type', 400, 'no'), 400, 'unsupported_grant_type', 'no'],
  ])('maps %s', (_name, err, status, code, description) => {
    expect(err).toBeInstanceOf(BrokerError);
    expect(errorBody(err)).toEqual({ status, body: { error: code, error_description: description } });
  });

  it('maps an upstream invalid_grant to 400 invalid_grant and other upstream codes to 502 server_error', () => {
    expect(errorBody(new UpstreamOAuthError('invalid_grant', 400))).toEqual({
      status: 400,
      body: { error: 'invalid_grant', error_description: 'the provider refused the request (invalid_grant)' },
    });
    expect(errorBody(new UpstreamOAuthError('invalid_client', 401))).toEqual({
      status: 502,
      body: { error: 'server_error', error_description: 'the provider refused the request (invalid_client)' },
    });
  });

  it('does not put the cause in the body', () => {
    const err = new UpstreamUnavailableError('the provider could not be reached', { cause: new Error('connect ECONNREFUSED secret-host') });
    expect(err.cause).toBeInstanceOf(Error);
    expect(JSON.stringify(errorBody(err))).not.toContain('secret-host');
  });

  it('keeps names and codes stable', () => {
    expect(new DecryptionError().name).toBe('DecryptionError');
    expect(new UpstreamOAuthError('x', 400).name).toBe('UpstreamOAuthError');
    for (const err of [new InvalidRequestError('a'), new UpstreamMalformedError('b'), new DecryptionError()]) {
      expect(ERROR_CODES).toContain(err.code);
    }
  });
});
