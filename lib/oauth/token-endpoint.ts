/**
 * Requests to the provider's token and revocation endpoints: the authorization code grant
 * (RFC 6749 §4.1.3, RFC 7636 §4.5), the refresh grant (RFC 6749 §6) and token revocation
 * (RFC 7009). An answer refusing the client (`invalid_client`, or another code with a 401 but
 * `invalid_grant`) re-reads the client secret once and tries again, since the secret may just have
 * been rotated.
 */
import type { Provider } from '../config/parse.js';
import { UpstreamMalformedError, UpstreamOAuthError } from '../errors.js';
import type { SecretResolver } from '../secrets/secrets.js';
import { encodeClientRequest } from './client-auth.js';
import { checkOAuthStatus, upstreamRequest, type HttpOptions, type UpstreamResponse } from './http.js';
import type { ProviderMetadata } from './metadata.js';
import { isTokenText, parseTokenResponse, type TokenSet } from './token-response.js';

export interface UpstreamContext {
  readonly provider: Provider;
  readonly metadata: ProviderMetadata;
  readonly secrets: SecretResolver;
  readonly http?: HttpOptions;
}

async function postWithClientAuth<T>(ctx: UpstreamContext, url: string, fields: Record<string, string>, read: (res: Awaited<ReturnType<typeof upstreamRequest>>) => T): Promise<T> {
  const ref = ctx.provider.clientSecret;
  for (let attempt = 0; ; attempt++) {
    const secret = ref ? await ctx.secrets.resolve(ref) : undefined;
    const { headers, body } = encodeClientRequest(ctx.provider, secret, fields);
    const res = await upstreamRequest(url, { method: 'POST', headers, body }, ctx.http);
    try {
      return read(res);
    } catch (err) {
      if (attempt === 0 && ref && isClientRefusal(err)) {
        ctx.secrets.invalidate(ref);
        continue;
      }
      throw err;
    }
  }
}

/**
 * An answer that may mean the client secret was rotated: `invalid_client` (RFC 6749 §5.2), and
 * what providers answer instead of it with a `401` (the status RFC 6749 gives failed client
 * authentication): Keycloak's `401 unauthorized_client` ("Invalid client or Invalid client
 * credentials"), others' own codes. Not a `401 invalid_grant` (the grant, not the client), and
 * not a `400 unauthorized_client` (Okta: a grant type the client may not use), which a re-read
 * would not mend.
 */
function isClientRefusal(err: unknown): boolean {
  return err instanceof UpstreamOAuthError
    && (err.upstreamCode === 'invalid_client' || (err.upstreamStatus === 401 && err.upstreamCode !== 'invalid_grant'));
}

export interface CodeExchange {
  readonly code: string;
  readonly redirectUri: string;
  readonly codeVerifier: string | undefined;
}

/** @see RFC 6749 §4.1.3 */
export async function exchangeCode(ctx: UpstreamContext, input: CodeExchange): Promise<TokenSet> {
  const fields: Record<string, string> = {
    ...ctx.provider.tokenParams,
    grant_type: 'authorization_code',
    code: input.code,
    redirect_uri: input.redirectUri,
  };
  if (input.codeVerifier !== undefined) fields['code_verifier'] = input.codeVerifier;
  let refused: string | undefined;
  try {
    return await postWithClientAuth(ctx, ctx.metadata.tokenEndpoint, fields, (res) => {
      try {
        return parseTokenResponse(res, ctx.provider);
      } catch (err) {
        refused = strayRefreshToken(res);
        throw err;
      }
    });
  } catch (err) {
    // An answer refused for its form may still have issued a refresh token: revoke it (best effort),
    // with a budget of its own, not what the exchange left of the login's.
    if (refused) await revokeToken({ ...ctx, http: { ...ctx.http, timeoutMs: REVOCATION_BUDGET_MS } }, refused, 'refresh_token').catch(() => undefined);
    throw err;
  }
}

/** The refresh token in an answer that was refused, if it has one. */
function strayRefreshToken(res: UpstreamResponse): string | undefined {
  if (res.status !== 200) return undefined;
  try {
    const token = (JSON.parse(res.text) as { refresh_token?: unknown }).refresh_token;
    return isTokenText(token) ? token : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A refresh answer refused for its form (502, the session kept) that still carried a new refresh
 * token: a provider that rotates has already retired the one sent, so the caller keeps this one.
 */
export class MalformedRefreshAnswer extends UpstreamMalformedError {
  constructor(readonly refreshToken: string, refused: UpstreamMalformedError) {
    super(refused.description, { cause: refused });
  }
}

/** @see RFC 6749 §6 */
export function refreshGrant(ctx: UpstreamContext, refreshToken: string): Promise<TokenSet> {
  const fields: Record<string, string> = {
    ...ctx.provider.refreshParams,
    grant_type: 'refresh_token',
    refresh_token: refreshToken,
  };
  return postWithClientAuth(ctx, ctx.metadata.tokenEndpoint, fields, (res) => {
    try {
      return parseTokenResponse(res, ctx.provider);
    } catch (err) {
      const rotated = err instanceof UpstreamMalformedError ? strayRefreshToken(res) : undefined;
      throw rotated !== undefined && rotated !== refreshToken ? new MalformedRefreshAnswer(rotated, err as UpstreamMalformedError) : err;
    }
  });
}

/** How long a request waits for a best-effort revocation (a logout, a refused login) before it goes on. */
export const REVOCATION_BUDGET_MS = 5_000;

/** @see RFC 7009 §2.1. Resolves false where the provider has no revocation endpoint. */
export async function revokeToken(ctx: UpstreamContext, token: string, hint: 'refresh_token' | 'access_token'): Promise<boolean> {
  const url = ctx.metadata.revocationEndpoint;
  if (!url) return false;
  await postWithClientAuth(ctx, url, { token, token_type_hint: hint }, (res) => {
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    checkOAuthStatus(res, 'revocation endpoint');
  });
  return true;
}
