/**
 * Logout token checks (OIDC Back-Channel Logout 1.0 §2.6) on a fake clock: every refusal and its
 * `code`, the order (no claim judged before the signature), exact window edges, then what a valid
 * token yields. The same checks run end to end in test/integration/backchannel-logout-refusals.
 */
import { createLocalJWKSet, exportJWK, generateKeyPair, SignJWT, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf } from '../../support/errors.js';
import { parseConfig, type Provider } from '../../../lib/config/parse.js';
import { InvalidRequestError, UpstreamUnavailableError } from '../../../lib/errors.js';
import type { JwksResolver } from '../../../lib/oauth/id-token.js';
import { BACKCHANNEL_LOGOUT_EVENT, validateLogoutToken, type LogoutTokenContext } from '../../../lib/oauth/logout-token.js';
import type { ProviderMetadata } from '../../../lib/oauth/metadata.js';
import { configDocWithProvider } from '../fixtures.js';

const NOW = 1_800_000_000;
const ISSUER = 'https://idp.example.com';
let key: CryptoKey;
let ctx: LogoutTokenContext;
let provider: Provider;

const metadata = { issuer: ISSUER, idTokenSigningAlgs: ['RS256'] } as unknown as ProviderMetadata;

beforeAll(async () => {
  const pair = await generateKeyPair('RS256', { extractable: true });
  key = pair.privateKey;
  const jwks = createLocalJWKSet({ keys: [{ ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'RS256' }] }) as unknown as JwksResolver;
  provider = parseConfig(configDocWithProvider({ backchannelLogout: true }), { runtime: 'local' }).providers['p']!;
  ctx = { provider, metadata, jwks, now: NOW };
});

const claims = (over: Record<string, unknown> = {}): JWTPayload => {
  const c: Record<string, unknown> = { iss: ISSUER, aud: 'broker', iat: NOW, exp: NOW + 120, jti: 'j1', events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, sub: 'u1', sid: 's1', ...over };
  for (const [k, v] of Object.entries(c)) if (v === undefined) delete c[k];
  return c as JWTPayload;
};
const sign = (c: JWTPayload, header: Record<string, unknown> = {}, with_ = key) => new SignJWT(c).setProtectedHeader({ alg: 'RS256', kid: 'k1', typ: 'logout+jwt', ...header }).sign(with_);

async function refusal(token: string, at: LogoutTokenContext = ctx): Promise<string> {
  const err = await rejectionOf(validateLogoutToken(at, token), InvalidRequestError);
  expect(err).toMatchObject({ code: 'invalid_request', status: 400 });
  return err.description;
}

describe('validateLogoutToken: refusals', () => {
  it('shape: too long, not three parts', async () => {
    expect(await refusal('a'.repeat(17_000))).toMatch(/too long/);
    expect(await refusal('a.b')).toMatch(/not a signed JWT/);
    expect(await refusal('a..b.c.d')).toMatch(/not a signed JWT/);
  });

  it('the signature is judged before any claim: a foreign key with every claim wrong names the signature', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    const token = await sign(claims({ iss: 'x', aud: 'y', iat: 0, jti: undefined, events: undefined, sub: undefined, sid: undefined, nonce: 'n' }), {}, privateKey);
    expect(await refusal(token)).toMatch(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
  });

  it('the header is judged before the signature: typ, then alg', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    expect(await refusal(await sign(claims(), { typ: 'at+jwt' }, privateKey))).toMatch(/"typ"/);
    expect(await refusal(await sign(claims(), { typ: 42 }))).toMatch(/"typ"/);
  });

  it('typ: logout+jwt in either spelling, or the plain JWT of Keycloak before 25; another type is refused', async () => {
    for (const typ of ['logout+jwt', 'application/logout+jwt', 'Logout+JWT', 'JWT', 'jwt', 'application/jwt', undefined]) {
      expect(await validateLogoutToken(ctx, await sign(claims(), { typ }))).toMatchObject({ jti: 'j1' });
    }
    for (const typ of ['at+jwt', 'application/at+jwt', 'secevent+jwt', 'ID', '', 'logout+jwt ']) {
      expect(await refusal(await sign(claims(), { typ }))).toMatch(/"typ"/);
    }
  });

  it('iat: exactly 300 s old is fine, 301 s is not; exactly 60 s ahead is fine, 61 s is not', async () => {
    await expect(validateLogoutToken(ctx, await sign(claims({ iat: NOW - 300 })))).resolves.toBeDefined();
    expect(await refusal(await sign(claims({ iat: NOW - 301 })))).toMatch(/more than 300 s old/);
    await expect(validateLogoutToken(ctx, await sign(claims({ iat: NOW + 60 })))).resolves.toBeDefined();
    expect(await refusal(await sign(claims({ iat: NOW + 61 })))).toMatch(/more than 60 s in the future/);
  });

  it('exp: passed by more than the 60 s clock tolerance is refused', async () => {
    await expect(validateLogoutToken(ctx, await sign(claims({ iat: NOW - 100, exp: NOW - 59 })))).resolves.toBeDefined();
    expect(await refusal(await sign(claims({ iat: NOW - 100, exp: NOW - 61 })))).toMatch(/expired/);
    expect(await refusal(await sign(claims({ exp: 'later' })))).toMatch(/exp|ERR_JWT/);
  });

  it('a jti, sub or sid longer than a session keeps is refused', async () => {
    expect(await refusal(await sign(claims({ jti: 'j'.repeat(2049) })))).toMatch(/"jti"/);
    expect(await refusal(await sign(claims({ sid: 's'.repeat(2049) })))).toMatch(/"sid"/);
  });

  it('a JWKS that cannot be fetched is the provider being unavailable (503), not a bad token', async () => {
    const down = (() => Promise.reject(Object.assign(new Error('JSON Web Key Set fetch timed out'), { code: 'ERR_JWKS_TIMEOUT' }))) as unknown as JwksResolver;
    await expect(validateLogoutToken({ ...ctx, jwks: down }, await sign(claims()))).rejects.toBeInstanceOf(UpstreamUnavailableError);
  });
});

describe('validateLogoutToken', () => {
  it('yields the provider, jti, sub and sid, and how long the jti must be remembered', async () => {
    const token = await validateLogoutToken(ctx, await sign(claims()));
    // exp + the 60 s tolerance comes before iat + 300 s.
    expect(token).toEqual({ provider: 'p', jti: 'j1', sub: 'u1', sid: 's1', acceptableUntil: NOW + 181 });
    // Without exp: as long as iat keeps it acceptable.
    expect((await validateLogoutToken(ctx, await sign(claims({ exp: undefined, iat: NOW - 100 })))).acceptableUntil).toBe(NOW + 201);
    // A long exp: iat's window ends first.
    expect((await validateLogoutToken(ctx, await sign(claims({ exp: NOW + 3600 })))).acceptableUntil).toBe(NOW + 301);
  });

  it('sub only, sid only', async () => {
    expect(await validateLogoutToken(ctx, await sign(claims({ sid: undefined })))).toMatchObject({ sub: 'u1', sid: undefined });
    expect(await validateLogoutToken(ctx, await sign(claims({ sub: undefined })))).toMatchObject({ sub: undefined, sid: 's1' });
  });
});

describe('validateLogoutToken: a token without kid while the JWKS holds several keys it could be (a rollover)', () => {
  let rollover: LogoutTokenContext;
  let signer: CryptoKey;
  beforeAll(async () => {
    const old = await generateKeyPair('RS256', { extractable: true });
    const current = await generateKeyPair('RS256', { extractable: true });
    signer = current.privateKey;
    const jwks = createLocalJWKSet({ keys: [
      { ...(await exportJWK(old.publicKey)), kid: 'old', alg: 'RS256' },
      { ...(await exportJWK(current.publicKey)), kid: 'new', alg: 'RS256' },
    ] }) as unknown as JwksResolver;
    rollover = { ...ctx, jwks };
  });

  it('is accepted when one of the candidate keys verifies it (jose: ERR_JWKS_MULTIPLE_MATCHING_KEYS, each candidate tried)', async () => {
    expect(await validateLogoutToken(rollover, await sign(claims(), { kid: undefined }, signer))).toMatchObject({ jti: 'j1', sub: 'u1', sid: 's1' });
  });

  it('is refused, naming the signature, when none does; the claims are still judged after the signature', async () => {
    const stranger = (await generateKeyPair('RS256')).privateKey;
    expect(await refusal(await sign(claims(), { kid: undefined }, stranger), rollover)).toMatch(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
    expect(await refusal(await sign(claims({ aud: 'other' }), { kid: undefined }, signer), rollover)).toMatch(/"aud"/);
  });
});
