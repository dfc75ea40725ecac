/**
 * The broker's own ID tokens (CONTRACT.md v2, "The broker as an OpenID provider"), minted from
 * a session and the client it belongs to, never from a provider token: `iss` is the broker, `aud`
 * the app's `client_id` alone, `sub` the broker's subject (`brokerSubject`), `idp` and `idp_sub`
 * name the provider and its subject, `auth_time` and the copied claims are those stored at login
 * (the same on every refresh, OIDC Core §12.2), `sid` is the broker session. `nonce` appears only
 * in the answer to the code exchange, and only when the app sent one.
 */
import { sign } from 'node:crypto';
import type { Client, Config, Provider } from '../config/parse.js';
import { SessionEndedError } from '../errors.js';
import type { Runtime } from '../runtime.js';
import type { SessionRecord } from '../store/sessions.js';
import { scopeString } from './scope.js';
import { openIdentity, type SessionIdentity } from './session-identity.js';
import type { SigningKeys } from './signing-keys.js';
import type { IdTokenAlg } from './signing-key-ring.js';
import { brokerSubject } from './subject.js';

/** The lifetime of a broker ID token: well inside the 10 minutes AppAuth allows for `iat`. */
export const ID_TOKEN_SECONDS = 300;

export interface BrokerIdTokenClaims {
  readonly iss: string;
  readonly sub: string;
  readonly aud: string;
  readonly exp: number;
  readonly iat: number;
  readonly auth_time: number;
  readonly nonce?: string;
  readonly acr?: string;
  readonly amr?: readonly string[];
  readonly sid: string;
  readonly idp: string;
  readonly idp_sub: string;
  readonly [claim: string]: unknown;
}

export interface IdTokenInput {
  readonly config: Config;
  readonly client: Client;
  readonly provider: Provider;
  /** The broker session's id. */
  readonly sid: string;
  readonly identity: SessionIdentity;
  readonly now: number;
  /** The app's nonce: pass it only for the answer to the code exchange. */
  readonly nonce?: string;
}

/**
 * The claims of a broker ID token, or undefined when the login did not ask for `openid` or the
 * provider named no subject (a provider without `openid`).
 */
export function idTokenClaims(input: IdTokenInput): BrokerIdTokenClaims | undefined {
  const { identity, provider } = input;
  if (!identity.scope.includes('openid') || identity.idpSub === undefined || provider.issuer === undefined) return undefined;
  return {
    iss: input.config.publicUrl,
    sub: brokerSubject(provider.issuer, identity.idpSub),
    aud: input.client.id,
    exp: input.now + ID_TOKEN_SECONDS,
    iat: input.now,
    auth_time: identity.authTime,
    ...(input.nonce !== undefined ? { nonce: input.nonce } : {}),
    ...(identity.acr !== undefined ? { acr: identity.acr } : {}),
    ...(identity.amr !== undefined ? { amr: identity.amr } : {}),
    sid: input.sid,
    idp: provider.name,
    idp_sub: identity.idpSub,
    ...identity.claims,
  };
}

const base64url = (json: unknown) => Buffer.from(JSON.stringify(json), 'utf8').toString('base64url');

/**
 * Signs claims with the current key for `alg` as a JWS Compact Serialization (RFC 7515 §7.1); the
 * header names the key (`kid`). Through node:crypto, synchronously: jose's WebCrypto signature is
 * a job on the thread pool, about 0.1 ms of CPU more per ID token and a hop (docs/design.md, "What
 * a request costs"). RS256 is RSASSA-PKCS1-v1_5 with SHA-256, ES256 is ECDSA on P-256 with
 * SHA-256, its signature R || S (RFC 7518 §3.3, §3.4).
 */
export async function signIdToken(keys: SigningKeys, alg: IdTokenAlg, claims: BrokerIdTokenClaims): Promise<string> {
  const { kid, key } = await keys.signingKey(alg);
  const input = `${base64url({ alg, kid })}.${base64url(claims)}`;
  const signature = sign('sha256', Buffer.from(input, 'ascii'), alg === 'ES256' ? { key, dsaEncoding: 'ieee-p1363' } : key);
  return `${input}.${signature.toString('base64url')}`;
}

/** What a token answer (`/token`, `/refresh`) says about OpenID: the granted `scope` and the broker's `id_token`. */
export interface OidcAnswer {
  readonly scope?: string;
  readonly id_token?: string;
}

/**
 * The OpenID part of a token answer for a session just served. `codeExchange`: the answer to
 * `grant_type=authorization_code`, the only one that carries the app's nonce. A session stored
 * before the broker kept identities gets neither field.
 */
export async function oidcAnswer(rt: Runtime, session: SessionRecord, options: { readonly codeExchange: boolean }): Promise<OidcAnswer> {
  const found = await sessionIdentity(rt, session);
  if (!found) return {};
  const { identity, client, provider } = found;
  const claims = idTokenClaims({
    config: rt.config, client, provider, sid: session.sid, identity, now: rt.now(),
    ...(options.codeExchange && identity.nonce !== undefined ? { nonce: identity.nonce } : {}),
  });
  return {
    ...(identity.scope.length ? { scope: scopeString(identity.scope) } : {}),
    ...(claims ? { id_token: await signIdToken(await rt.signing.get(), client.idTokenSigningAlg, claims) } : {}),
  };
}

/** The session's identity with its client and provider; undefined for a session without one. */
export async function sessionIdentity(rt: Runtime, session: SessionRecord): Promise<{ identity: SessionIdentity; client: Client; provider: Provider } | undefined> {
  const client = Object.hasOwn(rt.config.clients, session.clientId) ? rt.config.clients[session.clientId] : undefined;
  const provider = Object.hasOwn(rt.config.providers, session.provider) ? rt.config.providers[session.provider] : undefined;
  if (!client || !provider) throw new SessionEndedError('the session\'s client or provider is no longer configured');
  const cipher = await rt.cipher();
  let identity: SessionIdentity | undefined;
  try {
    identity = await openIdentity(cipher, session.sid, session.identity);
  } catch (cause) {
    throw new SessionEndedError('the session can no longer be read', { cause });
  }
  return identity ? { identity, client, provider } : undefined;
}
