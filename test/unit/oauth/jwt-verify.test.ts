/**
 * The quick signature path of lib/oauth/jwt-verify.ts against jose's `jwtVerify`, side by side:
 * every signature algorithm jose's JWKS serves is accepted with the same claims set, and every
 * token that is off in any respect (shape, header, algorithm, key, signature, claims) is left to
 * jose, so `verifyJwt` ends exactly as `jwtVerify` does: the same payload, or the same error
 * class, code and message.
 */
import { generateKeyPairSync, KeyObject, sign as signWith } from 'node:crypto';
import { CompactSign, createLocalJWKSet, FlattenedSign, exportJWK, generateKeyPair, jwtVerify, SignJWT, type JWK, type JWTPayload } from 'jose';
import { isDeepStrictEqual } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { acceptPlainlyValid, verifyJwt, type JwtVerifyOptions, type KeyResolver } from '../../../lib/oauth/jwt-verify.js';

const NOW = 1_800_000_000;
const ISSUER = 'https://idp.example.com';
const ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'] as const;

const options: JwtVerifyOptions = {
  algorithms: [...ALGS],
  issuer: ISSUER,
  audience: 'broker',
  requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
  clockTolerance: 60,
  currentDate: new Date(NOW * 1000),
};

const privateKeys = new Map<string, CryptoKey>();
let rsaPem: KeyObject;
let weakRsa: KeyObject;
let resolve: KeyResolver;

beforeAll(async () => {
  const keys: JWK[] = [];
  for (const alg of ALGS) {
    const pair = await generateKeyPair(alg, { extractable: true });
    privateKeys.set(alg, pair.privateKey);
    keys.push({ ...(await exportJWK(pair.publicKey)), kid: alg, alg });
  }
  // A key without `alg`: jose's JWKS serves it for any algorithm of its type.
  const open = generateKeyPairSync('rsa', { modulusLength: 2048 });
  rsaPem = open.privateKey;
  keys.push({ ...(await exportJWK(open.publicKey)), kid: 'open' });
  const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
  weakRsa = weak.privateKey;
  keys.push({ ...(await exportJWK(weak.publicKey)), kid: 'weak', alg: 'RS256' });
  resolve = createLocalJWKSet({ keys }) as unknown as KeyResolver;
});

const claims = (over: Record<string, unknown> = {}): JWTPayload => {
  const c: Record<string, unknown> = { iss: ISSUER, sub: 'u1', aud: 'broker', iat: NOW, exp: NOW + 300, ...over };
  for (const [k, v] of Object.entries(c)) if (v === undefined) delete c[k];
  return c as JWTPayload;
};
const signed = (alg: string, c: JWTPayload = claims(), header: Record<string, unknown> = {}) =>
  new SignJWT(c).setProtectedHeader({ alg, kid: alg, ...header }).sign(privateKeys.get(alg)!);
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64url');
/** RS256 over any header and payload text, with the `open` key (or another). */
function rawRs256(header: string, payload: string, key: KeyObject = rsaPem): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signWith('sha256', Buffer.from(input), key).toString('base64url')}`;
}

type Outcome = { payload: JWTPayload } | { error: string; code: unknown; message: string };
async function outcome(run: () => Promise<JWTPayload>): Promise<Outcome> {
  try {
    return { payload: await run() };
  } catch (err) {
    return { error: (err as Error).constructor.name, code: (err as { code?: unknown }).code, message: (err as Error).message };
  }
}
const jose = (token: string, opts: JwtVerifyOptions = options, keys: KeyResolver = resolve) =>
  outcome(async () => (await jwtVerify(token, keys, { ...opts, algorithms: [...opts.algorithms], requiredClaims: [...opts.requiredClaims] })).payload);
const ours = (token: string, opts: JwtVerifyOptions = options, keys: KeyResolver = resolve) => outcome(() => verifyJwt(token, keys, opts));

describe('a plainly valid token', () => {
  it.each(ALGS)('%s: checked here, with the claims set jose returns', async (alg) => {
    const token = await signed(alg);
    const quick = await acceptPlainlyValid(token, resolve, options);
    expect(quick).toEqual(claims());
    expect(await ours(token)).toEqual(await jose(token));
  });

  it.each([
    ['an audience list holding this client', { aud: ['other', 'broker'] }],
    ['exp passed, within the clock tolerance', { exp: NOW - 59 }],
    ['nbf ahead, within the clock tolerance', { nbf: NOW + 60 }],
    ['nbf passed', { nbf: NOW - 10 }],
    ['claims beyond the required', { nonce: 'n', azp: 'broker', auth_time: NOW - 5, name: 'Zoë' }],
  ])('%s: checked here', async (_what, over) => {
    const token = await signed('RS256', claims(over));
    expect(await acceptPlainlyValid(token, resolve, options)).toEqual(claims(over));
    expect(await ours(token)).toEqual(await jose(token));
  });

  it('a key with no `alg` of its own, for the algorithm of its type the header names', async () => {
    const token = rawRs256(JSON.stringify({ alg: 'RS256', kid: 'open' }), JSON.stringify(claims()));
    expect(await acceptPlainlyValid(token, resolve, options)).toEqual(claims());
  });
});

describe('anything off is left to jose, which refuses it exactly as before', () => {
  const cases: Array<[string, () => Promise<string> | string, JwtVerifyOptions?]> = [
    // The shape (RFC 7515 §7.1).
    ['two segments', async () => (await signed('RS256')).split('.').slice(0, 2).join('.')],
    ['four segments', async () => `${await signed('RS256')}.x`],
    ['a character outside base64url', async () => (await signed('RS256')).replace('.', '+.')],
    ['a segment of an impossible length', async () => `${await signed('RS256')}A`],
    ['an empty signature', async () => (await signed('RS256')).replace(/[^.]+$/, '')],
    // The header.
    ['a header that is not JSON', () => rawRs256('{alg:RS256}', JSON.stringify(claims()))],
    ['a header that is a JSON array', () => rawRs256('["RS256"]', JSON.stringify(claims()))],
    ['a header that is not UTF-8', () => {
      const input = `${b64(Buffer.from([0x7b, 0xff, 0x7d]))}.${b64(JSON.stringify(claims()))}`;
      return `${input}.${signWith('sha256', Buffer.from(input), rsaPem).toString('base64url')}`;
    }],
    ['no alg', () => rawRs256(JSON.stringify({ kid: 'open' }), JSON.stringify(claims()))],
    ['alg none', () => `${b64(JSON.stringify({ alg: 'none' }))}.${b64(JSON.stringify(claims()))}.`],
    ['alg HS256 naming an RSA key', () => rawRs256(JSON.stringify({ alg: 'HS256', kid: 'open' }), JSON.stringify(claims()))],
    ['an algorithm the provider does not advertise', () => signed('ES256'), { ...options, algorithms: ['RS256'] }],
    ['crit naming an extension', () => new CompactSign(Buffer.from(JSON.stringify(claims())))
      .setProtectedHeader({ alg: 'RS256', kid: 'RS256', crit: ['exp'], exp: 1 } as never)
      .sign(privateKeys.get('RS256')!, { crit: { exp: true } })],
    ['b64 false (RFC 7797)', async () => {
      const jws = await new FlattenedSign(Buffer.from(JSON.stringify(claims())))
        .setProtectedHeader({ alg: 'RS256', kid: 'RS256', b64: false, crit: ['b64'] })
        .sign(privateKeys.get('RS256')!);
      return `${jws.protected}.${b64(JSON.stringify(claims()))}.${jws.signature}`;
    }],
    // The key.
    ['a kid the JWKS lacks', () => signed('RS256', claims(), { kid: 'gone' })],
    ['an RSA key under 2048 bits', () => rawRs256(JSON.stringify({ alg: 'RS256', kid: 'weak' }), JSON.stringify(claims()), weakRsa)],
    ['a key of another type than the header names', () => rawRs256(JSON.stringify({ alg: 'ES256', kid: 'open' }), JSON.stringify(claims()))],
    // The signature.
    ['a signature by another key', async () => {
      const [h, p] = (await signed('RS256')).split('.');
      const [, , s] = (await signed('RS384')).split('.');
      return `${h}.${p}.${s}`;
    }],
    ['a changed payload', async () => {
      const [h, , s] = (await signed('ES256')).split('.');
      return `${h}.${b64(JSON.stringify(claims({ sub: 'admin' })))}.${s}`;
    }],
    ['a truncated ECDSA signature', async () => (await signed('ES256')).slice(0, -4)],
    ['an ECDSA signature in DER', async () => {
      const token = await signed('ES256');
      const [h, p, s] = token.split('.') as [string, string, string];
      const raw = Buffer.from(s, 'base64url');
      const int = (b: Buffer) => (b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
      const r = int(raw.subarray(0, 32));
      const sv = int(raw.subarray(32));
      const der = Buffer.concat([Buffer.from([0x30, r.length + sv.length + 4, 0x02, r.length]), r, Buffer.from([0x02, sv.length]), sv]);
      return `${h}.${p}.${der.toString('base64url')}`;
    }],
    ['a changed EdDSA signature', async () => {
      const [h, p, s] = (await signed('EdDSA')).split('.') as [string, string, string];
      const sig = Buffer.from(s, 'base64url');
      sig[0]! ^= 1;
      return `${h}.${p}.${sig.toString('base64url')}`;
    }],
    // The claims (RFC 7519 §4.1).
    ['a claims set that is not JSON', () => rawRs256(JSON.stringify({ alg: 'RS256', kid: 'open' }), 'not json')],
    ['a claims set that is an array', () => rawRs256(JSON.stringify({ alg: 'RS256', kid: 'open' }), '[1]')],
    ['a claims set that is not UTF-8', () => {
      const input = `${b64(JSON.stringify({ alg: 'RS256', kid: 'open' }))}.${b64(Buffer.from([0x7b, 0xc3, 0x7d]))}`;
      return `${input}.${signWith('sha256', Buffer.from(input), rsaPem).toString('base64url')}`;
    }],
    ...(['iss', 'sub', 'aud', 'exp', 'iat'] as const).map((claim): [string, () => Promise<string>] =>
      [`no ${claim}`, () => signed('RS256', claims({ [claim]: undefined }))]),
    ['another issuer', () => signed('PS256', claims({ iss: `${ISSUER}/` }))],
    ['another audience', () => signed('RS256', claims({ aud: 'other' }))],
    ['an audience list without this client', () => signed('RS256', claims({ aud: ['a', 'b'] }))],
    ['an audience that is an object', () => signed('RS256', claims({ aud: { broker: true } }))],
    ['expired beyond the tolerance', () => signed('ES384', claims({ exp: NOW - 60 }))],
    ['not valid yet beyond the tolerance', () => signed('RS256', claims({ nbf: NOW + 61 }))],
    ['exp a string', () => signed('RS256', claims({ exp: String(NOW + 300) }))],
    ['iat a string', () => signed('RS256', claims({ iat: String(NOW) }))],
    ['nbf a string', () => signed('RS256', claims({ nbf: String(NOW) }))],
  ];

  it.each(cases)('%s', async (_what, make, opts = options) => {
    const token = await make();
    const quick = await acceptPlainlyValid(token, resolve, opts).catch((err: unknown) => err);
    if (!(quick instanceof Error)) expect(quick).toBeUndefined();
    const theirs = await jose(token, opts);
    expect(theirs).not.toHaveProperty('payload');
    expect(await ours(token, opts)).toEqual(theirs);
  });

  it.each([
    ['padding in a segment', async () => `${await signed('RS256')}==`],
    ['b64 true without crit', () => signed('RS256', claims(), { b64: true })],
  ])('%s: left to jose, which accepts it', async (_what, make) => {
    const token = await make();
    expect(await acceptPlainlyValid(token, resolve, options)).toBeUndefined();
    const theirs = await jose(token);
    expect(theirs).toEqual({ payload: claims() });
    expect(await ours(token)).toEqual(theirs);
  });

  it('a resolver handing out a key made for another algorithm', async () => {
    const token = await signed('RS256');
    const es = (await generateKeyPair('ES256')).publicKey;
    const wrong: KeyResolver = async () => es;
    expect(await acceptPlainlyValid(token, wrong, options)).toBeUndefined();
    const theirs = await jose(token, options, wrong);
    expect(theirs).toMatchObject({ error: 'TypeError' });
    expect(await ours(token, options, wrong)).toEqual(theirs);
  });

  it('a resolver handing out a private key, or a public key not for verifying', async () => {
    const token = await signed('RS256');
    const priv: KeyResolver = async () => privateKeys.get('RS256')!;
    expect(await acceptPlainlyValid(token, priv, options)).toBeUndefined();
    expect(await ours(token, options, priv)).toEqual(await jose(token, options, priv));
    const jwk = await exportJWK(await crypto.subtle.importKey('jwk', await exportJWK(privateKeys.get('RS256')!), { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, ['sign']));
    const { d: _d, p: _p, q: _q, dp: _dp, dq: _dq, qi: _qi, ...pub } = jwk;
    const noUsage = await crypto.subtle.importKey('jwk', pub, { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' }, true, []);
    const unusable: KeyResolver = async () => noUsage;
    expect(await acceptPlainlyValid(token, unusable, options)).toBeUndefined();
    expect(await ours(token, options, unusable)).toEqual(await jose(token, options, unusable));
  });

  it('a resolver that fails: its error, as jose would pass it on', async () => {
    const token = await signed('RS256');
    const down: KeyResolver = async () => {
      throw new Error('the JSON Web Key Set could not be fetched');
    };
    await expect(acceptPlainlyValid(token, down, options)).rejects.toThrow('could not be fetched');
    expect(await ours(token, options, down)).toEqual(await jose(token, options, down));
  });
});

describe('a token without kid while the set holds several keys it could be (jose: ERR_JWKS_MULTIPLE_MATCHING_KEYS)', () => {
  let rollover: KeyResolver;
  let current: KeyObject;
  beforeAll(async () => {
    const [a, b] = [generateKeyPairSync('rsa', { modulusLength: 2048 }), generateKeyPairSync('rsa', { modulusLength: 2048 })];
    current = b.privateKey;
    rollover = createLocalJWKSet({ keys: [{ ...(await exportJWK(a.publicKey)), kid: 'old', alg: 'RS256' }, { ...(await exportJWK(b.publicKey)), kid: 'new', alg: 'RS256' }] }) as unknown as KeyResolver;
  });

  it('is accepted when one of the candidate keys verifies it, with jose\'s own checks of the claims', async () => {
    const token = rawRs256(JSON.stringify({ alg: 'RS256' }), JSON.stringify(claims()), current);
    expect(await verifyJwt(token, rollover, options)).toEqual(claims());
    const expired = rawRs256(JSON.stringify({ alg: 'RS256' }), JSON.stringify(claims({ exp: NOW - 3600, iat: NOW - 7200 })), current);
    await expect(verifyJwt(expired, rollover, options)).rejects.toMatchObject({ code: 'ERR_JWT_EXPIRED' });
  });

  it('is refused when none verifies it', async () => {
    const token = rawRs256(JSON.stringify({ alg: 'RS256' }), JSON.stringify(claims()), generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey);
    await expect(verifyJwt(token, rollover, options)).rejects.toMatchObject({ code: 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED' });
  });

  it('goes past a candidate jose will not use (RSA under 2048 bits) to one that verifies it; refuses with the key\'s error when none is usable', async () => {
    const weak = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const good = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const set = createLocalJWKSet({ keys: [{ ...(await exportJWK(weak.publicKey)), kid: 'weak', alg: 'RS256' }, { ...(await exportJWK(good.publicKey)), kid: 'good', alg: 'RS256' }] }) as unknown as KeyResolver;
    const token = rawRs256(JSON.stringify({ alg: 'RS256' }), JSON.stringify(claims()), good.privateKey);
    expect(await verifyJwt(token, set, options)).toEqual(claims());
    const weakOnly = createLocalJWKSet({ keys: [{ ...(await exportJWK(weak.publicKey)), kid: 'w1', alg: 'RS256' }, { ...(await exportJWK(generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey)), kid: 'w2', alg: 'RS256' }] }) as unknown as KeyResolver;
    await expect(verifyJwt(rawRs256(JSON.stringify({ alg: 'RS256' }), JSON.stringify(claims()), weak.privateKey), weakOnly, options)).rejects.toBeInstanceOf(TypeError);
  });
});

describe('side by side over generated tokens', () => {
  // A seeded generator (the same tokens every run): valid and subtly broken claims sets and
  // headers, each signed validly, some segments given non-canonical base64url. Whatever the quick
  // path accepts, jose must accept with a payload identical to the last key and its order.
  let seed = 20261130;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  const pick = <T>(values: readonly T[]): T => values[Math.floor(random() * values.length)]!;
  const numbers = ['0', '-0', '1e400', String(NOW), String(NOW - 60), String(NOW - 59.5), String(NOW + 60), String(NOW + 61), String(NOW + 300), 'null', 'true', `"${NOW + 300}"`, '[]', '{}'];
  const strings = ['"broker"', '"Broker"', '"\\u0062roker"', '["broker"]', '[1,"broker"]', '["x"]', '[]', 'null', '{"0":"broker"}', `"${ISSUER}"`, `"${ISSUER}/"`, `["${ISSUER}"]`, '"\\ud800"'];
  const names = ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', '__proto__', 'constructor', 'iss ', '\\u0069ss'];
  const member = (name: string) => `"${name}":${['exp', 'iat', 'nbf'].includes(name) && random() < 0.8 ? pick(numbers) : pick([...strings, ...numbers])}`;
  function claimsText(): string {
    const members = [`"iss":"${ISSUER}"`, '"sub":"u1"', '"aud":"broker"', `"iat":${NOW}`, `"exp":${NOW + 300}`];
    for (let n = Math.floor(random() * 4); n > 0; n--) {
      const at = Math.floor(random() * (members.length + 1));
      if (random() < 0.4) members.splice(at, 1);
      else members.splice(at, 0, member(pick(names)));
    }
    const text = `{${members.join(',')}}`;
    return random() < 0.05 ? `\uFEFF${text}` : random() < 0.03 ? `[${text}]` : text;
  }
  function headerText(alg: string): string {
    const members = [`"alg":"${alg}"`, `"kid":"${alg}"`];
    if (random() < 0.3) members.splice(Math.floor(random() * 3), 0, pick(['"typ":"JWT"', '"crit":[]', '"b64":true', '"alg":"HS256"', '"kid":"gone"', '"__proto__":{"alg":"none"}', '"kid":null', '"alg":"ES384"']));
    if (random() < 0.05) members.shift();
    return `{${members.join(',')}}`;
  }
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  /** The same bytes, the spare low bits of the last character set (RFC 4648 §3.5 non-canonical). */
  const loose = (segment: string) => (segment.length % 4 === 0 || random() < 0.5 ? segment
    : segment.slice(0, -1) + alphabet[alphabet.indexOf(segment.at(-1)!) | (segment.length % 4 === 2 ? 0xf : 0x3)]);
  const DIGESTS: Record<string, [string | null, object]> = {
    RS256: ['sha256', {}], PS256: ['sha256', { padding: 6 /* RSA_PKCS1_PSS_PADDING */, saltLength: 32 }],
    ES256: ['sha256', { dsaEncoding: 'ieee-p1363' }], EdDSA: [null, {}], Ed25519: [null, {}],
  };

  it('the quick path accepts a subset of what jose accepts, with identical payloads', async () => {
    let accepted = 0;
    for (let i = 0; i < 1500; i++) {
      const alg = pick(Object.keys(DIGESTS));
      const input = `${loose(b64(headerText(alg)))}.${loose(b64(claimsText()))}`;
      const [digest, extra] = DIGESTS[alg]!;
      const signature = signWith(digest, Buffer.from(input), { key: KeyObject.from(privateKeys.get(alg)!), ...extra } as never).toString('base64url');
      const token = `${input}.${random() < 0.1 ? loose(signature) : signature}`;
      const opts = random() < 0.2 ? { ...options, clockTolerance: pick([0, 0.5, 59.9, 3600]), currentDate: new Date(NOW * 1000 + Math.floor(random() * 2000) - 1000) } : options;
      const quick = await acceptPlainlyValid(token, resolve, opts).catch(() => undefined);
      if (quick === undefined) continue;
      accepted++;
      const theirs = await jose(token, opts);
      expect(theirs, `${token} (${Buffer.from(input.split('.')[1]!, 'base64url').toString()})`).toHaveProperty('payload');
      const payload = (theirs as { payload: JWTPayload }).payload;
      // node's comparison, not vitest's: a claim named `constructor` would confuse the latter's type check.
      expect(Reflect.ownKeys(quick)).toEqual(Reflect.ownKeys(payload));
      expect(isDeepStrictEqual(quick, payload), JSON.stringify(payload)).toBe(true);
    }
    // Enough of them valid for the comparison to mean something.
    expect(accepted).toBeGreaterThan(300);
  });
});
