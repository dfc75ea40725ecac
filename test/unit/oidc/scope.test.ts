import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../lib/config/parse.js';
import { grantScope, parseScopeString, scopeString } from '../../../lib/oidc/scope.js';
import { minimalConfigDoc } from '../fixtures.js';

const doc = minimalConfigDoc();
doc.providers['plain'] = { authorizationEndpoint: 'https://api.example.com/authorize', tokenEndpoint: 'https://api.example.com/token', clientId: 'c', clientSecret: { value: 's' }, scopes: [] };
const config = parseConfig(doc, { runtime: 'local' });
const [web, app] = [config.clients['web']!, config.clients['app']!];
const [oidc, plain] = [config.providers['p']!, config.providers['plain']!];

describe('grantScope', () => {
  it('refuses an unknown scope (invalid_scope), naming the ones the broker knows', () => {
    expect(grantScope('openid read', app, oidc)).toEqual({ ok: false, description: '"scope" may hold only openid, profile, email, offline_access' });
  });

  it('refuses openid for a provider that gives no ID token', () => {
    expect(grantScope('openid', app, plain)).toMatchObject({ ok: false, description: expect.stringMatching(/no ID token/) });
  });

  it('grants the known scopes in a fixed order, repeats and extra spaces ignored', () => {
    expect(grantScope('offline_access  email openid email', app, oidc)).toEqual({ ok: true, scope: ['openid', 'email', 'offline_access'] });
  });

  it('defaults: a web login asks for openid (when the provider can), a native one for nothing', () => {
    expect(grantScope(undefined, web, oidc)).toEqual({ ok: true, scope: ['openid'] });
    expect(grantScope(undefined, web, plain)).toEqual({ ok: true, scope: [] });
    expect(grantScope(undefined, app, oidc)).toEqual({ ok: true, scope: [] });
  });

  it('round-trips through its stored string', () => {
    expect(parseScopeString(scopeString(['openid', 'profile']))).toEqual(['openid', 'profile']);
    expect(parseScopeString('')).toEqual([]);
  });
});
