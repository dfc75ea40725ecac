import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../lib/config/parse.js';
import { discoveryDocument } from '../../../lib/oidc/discovery.js';
import { minimalConfigDoc } from '../fixtures.js';

const doc = discoveryDocument(parseConfig(minimalConfigDoc(), { runtime: 'local' }));

describe('the discovery document', () => {
  it('has every field OpenID Connect Discovery 1.0 §3 requires', () => {
    for (const field of ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported']) {
      expect(doc[field], field).toBeDefined();
    }
  });

  it('has every field CONTRACT.md v2 lists, with the contract\'s values', () => {
    expect(doc).toEqual({
      issuer: 'https://auth.example.com',
      authorization_endpoint: 'https://auth.example.com/login',
      token_endpoint: 'https://auth.example.com/token',
      jwks_uri: 'https://auth.example.com/jwks',
      end_session_endpoint: 'https://auth.example.com/end-session',
      revocation_endpoint: 'https://auth.example.com/logout',
      response_types_supported: ['code'],
      response_modes_supported: ['query'],
      grant_types_supported: ['authorization_code', 'refresh_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256', 'ES256'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'auth_time', 'nonce', 'acr', 'amr', 'sid', 'idp', 'idp_sub', 'name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale', 'email', 'email_verified'],
      code_challenge_methods_supported: ['S256'],
      token_endpoint_auth_methods_supported: ['none'],
      revocation_endpoint_auth_methods_supported: ['none'],
      authorization_response_iss_parameter_supported: true,
      backchannel_logout_supported: false,
      frontchannel_logout_supported: false,
      claims_parameter_supported: false,
      request_parameter_supported: false,
      request_uri_parameter_supported: false,
    });
  });
});
