import { describe, expect, it } from 'vitest';
import { thrownBy } from '../../support/errors.js';
import { UpstreamMalformedError, UpstreamOAuthError, UpstreamUnavailableError } from '../../../lib/errors.js';
import type { UpstreamResponse } from '../../../lib/oauth/http.js';
import { parseTokenResponse } from '../../../lib/oauth/token-response.js';

const JSON_TYPE = 'application/json;charset=UTF-8';

const res = (status: number, body: unknown, contentType = JSON_TYPE): UpstreamResponse => ({
  status,
  contentType,
  text: typeof body === 'string' ? body : JSON.stringify(body),
});

const ok = (fields: Record<string, unknown>) => res(200, { access_token: 'at', token_type: 'Bearer', ...fields });

const failure = (input: UpstreamResponse): Error => thrownBy(() => parseTokenResponse(input), Error);

function malformed(input: UpstreamResponse): UpstreamMalformedError {
  const err = failure(input);
  expect(err).toBeInstanceOf(UpstreamMalformedError);
  expect((err as UpstreamMalformedError).status).toBe(502);
  expect((err as UpstreamMalformedError).code).toBe('server_error');
  return err as UpstreamMalformedError;
}

describe('parseTokenResponse: rejections', () => {
  it.each([500, 502, 503, 504])('maps %i to UpstreamUnavailableError (503 temporarily_unavailable)', (status) => {
    const err = failure(res(status, { error: 'invalid_grant' }));
    expect(err).toBeInstanceOf(UpstreamUnavailableError);
    expect((err as UpstreamUnavailableError).status).toBe(503);
    expect((err as UpstreamUnavailableError).code).toBe('temporarily_unavailable');
  });

  it('maps 400 invalid_grant to UpstreamOAuthError (400 invalid_grant)', () => {
    const err = failure(res(400, { error: 'invalid_grant', error_description: 'Token is not active' }));
    expect(err).toBeInstanceOf(UpstreamOAuthError);
    const oauth = err as UpstreamOAuthError;
    expect(oauth.upstreamCode).toBe('invalid_grant');
    expect(oauth.upstreamStatus).toBe(400);
    expect(oauth.code).toBe('invalid_grant');
    expect(oauth.status).toBe(400);
    expect(oauth.description).not.toContain('Token is not active');
  });

  it('maps 401 invalid_client to UpstreamOAuthError with a 502 server_error', () => {
    const err = failure(res(401, { error: 'invalid_client' }, 'text/plain'));
    expect(err).toBeInstanceOf(UpstreamOAuthError);
    expect((err as UpstreamOAuthError).upstreamCode).toBe('invalid_client');
    expect((err as UpstreamOAuthError).upstreamStatus).toBe(401);
    expect((err as UpstreamOAuthError).status).toBe(502);
    expect((err as UpstreamOAuthError).code).toBe('server_error');
  });

  it('maps a 400 that is not JSON to UpstreamMalformedError', () => {
    malformed(res(400, '<html>Bad Request</html>', 'text/html'));
  });

  it('maps a 400 whose error is not a valid code to UpstreamMalformedError', () => {
    malformed(res(400, { error: 42 }));
    malformed(res(400, { error: 'bad "quote"' }));
    malformed(res(400, { error: '' }));
  });

  it('maps a 3xx to UpstreamMalformedError', () => {
    malformed(res(302, ''));
  });

  it('maps a 200 text/html to UpstreamMalformedError', () => {
    malformed(res(200, '<html>login</html>', 'text/html; charset=utf-8'));
  });

  it('maps a 200 JSON body under a non-JSON content type to UpstreamMalformedError', () => {
    malformed(res(200, { access_token: 'at', token_type: 'Bearer' }, 'text/plain'));
  });

  it('maps a 200 with invalid JSON or a non-object to UpstreamMalformedError', () => {
    malformed(res(200, '{"access_token":'));
    malformed(res(200, '["at"]'));
    malformed(res(200, 'null'));
  });

  it('maps a 200 JSON without access_token to UpstreamMalformedError', () => {
    malformed(res(200, { token_type: 'Bearer', expires_in: 300 }));
    malformed(ok({ access_token: '' }));
    malformed(ok({ access_token: 42 }));
  });

  it.each([
    ['a line break (it would split the API call\'s Authorization header)', 'at-\r\nX-Injected: 1'],
    ['a NUL', 'at-\u0000x'],
    ['a tab', 'at-\tx'],
    ['a character past ASCII', 'at-€'],
  ])('maps a token with %s to UpstreamMalformedError (RFC 6749 Appendix A: VSCHAR only)', (_what, token) => {
    malformed(ok({ access_token: token }));
    malformed(ok({ refresh_token: token }));
    malformed(ok({ id_token: token }));
  });

  it('takes a token of any visible ASCII, space included (RFC 6749 Appendix A.12)', () => {
    const token = Array.from({ length: 0x7f - 0x20 }, (_, i) => String.fromCharCode(0x20 + i)).join('');
    expect(parseTokenResponse(ok({ access_token: token, refresh_token: token })).accessToken).toBe(token);
  });

  it('maps token_type mac, or none, to UpstreamMalformedError', () => {
    malformed(ok({ token_type: 'mac' }));
    malformed(ok({ token_type: 'DPoP' }));
    malformed(ok({ token_type: undefined }));
  });

  it('maps a negative, fractional-string or non-numeric expires_in to UpstreamMalformedError', () => {
    malformed(ok({ expires_in: -1 }));
    malformed(ok({ expires_in: '-1' }));
    malformed(ok({ expires_in: '1.5' }));
    malformed(ok({ expires_in: 'soon' }));
    malformed(ok({ expires_in: true }));
    malformed(ok({ refresh_expires_in: -30 }));
  });

  it('maps a refresh_token or id_token of the wrong type to UpstreamMalformedError', () => {
    malformed(ok({ refresh_token: 123 }));
    malformed(ok({ refresh_token: '' }));
    malformed(ok({ id_token: {} }));
    malformed(ok({ access_token: 'a'.repeat(16 * 1024 + 1) }));
  });
});

describe('parseTokenResponse: valid answers', () => {
  it('parses a full answer', () => {
    expect(
      parseTokenResponse(ok({
        expires_in: 300,
        refresh_token: 'rt',
        refresh_expires_in: 1800,
        id_token: 'h.p.s',
        scope: 'openid profile',
      })),
    ).toEqual({ accessToken: 'at', expiresIn: 300, refreshToken: 'rt', refreshExpiresIn: 1800, idToken: 'h.p.s', scope: 'openid profile' });
  });

  it('accepts a lowercase bearer', () => {
    expect(parseTokenResponse(ok({ token_type: 'bearer' })).accessToken).toBe('at');
  });

  it('accepts expires_in as a string of digits', () => {
    expect(parseTokenResponse(ok({ expires_in: '3600' })).expiresIn).toBe(3600);
  });

  it('accepts refresh_expires_in 0 (no limit)', () => {
    expect(parseTokenResponse(ok({ refresh_expires_in: 0 })).refreshExpiresIn).toBe(0);
  });

  it('accepts a missing refresh_token, expires_in, id_token and scope', () => {
    expect(parseTokenResponse(ok({}))).toEqual({
      accessToken: 'at',
      expiresIn: undefined,
      refreshToken: undefined,
      refreshExpiresIn: undefined,
      idToken: undefined,
      scope: undefined,
    });
  });

  it('treats null optional fields as absent', () => {
    const set = parseTokenResponse(ok({ refresh_token: null, expires_in: null }));
    expect(set.refreshToken).toBeUndefined();
    expect(set.expiresIn).toBeUndefined();
  });

  it('accepts a +json content type', () => {
    expect(parseTokenResponse(res(200, { access_token: 'at', token_type: 'Bearer' }, 'application/vnd.example+json')).accessToken).toBe('at');
  });
});
