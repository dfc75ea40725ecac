/** `npm run broker -- config check <file>`: a validated configuration, summarised without secrets. */
import type { Config } from '../config/parse.js';
import type { SecretRef } from '../config/schema.js';

const secretSource = (ref: SecretRef | undefined) =>
  ref === undefined ? 'none' : 'secretsManager' in ref ? `Secrets Manager ${ref.secretsManager}${ref.jsonKey ? ` (${ref.jsonKey})` : ''}` : 'env' in ref ? `env ${ref.env}` : 'inline value (local runs only)';

export function summarizeConfig(config: Config): string {
  const lines = [`publicUrl  ${config.publicUrl}`, '', 'providers'];
  for (const p of Object.values(config.providers)) {
    lines.push(`  ${p.name}: ${p.discovery ? `discovery at ${p.issuer}` : `static endpoints (${p.tokenEndpoint})`}`);
    lines.push(`    client ${p.clientId}, ${p.clientAuth}, secret: ${secretSource(p.clientSecret)}, body: ${p.tokenRequestFormat}`);
    lines.push(`    scopes: ${p.scopes.length ? p.scopes.join(' ') : '(none: no scope parameter)'}; PKCE ${p.pkce ? 'S256' : 'off'}; response_mode ${p.responseMode}`);
    if (p.forwardParams.length) lines.push(`    apps may pass: ${p.forwardParams.join(', ')}`);
    if (p.downstreamLogin) lines.push(`    downstream login: ${p.downstreamLogin.kind} at ${p.downstreamLogin.url}`);
  }
  lines.push('', 'clients');
  for (const c of Object.values(config.clients)) {
    lines.push(`  ${c.id}: ${c.type}, providers ${c.providers.join(', ')}, ${c.redirectUris.length} redirect URI(s)${c.allowedOrigins.length ? `, origins ${c.allowedOrigins.join(' ')}` : ''}, ID tokens ${c.idTokenSigningAlg}`);
  }
  const t = config.ttl;
  lines.push('', `token keys  ${config.tokenEncryptionKeys ? secretSource(config.tokenEncryptionKeys) : 'generated per process (local runs only)'}`);
  lines.push(`signing     ${config.signingKeys ? secretSource(config.signingKeys) : 'generated per process (local runs only)'}`);
  lines.push(`storage     new ciphertexts ${config.storage.ciphertexts === 'compact' ? 'compact (kid~iv.ciphertext.tag)' : 'JWE'}; both forms are read`);
  lines.push(`ttl         login ${t.loginSeconds}s, code ${t.codeSeconds}s, idle ${t.sessionIdleSeconds}s, max ${t.sessionMaxSeconds}s, grace ${t.reuseGraceSeconds}s, min access token ${t.minAccessTokenSeconds}s`);
  return lines.join('\n');
}
