import { describe, expect, it } from 'vitest';
import { accessTokenExpiry } from '../../../lib/broker/session-tokens.js';
import { MAX_LIFETIME_SECONDS, type TokenSet } from '../../../lib/oauth/token-response.js';

const NOW = 1_800_000_000;
/** An unsigned JWT with the given `exp` written as it is (JSON can say 1e400, which parses to Infinity). */
const jwt = (expJson: string) => `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(`{"sub":"a","exp":${expJson}}`).toString('base64url')}.`;
const tokens = (accessToken: string, expiresIn?: number): TokenSet => ({ accessToken, expiresIn, refreshToken: undefined, refreshExpiresIn: undefined, idToken: undefined, scope: undefined });

describe('accessTokenExpiry', () => {
  it('takes expires_in first, then a JWT access token\'s exp, then 300 seconds', () => {
    expect(accessTokenExpiry(tokens(jwt(String(NOW + 900)), 60), NOW)).toBe(NOW + 60);
    expect(accessTokenExpiry(tokens(jwt(String(NOW + 900))), NOW)).toBe(NOW + 900);
    expect(accessTokenExpiry(tokens('opaque'), NOW)).toBe(NOW + 300);
  });

  it.each([
    ['past', String(NOW - 1)],
    ['Infinity (1e400)', '1e400'],
    ['1e300, no number DynamoDB stores', '1e300'],
    ['beyond the longest lifetime an answer may state', String(NOW + MAX_LIFETIME_SECONDS + 1)],
  ])('takes the default for an exp %s', (_what, exp) => {
    expect(accessTokenExpiry(tokens(jwt(exp)), NOW)).toBe(NOW + 300);
  });

  it('takes a fractional exp as its whole second: the session record stores whole seconds', () => {
    expect(accessTokenExpiry(tokens(jwt(`${NOW + 900}.75`)), NOW)).toBe(NOW + 900);
  });
});
