/**
 * The broker's discovery document, one for both OpenID Connect Discovery 1.0
 * (`/.well-known/openid-configuration`) and RFC 8414 (`/.well-known/oauth-authorization-server`):
 * every field Discovery 1.0 §3 requires, every field CONTRACT.md v2 lists, and explicit `false`
 * for the request-object features whose absence would otherwise mean "supported".
 */
import type { Config } from '../config/parse.js';
import { APP_SCOPES, SCOPE_CLAIMS } from './scope.js';
import { ID_TOKEN_ALGS } from './signing-key-ring.js';

/** The claims a broker ID token can carry (lib/oidc/id-token-issuer.ts). */
export const CLAIMS_SUPPORTED = [
  'iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'sid', 'idp', 'idp_sub',
  ...SCOPE_CLAIMS.profile, ...SCOPE_CLAIMS.email,
] as const;

export function discoveryDocument(config: Config): Record<string, unknown> {
  const base = config.publicUrl;
  return {
    issuer: base,
    authorization_endpoint: `${base}/login`,
    token_endpoint: `${base}/token`,
    jwks_uri: `${base}/jwks`,
    end_session_endpoint: `${base}/end-session`,
    revocation_endpoint: `${base}/logout`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    subject_types_supported: ['public'],
    id_token_signing_alg_values_supported: [...ID_TOKEN_ALGS],
    scopes_supported: [...APP_SCOPES],
    claims_supported: [...CLAIMS_SUPPORTED],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: ['none'],
    revocation_endpoint_auth_methods_supported: ['none'],
    authorization_response_iss_parameter_supported: true,
    backchannel_logout_supported: false,
    frontchannel_logout_supported: false,
    claims_parameter_supported: false,
    request_parameter_supported: false,
    // Discovery 1.0 §3: absent would mean true.
    request_uri_parameter_supported: false,
  };
}
