/**
 * `GET /jwks`: the public keys of the broker's ID tokens (RFC 7517): every generation in the
 * signing key ring, so the next key is published before it signs and the previous one stays
 * until the operator retires it. Cacheable for a few minutes: an app that meets an unknown `kid`
 * fetches again (every client library does), and rotation waits longer than this between steps.
 */
import { errorResponse } from '../http/respond.js';
import type { HttpResponse } from '../http/types.js';
import { logFailure, type Route } from './common.js';

export const JWKS_MAX_AGE_SECONDS = 300;

export const jwksRoute: Route = async (rt): Promise<HttpResponse> => {
  try {
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
  } catch (err) {
    logFailure(rt, err);
    return errorResponse(err);
  }
};
