/**
 * The broker's subject (`sub`) for a user at a provider: stable across logins (a function of the
 * provider's issuer and its `sub` only), unique across providers (the issuer is part of the
 * input, so two providers that use the same `sub` for different people get different broker
 * subjects), 43 ASCII characters:
 *
 *     sub = base64url(SHA-256(UTF-8(issuer) || 0x00 || UTF-8(idp_sub)))
 *
 * `issuer` is the provider's configured `issuer` exactly as written in the configuration. An
 * app or operator can recompute it; nothing secret goes in, and nothing is stored.
 */
import { createHash } from 'node:crypto';

export function brokerSubject(issuer: string, idpSub: string): string {
  return createHash('sha256').update(issuer, 'utf8').update(Buffer.of(0)).update(idpSub, 'utf8').digest('base64url');
}
