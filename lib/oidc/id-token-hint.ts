/**
 * Checking an `id_token_hint` at `/end-session` (OpenID Connect RP-Initiated Logout 1.0 §2): it
 * must be an ID token the broker issued to the client, expired ones included (a logout usually
 * comes after the token's few minutes are over). Checks in order: shape, header, key (from the
 * broker's own ring, read again once for a key id it lacks), signature, and only then claims
 * (`iss`, `aud`, `sid`, `idp`, `sub`, `iat`). `exp` is deliberately not checked.
 */
import { compactVerify, decodeProtectedHeader } from 'jose';
import type { Client } from '../config/parse.js';
import { InvalidRequestError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import { ID_TOKEN_ALGS, type IdTokenAlg } from './signing-key-ring.js';

export interface VerifiedHint {
  /** The client the token was issued to (its `aud`). */
  readonly client: Client;
  /** The broker session it names. */
  readonly sid: string;
  /** The provider's name (`idp`). */
  readonly idp: string;
  readonly sub: string;
}

const JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
const SESSION_ID = /^[A-Za-z0-9_-]{22}$/;
const MAX_HINT_LENGTH = 16 * 1024;

const refused = (why: string, cause?: unknown) => new InvalidRequestError(`"id_token_hint" ${why}`, { cause });

/**
 * Verifies a hint; `clientId` is the request's `client_id`, when it sent one. Throws
 * `InvalidRequestError` (400) for every failure.
 */
export async function verifyIdTokenHint(rt: Runtime, hint: string, clientId: string | undefined): Promise<VerifiedHint> {
  if (hint.length > MAX_HINT_LENGTH || !JWS.test(hint)) throw refused('is not a signed JWT');
  let header;
  try {
    header = decodeProtectedHeader(hint);
  } catch (cause) {
    throw refused('is not a signed JWT', cause);
  }
  const alg = header.alg;
  if (typeof alg !== 'string' || !(ID_TOKEN_ALGS as readonly string[]).includes(alg)) throw refused('is not signed with an algorithm of the broker');
  if (typeof header.kid !== 'string') throw refused('names no signing key');
  const keys = await rt.signing.withKey(header.kid);
  const key = await keys.verificationKey(header.kid);
  if (!key || key.alg !== (alg as IdTokenAlg)) throw refused('is not signed with a key of the broker');
  let payload: Record<string, unknown>;
  try {
    const verified = await compactVerify(hint, key.key, { algorithms: [key.alg] });
    payload = JSON.parse(new TextDecoder().decode(verified.payload)) as Record<string, unknown>;
  } catch (cause) {
    throw refused('has an invalid signature', cause);
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) throw refused('is not a JWT');
  // Claims, only now that the signature is known to be the broker's.
  if (payload['iss'] !== rt.config.publicUrl) throw refused('was not issued by this broker');
  const aud = payload['aud'];
  if (typeof aud !== 'string' || !Object.hasOwn(rt.config.clients, aud)) throw refused('was not issued to a client of this broker');
  if (clientId !== undefined && aud !== clientId) throw refused('was issued to another client');
  const sid = payload['sid'];
  const idp = payload['idp'];
  const sub = payload['sub'];
  if (typeof sid !== 'string' || !SESSION_ID.test(sid) || typeof idp !== 'string' || typeof sub !== 'string' || typeof payload['iat'] !== 'number') {
    throw refused('lacks "sid", "idp", "sub" or "iat"');
  }
  return { client: rt.config.clients[aud]!, sid, idp, sub };
}
