/**
 * `GET /jwks`: the public keys of the broker's ID tokens (RFC 7517): every generation in the
 * signing key ring, so the next key is published before it signs and the previous one stays
 * until the operator retires it. Cacheable for a few minutes: an app that meets an unknown `kid`
 * fetches again (every client library does), and rotation waits longer than this between steps.
 */
import type { HttpResponse } from '../http/types.js';
import { route } from './common.js';

export const JWKS_MAX_AGE_SECONDS = 300;

export const jwksRoute = route({ errors: 'page', cors: 'none' }, async (rt): Promise<HttpResponse> => {
  const keys = await rt.signing.get();
  return {
    status: 200,
    headers: {
      'content-type': 'application/json',
      'cache-control': `public, max-age=${JWKS_MAX_AGE_SECONDS}`,
      'access-control-allow-origin': '*',
      'x-content-type-options': 'nosniff',
    },
    cookies: [],
    body: JSON.stringify(keys.jwks),
  };
});
