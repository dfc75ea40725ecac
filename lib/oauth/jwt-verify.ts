/**
 * A provider's signed JWT checked like jose's `jwtVerify`, with its signature checked by
 * `node:crypto` when every step is plainly fine, and by jose itself otherwise.
 *
 * jose checks signatures with WebCrypto, which sends each one to libuv's thread pool: about
 * 0.4 ms of CPU per ID token against 0.03 ms for the same check done synchronously, the largest
 * single cost of an upstream refresh (docs/design.md, "What a request costs"). The quick path
 * here only ever *accepts*: a token it does not find plainly valid in every respect (its shape,
 * its header, its algorithm, the key jose's JWKS resolver chose, the signature, every claim
 * jose would check) goes to `jwtVerify` unchanged, so every refusal, and every error and code
 * an operator reads, is jose's own. What it accepts is a subset of what jose accepts:
 *
 * - three base64url segments of valid lengths (RFC 7515 §7.1, §2; jose decodes strictly);
 * - a protected header that is a JSON object without `crit` or `b64` (RFC 7515 §4.1.11, RFC
 *   7797), whose `alg` is allowed here and is one of the signature algorithms below;
 * - the key from jose's resolver (its JWKS selection: `kty`, `kid`, `use`, `key_ops`, `alg`) a
 *   public `CryptoKey` for verifying, made for exactly that algorithm, RSA of 2048 bits or more;
 * - the signature valid (RFC 7518 §3.3-3.5, RFC 8037 §3.1);
 * - a claims set that is a JSON object with every required claim, `iss` the issuer, `aud`
 *   the audience or a list holding it, `iat` a number, `nbf` (if present) and `exp` within
 *   the clock tolerance (RFC 7519 §4.1).
 */
import { KeyObject, constants, verify as verifySignature } from 'node:crypto';
import { jwtVerify, type FlattenedJWSInput, type JWSHeaderParameters, type JWTPayload, type JWTVerifyOptions } from 'jose';
import { JWSSignatureVerificationFailed } from 'jose/errors';

/** A JWKS key for a header (jose's key-resolver shape). */
export type KeyResolver = (header: JWSHeaderParameters, token: FlattenedJWSInput) => Promise<CryptoKey>;

/** The subset of jose's `JWTVerifyOptions` the broker uses for provider tokens. */
export interface JwtVerifyOptions {
  readonly algorithms: readonly string[];
  readonly issuer: string;
  readonly audience: string;
  readonly requiredClaims: readonly string[];
  /** Seconds. */
  readonly clockTolerance: number;
  readonly currentDate?: Date;
}

interface SignatureAlgorithm {
  /** The `CryptoKey.algorithm` jose imports a JWK as for this `alg`. */
  readonly name: string;
  readonly hash?: string;
  readonly namedCurve?: string;
  /** `node:crypto`'s digest (null: the curve's own, Ed25519). */
  readonly digest: string | null;
  readonly options?: { readonly padding?: number; readonly saltLength?: number; readonly dsaEncoding?: 'ieee-p1363' };
}

const rsa = (bits: number): SignatureAlgorithm => ({ name: 'RSASSA-PKCS1-v1_5', hash: `SHA-${bits}`, digest: `sha${bits}` });
const pss = (bits: number): SignatureAlgorithm => ({
  name: 'RSA-PSS',
  hash: `SHA-${bits}`,
  digest: `sha${bits}`,
  // RFC 7518 §3.5: the salt is as long as the hash.
  options: { padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: bits / 8 },
});
// RFC 7518 §3.4: R and S concatenated, each the curve's length; not DER.
const ecdsa = (namedCurve: string, bits: number): SignatureAlgorithm => ({ name: 'ECDSA', namedCurve, digest: `sha${bits}`, options: { dsaEncoding: 'ieee-p1363' } });
const ed25519: SignatureAlgorithm = { name: 'Ed25519', digest: null };

const ALGORITHMS: ReadonlyMap<string, SignatureAlgorithm> = new Map([
  ['RS256', rsa(256)],
  ['RS384', rsa(384)],
  ['RS512', rsa(512)],
  ['PS256', pss(256)],
  ['PS384', pss(384)],
  ['PS512', pss(512)],
  ['ES256', ecdsa('P-256', 256)],
  ['ES384', ecdsa('P-384', 384)],
  ['ES512', ecdsa('P-521', 512)],
  ['EdDSA', ed25519],
  ['Ed25519', ed25519],
]);

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });
const keyObjects = new WeakMap<CryptoKey, KeyObject>();

/** jose's `jwtVerify(token, resolve, options)`'s payload, the signature checked synchronously when the token is plainly valid. */
export async function verifyJwt(token: string, resolve: KeyResolver, options: JwtVerifyOptions): Promise<JWTPayload> {
  let payload: JWTPayload | undefined;
  try {
    payload = await acceptPlainlyValid(token, resolve, options);
  } catch (err) {
    // Several candidate keys (no `kid`): jose's error carries them, and `joseVerify` tries each.
    if (!isMultipleMatchingKeys(err)) throw err;
  }
  return payload ?? joseVerify(token, resolve, { ...options, algorithms: [...options.algorithms], requiredClaims: [...options.requiredClaims] });
}

const isMultipleMatchingKeys = (err: unknown) => (err as { code?: unknown }).code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS';

/**
 * jose's `jwtVerify(token, resolve, options)`'s payload; for a token without `kid` while the
 * provider's set holds several keys it could be (OIDC Core §10.1 asks for a `kid` then, yet it is
 * how a key rollover looks at some providers), each candidate jose's JWKS selection found is
 * tried, as jose documents for that error (`ERR_JWKS_MULTIPLE_MATCHING_KEYS`).
 */
export async function joseVerify(token: string, resolve: KeyResolver, options: JWTVerifyOptions): Promise<JWTPayload> {
  try {
    return (await jwtVerify(token, resolve, options)).payload;
  } catch (err) {
    if (!isMultipleMatchingKeys(err)) throw err;
    let refusedKey: unknown;
    let checked = false;
    for await (const key of err as unknown as AsyncIterable<CryptoKey>) {
      try {
        return (await jwtVerify(token, key, options)).payload;
      } catch (inner) {
        // A candidate that checks nothing goes on to the next: a wrong signature, or a key jose
        // will not use (an RSA key under 2048 bits is a TypeError, an unusable one JOSENotSupported).
        const code = (inner as { code?: unknown }).code;
        if (code === 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') checked = true;
        else if (inner instanceof TypeError || code === 'ERR_JOSE_NOT_SUPPORTED') refusedKey ??= inner;
        else throw inner;
      }
    }
    // No candidate verified it: a wrong signature, unless no candidate was a key jose would use.
    throw !checked && refusedKey !== undefined ? refusedKey : new JWSSignatureVerificationFailed();
  }
}

/**
 * The claims set of a token valid in every respect listed above, or undefined for jose to judge.
 * Errors from the resolver (the JWKS could not be fetched, no key matches) are thrown as they
 * are: jose would ask it the same question for the same header. Exported for tests.
 */
export async function acceptPlainlyValid(token: string, resolve: KeyResolver, options: JwtVerifyOptions): Promise<JWTPayload | undefined> {
  const parts = token.split('.');
  if (parts.length !== 3 || !parts.every((part) => part.length % 4 !== 1 && SEGMENT.test(part))) return undefined;
  const [encodedHeader, encodedPayload, encodedSignature] = parts as [string, string, string];
  const header = jsonObject(encodedHeader);
  if (!header || 'crit' in header || 'b64' in header) return undefined;
  const alg = header['alg'];
  if (typeof alg !== 'string' || !options.algorithms.includes(alg)) return undefined;
  const algorithm = ALGORITHMS.get(alg);
  if (!algorithm) return undefined;

  const key = await resolve(header as JWSHeaderParameters, { protected: encodedHeader, payload: encodedPayload, signature: encodedSignature });
  const keyObject = usableKey(key, algorithm);
  if (!keyObject) return undefined;
  const signed = Buffer.from(`${encodedHeader}.${encodedPayload}`, 'latin1');
  const signature = Buffer.from(encodedSignature, 'base64url');
  let valid: boolean;
  try {
    valid = verifySignature(algorithm.digest, signed, algorithm.options ? { key: keyObject, ...algorithm.options } : keyObject, signature);
  } catch {
    return undefined;
  }
  if (!valid) return undefined;

  const claims = jsonObject(encodedPayload);
  if (!claims || !claimsPlainlyValid(claims, options)) return undefined;
  return claims as JWTPayload;
}

function jsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? value as Record<string, unknown> : undefined;
  } catch {
    return undefined;
  }
}

/** jose's checks of a resolved key for verifying (`checkCryptoKey`, `checkModulusLength`). */
function usableKey(key: unknown, algorithm: SignatureAlgorithm): KeyObject | undefined {
  if (!(key instanceof CryptoKey) || key.type !== 'public' || !key.usages.includes('verify')) return undefined;
  const made = key.algorithm as { name: string; hash?: { name: string }; namedCurve?: string; modulusLength?: number };
  if (made.name !== algorithm.name) return undefined;
  if (algorithm.hash !== undefined && made.hash?.name !== algorithm.hash) return undefined;
  if (algorithm.namedCurve !== undefined && made.namedCurve !== algorithm.namedCurve) return undefined;
  if ((made.name === 'RSASSA-PKCS1-v1_5' || made.name === 'RSA-PSS') && !((made.modulusLength ?? 0) >= 2048)) return undefined;
  let keyObject = keyObjects.get(key);
  if (!keyObject) {
    try {
      keyObject = KeyObject.from(key);
    } catch {
      return undefined;
    }
    keyObjects.set(key, keyObject);
  }
  return keyObject;
}

/** RFC 7519 §4.1 as jose's `validateClaimsSet` checks it for these options; false when anything is off. */
function claimsPlainlyValid(claims: Record<string, unknown>, options: JwtVerifyOptions): boolean {
  for (const claim of options.requiredClaims) if (!Object.hasOwn(claims, claim)) return false;
  if (claims['iss'] !== options.issuer) return false;
  const aud = claims['aud'];
  if (!(aud === options.audience || (Array.isArray(aud) && aud.includes(options.audience)))) return false;
  const now = Math.floor((options.currentDate ?? new Date()).getTime() / 1000);
  const tolerance = options.clockTolerance;
  if (!Number.isFinite(now) || !Number.isFinite(tolerance) || tolerance < 0) return false;
  const { iat, nbf, exp } = claims;
  if (iat !== undefined && typeof iat !== 'number') return false;
  if (nbf !== undefined && !(typeof nbf === 'number' && nbf <= now + tolerance)) return false;
  return typeof exp === 'number' && exp > now - tolerance;
}
