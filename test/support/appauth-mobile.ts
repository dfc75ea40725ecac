/**
 * What AppAuth-iOS and AppAuth-Android check, re-stated from their sources so the broker's
 * answers can be held to it here (neither library runs in Node):
 *
 * - AppAuth-iOS `OIDServiceDiscovery.dictionaryHasRequiredFields` (Sources/AppAuthCore/
 *   OIDServiceDiscovery.m) and the ID token checks of `OIDAuthorizationService
 *   performTokenRequest:originalAuthorizationResponse:callback:` (OIDAuthorizationService.m);
 * - AppAuth-Android `AuthorizationServiceDiscovery.MANDATORY_METADATA` and `IdToken.validate`
 *   (library/java/net/openid/appauth/).
 *
 * Both run their ID token checks on every token response that carries an `id_token`: the code
 * exchange and every refresh (`performActionWithFreshTokens` included). Neither checks the
 * signature (OIDC Core §3.1.3.7 rule 6, TLS instead).
 */
import { decodeJwt, decodeProtectedHeader } from 'jose';

const IOS_REQUIRED = ['issuer', 'authorization_endpoint', 'token_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported'];
const ANDROID_REQUIRED = ['issuer', 'authorization_endpoint', 'jwks_uri', 'response_types_supported', 'subject_types_supported', 'id_token_signing_alg_values_supported'];

/** AppAuth-iOS: "Missing field: x", "Invalid URL: x". */
export function iosDiscoveryErrors(doc: Record<string, unknown>): string[] {
  const errors = IOS_REQUIRED.filter((f) => doc[f] === undefined || doc[f] === null).map((f) => `Missing field: ${f}`);
  for (const f of ['issuer', 'token_endpoint', 'jwks_uri']) {
    if (typeof doc[f] === 'string' && !URL.canParse(doc[f] as string)) errors.push(`Invalid URL: ${f}`);
  }
  return errors;
}

/** AppAuth-Android: "Missing mandatory configuration field: x". */
export function androidDiscoveryErrors(doc: Record<string, unknown>): string[] {
  return ANDROID_REQUIRED.filter((f) => doc[f] === undefined || doc[f] === null).map((f) => `Missing mandatory configuration field: ${f}`);
}

export interface TokenRequestContext {
  /** The discovery document's `issuer`. */
  readonly issuer: string;
  readonly clientId: string;
  readonly grantType: 'authorization_code' | 'refresh_token';
  /** The nonce of the authorization request; AppAuth-iOS and -Android both send one by default. */
  readonly requestNonce: string | undefined;
  /** The device's clock, epoch seconds. */
  readonly now: number;
}

function parse(idToken: string): Record<string, unknown> | string {
  try {
    decodeProtectedHeader(idToken);
    const claims = decodeJwt(idToken) as Record<string, unknown>;
    for (const c of ['iss', 'sub', 'aud', 'exp', 'iat']) if (claims[c] === undefined) return 'ID Token parsing failed';
    return claims;
  } catch {
    return 'ID Token parsing failed';
  }
}

const audiences = (aud: unknown) => (Array.isArray(aud) ? aud : [aud]);

/** AppAuth-iOS's checks, in its order; an empty list is a token it accepts. */
export function iosIdTokenErrors(idToken: string, ctx: TokenRequestContext): string[] {
  const claims = parse(idToken);
  if (typeof claims === 'string') return [claims];
  const errors: string[] = [];
  if (claims['iss'] !== ctx.issuer) errors.push('Issuer mismatch');
  if (!audiences(claims['aud']).includes(ctx.clientId) && claims['azp'] !== ctx.clientId) errors.push('Audience mismatch');
  if ((claims['exp'] as number) - ctx.now < 0) errors.push('ID Token expired');
  if (Math.abs((claims['iat'] as number) - ctx.now) > 600) errors.push('Issued at time is more than 600 seconds before or after the current time');
  if (ctx.grantType === 'authorization_code' && ctx.requestNonce !== undefined && claims['nonce'] !== ctx.requestNonce) errors.push('Nonce mismatch');
  return errors;
}

/** AppAuth-Android's `IdToken.validate`; `skipIssuerHttpsCheck` is its own option, for loopback tests. */
export function androidIdTokenErrors(idToken: string, ctx: TokenRequestContext & { skipIssuerHttpsCheck: boolean }): string[] {
  const claims = parse(idToken);
  if (typeof claims === 'string') return [claims];
  const errors: string[] = [];
  if (claims['iss'] !== ctx.issuer) errors.push('Issuer mismatch');
  const issuer = new URL(claims['iss'] as string);
  if (!ctx.skipIssuerHttpsCheck && issuer.protocol !== 'https:') errors.push('Issuer must be an https URL');
  if (!issuer.host) errors.push('Issuer host can not be empty');
  if (issuer.hash || issuer.search) errors.push('Issuer URL should not containt query parameters or fragment components');
  if (!audiences(claims['aud']).includes(ctx.clientId) && claims['azp'] !== ctx.clientId) errors.push('Audience mismatch');
  if (ctx.now > (claims['exp'] as number)) errors.push('ID Token expired');
  if (Math.abs(ctx.now - (claims['iat'] as number)) > 600) errors.push('Issued at time is more than 10 minutes before or after the current time');
  // TextUtils.equals: both absent is equal, so a nonce the request did not send is a mismatch too.
  if (ctx.grantType === 'authorization_code' && (claims['nonce'] ?? undefined) !== ctx.requestNonce) errors.push('Nonce mismatch');
  return errors;
}
