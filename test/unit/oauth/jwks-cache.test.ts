/**
 * The provider's JWKS cache (lib/oauth/id-token.ts): a fetch that fails is not repeated within
 * the cooldown, keys past their age still check tokens while the provider cannot give new ones,
 * and only a set that could not be fetched or read counts as the provider being unavailable.
 */
import { generateKeyPairSync, sign } from 'node:crypto';
import { jwtVerify } from 'jose';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Provider } from '../../../lib/config/parse.js';
import { createJwksCache, isKeyFetchFailure, isUnknownSigningKey } from '../../../lib/oauth/id-token.js';
import { TokenValidationError } from '../../../lib/errors.js';
import { errors as joseErrors } from 'jose';
import type { ProviderMetadata } from '../../../lib/oauth/metadata.js';

const jwk = { ...generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' };
const weakPair = generateKeyPairSync('rsa', { modulusLength: 1024 });
const weak = { ...weakPair.publicKey.export({ format: 'jwk' }), kid: 'k-weak', alg: 'RS256', use: 'sig' };
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
let answer: { status: number; body: unknown } = { status: 200, body: { keys: [jwk, weak] } };
let fetches = 0;
let server: http.Server;
let uri: string;

beforeAll(async () => {
  server = http.createServer((_req, res) => {
    fetches++;
    res.writeHead(answer.status, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  uri = `http://127.0.0.1:${(server.address() as AddressInfo).port}/jwks`;
});
afterAll(() => new Promise<void>((r) => {
  server.close(() => r());
  server.closeAllConnections();
}));
afterEach(() => {
  vi.useRealTimers();
  answer = { status: 200, body: { keys: [jwk, weak] } };
});

const provider = (name: string) => ({ name }) as Provider;
const metadata = () => ({ jwksUri: uri, idTokenSigningAlgs: ['RS256'] }) as unknown as ProviderMetadata;
const token = { payload: '', signature: '' };
const keyFor = (name: string) => createJwksCache().get(provider(name), metadata())({ alg: 'RS256', kid: 'k1' }, token);

describe('the JWKS cache', () => {
  it('does not fetch a failing JWKS again within the cooldown: each check fails as the provider unavailable', async () => {
    answer = { status: 500, body: { error: 'down' } };
    const jwks = createJwksCache().get(provider('down'), metadata());
    const before = fetches;
    for (let i = 0; i < 3; i++) {
      const err = await jwks({ alg: 'RS256', kid: 'k1' }, token).catch((e: unknown) => e);
      expect(isKeyFetchFailure(err)).toBe(true);
    }
    expect(fetches - before).toBe(1);
  });

  it('fetches again once the cooldown after a failure is over, and serves the keys it gets then', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    answer = { status: 500, body: {} };
    const jwks = createJwksCache().get(provider('recovers'), metadata());
    const before = fetches;
    expect(isKeyFetchFailure(await jwks({ alg: 'RS256', kid: 'k1' }, token).catch((e: unknown) => e))).toBe(true);
    expect(isKeyFetchFailure(await jwks({ alg: 'RS256', kid: 'k1' }, token).catch((e: unknown) => e))).toBe(true);
    expect(fetches - before).toBe(1);
    answer = { status: 200, body: { keys: [jwk, weak] } };
    vi.setSystemTime(Date.now() + 5_001);
    expect(await jwks({ alg: 'RS256', kid: 'k1' }, token)).toBeDefined();
    expect(fetches - before).toBe(2);
  });

  it('checks with the keys it had while a fetch past their age fails', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const jwks = createJwksCache().get(provider('aging'), metadata());
    expect(await jwks({ alg: 'RS256', kid: 'k1' }, token)).toBeDefined();
    vi.setSystemTime(Date.now() + 11 * 60_000);
    answer = { status: 503, body: {} };
    const before = fetches;
    expect(await jwks({ alg: 'RS256', kid: 'k1' }, token)).toBeDefined();
    expect(fetches - before).toBe(1);
  });

  it('takes a key jose refuses (RSA under 2048 bits) as a verdict on the token, not as the provider unavailable', async () => {
    const now = Math.floor(Date.now() / 1000);
    const signingInput = `${b64({ alg: 'RS256', kid: 'k-weak' })}.${b64({ iss: 'i', sub: 's', aud: 'a', iat: now, exp: now + 60 })}`;
    const jwt = `${signingInput}.${sign('sha256', Buffer.from(signingInput), weakPair.privateKey).toString('base64url')}`;
    const err = await jwtVerify(jwt, createJwksCache().get(provider('weak'), metadata())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TypeError);
    expect(isKeyFetchFailure(err)).toBe(false);
  });

  it('at a refresh, takes a key that checks nothing (too short, not importable) like a kid the set lacks: the keys are at fault, not the token', async () => {
    const now = Math.floor(Date.now() / 1000);
    const signingInput = `${b64({ alg: 'RS256', kid: 'k-weak' })}.${b64({ iss: 'i', sub: 's', aud: 'a', iat: now, exp: now + 60 })}`;
    const jwt = `${signingInput}.${sign('sha256', Buffer.from(signingInput), weakPair.privateKey).toString('base64url')}`;
    const cause = await jwtVerify(jwt, createJwksCache().get(provider('weak-refresh'), metadata())).catch((e: unknown) => e);
    expect(isUnknownSigningKey(new TokenValidationError('the ID token failed validation', { cause }))).toBe(true);
    expect(isUnknownSigningKey(new TokenValidationError('x', { cause: Object.assign(new Error('bad data'), { name: 'DataError' }) }))).toBe(true);
    // A verdict on the token itself is not.
    expect(isUnknownSigningKey(new TokenValidationError('x', { cause: new joseErrors.JWSSignatureVerificationFailed() }))).toBe(false);
    expect(isUnknownSigningKey(new TokenValidationError('the ID token "sub" is not a string of 1 to 255 characters'))).toBe(false);
  });

  it('takes an unreachable JWKS, a non-200 and a body that is not JSON as the provider unavailable', async () => {
    for (const bad of [{ status: 404, body: {} }, { status: 200, body: 'not json' }]) {
      answer = bad as typeof answer;
      expect(isKeyFetchFailure(await keyFor(`bad-${bad.status}`).catch((e: unknown) => e))).toBe(true);
    }
    const unreachable = createJwksCache({ timeoutMs: 500 }).get(provider('gone'), { ...metadata(), jwksUri: 'http://127.0.0.1:9/jwks' } as ProviderMetadata);
    expect(isKeyFetchFailure(await unreachable({ alg: 'RS256', kid: 'k1' }, token).catch((e: unknown) => e))).toBe(true);
  });
});
