/**
 * `GET /.well-known/openid-configuration` and `GET /.well-known/oauth-authorization-server`: one
 * discovery document at both paths (lib/oidc/discovery.ts), public and cacheable.
 */
import type { HttpResponse } from '../http/types.js';
import { discoveryDocument } from '../oidc/discovery.js';
import { route } from './common.js';

/** An hour: the document changes only with the configuration, i.e. with a deployment. */
export const METADATA_MAX_AGE_SECONDS = 3600;

export const metadataRoute = route({ errors: 'page', cors: 'none' }, async (rt): Promise<HttpResponse> => ({
  status: 200,
  headers: {
    'content-type': 'application/json',
    'cache-control': `public, max-age=${METADATA_MAX_AGE_SECONDS}`,
    'access-control-allow-origin': '*',
    'x-content-type-options': 'nosniff',
  },
  cookies: [],
  body: JSON.stringify(discoveryDocument(rt.config)),
}));
