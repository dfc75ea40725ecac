/** The broker's ID token claims (CONTRACT.md v2) and the sub derivation. */
import { createHash } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../lib/config/parse.js';
import { ID_TOKEN_SECONDS, idTokenClaims, signIdToken, type IdTokenInput } from '../../../lib/oidc/id-token-issuer.js';
import { identityOfLogin, type SessionIdentity } from '../../../lib/oidc/session-identity.js';
import { generateSigningGenerationSync, parseSigningKeyRing } from '../../../lib/oidc/signing-key-ring.js';
import { createSigningKeys } from '../../../lib/oidc/signing-keys.js';
import { brokerSubject } from '../../../lib/oidc/subject.js';
import { minimalConfigDoc } from '../fixtures.js';

const doc = minimalConfigDoc();
doc.providers['q'] = { issuer: 'https://other-idp.example.org/realms/x', clientId: 'broker', clientSecret: { value: 's' } };
doc.clients['app']!['providers'] = ['p', 'q'];
const config = parseConfig(doc, { runtime: 'local' });
const NOW = 1_767_225_600;
const SID = 'AAAAAAAAAAAAAAAAAAAAAA';

const providerToken = {
  iss: 'https://idp.example.com', aud: 'broker', sub: 'u-1', iat: NOW - 5, exp: NOW + 300, auth_time: NOW - 30, nonce: 'broker-nonce',
  acr: 'urn:mace:incommon:iap:silver', amr: ['pwd', 'mfa'], sid: 'idp-session-1', azp: 'broker', at_hash: 'x', session_state: 'y',
  name: 'Alice Example', given_name: 'Alice', family_name: 'Example', preferred_username: 'alice', picture: 'https://img.example/a.png', locale: 'de',
  email: 'alice@example.com', email_verified: true, groups: ['admins'], phone_number: '+49 1',
};

const input = (identity: SessionIdentity, over: Partial<IdTokenInput> = {}): IdTokenInput => ({
  config, client: config.clients['app']!, provider: config.providers['p']!, sid: SID, identity, now: NOW, ...over,
});

describe('the broker subject', () => {
  it('is base64url(SHA-256(issuer || 0x00 || idp_sub)): 43 ASCII characters, stable', () => {
    const expected = createHash('sha256').update('https://idp.example.com\u0000u-1').digest('base64url');
    expect(brokerSubject('https://idp.example.com', 'u-1')).toBe(expected);
    expect(brokerSubject('https://idp.example.com', 'u-1')).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(brokerSubject('https://idp.example.com', 'x'.repeat(255))).toHaveLength(43);
  });

  it('differs between two providers that use the same sub for different people', () => {
    const a = idTokenClaims(input(identityOfLogin(['openid'], undefined, providerToken, NOW)))!;
    const b = idTokenClaims(input(identityOfLogin(['openid'], undefined, { ...providerToken, iss: 'https://other-idp.example.org/realms/x' }, NOW), { provider: config.providers['q']! }))!;
    expect(a.idp_sub).toBe(b.idp_sub);
    expect(a.sub).not.toBe(b.sub);
    expect([a.idp, b.idp]).toEqual(['p', 'q']);
  });

  it('keeps the separator: ("ab", "c") and ("a", "bc") do not collide', () => {
    expect(brokerSubject('https://a.example/ab', 'c')).not.toBe(brokerSubject('https://a.example/a', 'bc'));
  });
});

describe('idTokenClaims', () => {
  it('a code exchange with a nonce: exactly the contract\'s claims, aud the client alone, exp within 10 minutes', () => {
    const claims = idTokenClaims(input(identityOfLogin(['openid'], 'app-nonce', providerToken, NOW), { nonce: 'app-nonce' }))!;
    expect(claims).toEqual({
      iss: 'https://auth.example.com',
      sub: brokerSubject('https://idp.example.com', 'u-1'),
      aud: 'app',
      exp: NOW + ID_TOKEN_SECONDS,
      iat: NOW,
      auth_time: NOW - 30,
      nonce: 'app-nonce',
      acr: 'urn:mace:incommon:iap:silver',
      amr: ['pwd', 'mfa'],
      sid: SID,
      idp: 'p',
      idp_sub: 'u-1',
    });
    expect(claims.exp - claims.iat).toBeLessThanOrEqual(600);
  });

  it('no nonce unless the caller passes the app\'s (code exchange only), never the provider\'s', () => {
    const identity = identityOfLogin(['openid'], 'app-nonce', providerToken, NOW);
    expect(idTokenClaims(input(identity))!.nonce).toBeUndefined();
    expect(JSON.stringify(idTokenClaims(input(identity, { nonce: 'app-nonce' })))).not.toContain('broker-nonce');
  });

  it('profile and email claims only with those scopes, and nothing the contract does not list', () => {
    const plain = idTokenClaims(input(identityOfLogin(['openid'], undefined, providerToken, NOW)))!;
    expect(Object.keys(plain)).not.toEqual(expect.arrayContaining(['name']));
    const profile = idTokenClaims(input(identityOfLogin(['openid', 'profile'], undefined, providerToken, NOW)))!;
    expect(profile).toMatchObject({ name: 'Alice Example', given_name: 'Alice', family_name: 'Example', preferred_username: 'alice', picture: 'https://img.example/a.png', locale: 'de' });
    expect(profile['email']).toBeUndefined();
    const all = idTokenClaims(input(identityOfLogin(['openid', 'profile', 'email', 'offline_access'], undefined, providerToken, NOW)))!;
    expect(all).toMatchObject({ email: 'alice@example.com', email_verified: true });
    for (const claim of ['azp', 'at_hash', 'session_state', 'groups', 'phone_number']) expect(all[claim], claim).toBeUndefined();
    // The provider's sid is kept for back-channel logout, never shown as the broker's.
    expect(all.sid).toBe(SID);
  });

  it('auth_time: the provider\'s, else the login time; the same on every later ID token (OIDC Core §12.2)', () => {
    const withAuthTime = identityOfLogin(['openid'], undefined, providerToken, NOW);
    const { auth_time: _a, ...noAuthTime } = providerToken;
    const withoutAuthTime = identityOfLogin(['openid'], undefined, noAuthTime, NOW);
    expect(idTokenClaims(input(withoutAuthTime))!.auth_time).toBe(NOW);
    const later = idTokenClaims(input(withAuthTime, { now: NOW + 86_400 }))!;
    expect(later).toMatchObject({ auth_time: NOW - 30, iat: NOW + 86_400, sub: brokerSubject('https://idp.example.com', 'u-1') });
  });

  it('no ID token without openid in the granted scope, or without a provider subject', () => {
    expect(idTokenClaims(input(identityOfLogin(['profile', 'offline_access'], undefined, providerToken, NOW)))).toBeUndefined();
    expect(idTokenClaims(input(identityOfLogin(['openid'], undefined, undefined, NOW)))).toBeUndefined();
  });

  it('acr and amr only when the provider gave them', () => {
    const { acr: _acr, amr: _amr, ...bare } = providerToken;
    const claims = idTokenClaims(input(identityOfLogin(['openid'], undefined, bare, NOW)))!;
    expect('acr' in claims || 'amr' in claims).toBe(false);
  });
});

describe('signIdToken', () => {
  const keys = createSigningKeys(parseSigningKeyRing(JSON.stringify({ current: 'g1', keys: generateSigningGenerationSync('g1') })));

  it.each(['RS256', 'ES256'] as const)('%s: signed with the current key, kid in the header, verifiable with /jwks', async (alg) => {
    const claims = idTokenClaims(input(identityOfLogin(['openid'], undefined, providerToken, NOW)))!;
    const jwt = await signIdToken(keys, alg, claims);
    expect(decodeProtectedHeader(jwt)).toEqual({ alg, kid: alg === 'RS256' ? 'g1' : 'g1.es256' });
    const { payload } = await jwtVerify(jwt, createLocalJWKSet({ keys: [...keys.jwks.keys] as never }), {
      issuer: 'https://auth.example.com', audience: 'app', algorithms: [alg], currentDate: new Date(NOW * 1000),
    });
    expect(payload).toEqual(claims);
  });
});
