/** `GET /.well-known/oauth-authorization-server`: RFC 8414 metadata toward native apps. */
import type { HttpResponse } from '../http/types.js';
import { route } from './common.js';

export const metadataRoute = route({ errors: 'page', cors: 'none' }, async (rt): Promise<HttpResponse> => {
  const base = rt.config.publicUrl;
  return {
    status: 200,
    headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=3600', 'access-control-allow-origin': '*' },
    cookies: [],
    body: JSON.stringify({
      issuer: base,
      authorization_endpoint: `${base}/login`,
      token_endpoint: `${base}/token`,
      revocation_endpoint: `${base}/logout`,
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none'],
      revocation_endpoint_auth_methods_supported: ['none'],
      authorization_response_iss_parameter_supported: true,
    }),
  };
});
