/**
 * The token endpoint's client authentication after a secret rotation: an answer refusing the
 * client re-reads the secret once and tries again with the new one, whatever the provider calls
 * that refusal (`invalid_client`; Keycloak's `401 unauthorized_client`; another 401 OAuth error).
 */
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../../lib/config/parse.js';
import { UpstreamOAuthError } from '../../../lib/errors.js';
import type { ProviderMetadata } from '../../../lib/oauth/metadata.js';
import { refreshGrant, type UpstreamContext } from '../../../lib/oauth/token-endpoint.js';
import type { SecretResolver } from '../../../lib/secrets/secrets.js';
import { configDocWithProvider } from '../fixtures.js';

const provider = parseConfig(configDocWithProvider({ clientAuth: 'client_secret_post', clientSecret: { env: 'P_SECRET' } }), { runtime: 'local' }).providers['p']!;
const metadata = { tokenEndpoint: 'https://idp.example.com/token' } as unknown as ProviderMetadata;

/** A provider that takes only `current`, refusing any other secret with `refusal`; and a resolver whose value turns to `current` once invalidated. */
function setup(refusal: { status: number; error: string }) {
  const sent: string[] = [];
  let invalidated = 0;
  const secrets: SecretResolver = {
    resolve: async () => (invalidated ? 'new' : 'old'),
    invalidate: () => void invalidated++,
    prefetch: () => undefined,
  } as unknown as SecretResolver;
  const fetchFn = (async (_url: string, init: RequestInit) => {
    const secret = new URLSearchParams(String(init.body)).get('client_secret')!;
    sent.push(secret);
    return secret === 'new'
      ? Response.json({ access_token: 'at', token_type: 'Bearer', expires_in: 300 })
      : Response.json({ error: refusal.error }, { status: refusal.status });
  }) as typeof fetch;
  const ctx: UpstreamContext = { provider, metadata, secrets, http: { fetch: fetchFn } };
  return { ctx, sent, invalidations: () => invalidated };
}

describe('a refused client re-reads its secret once', () => {
  it.each([
    ['invalid_client (RFC 6749)', { status: 401, error: 'invalid_client' }],
    ['Keycloak: 401 unauthorized_client', { status: 401, error: 'unauthorized_client' }],
    ['any 401 OAuth error', { status: 401, error: 'access_denied' }],
  ])('%s', async (_name, refusal) => {
    const { ctx, sent, invalidations } = setup(refusal);
    expect((await refreshGrant(ctx, 'rt')).accessToken).toBe('at');
    expect(sent).toEqual(['old', 'new']);
    expect(invalidations()).toBe(1);
  });

  it('and only once, and never for an answer about the grant or a grant type the client may not use', async () => {
    for (const refusal of [{ status: 400, error: 'invalid_grant' }, { status: 401, error: 'invalid_grant' }, { status: 400, error: 'unauthorized_client' }]) {
      const { ctx, sent } = setup(refusal);
      await expect(refreshGrant(ctx, 'rt')).rejects.toMatchObject({ upstreamCode: refusal.error });
      expect(sent).toEqual(['old']);
    }
    const stuck = setup({ status: 401, error: 'invalid_client' });
    stuck.ctx.secrets.resolve = async () => 'old';
    await expect(refreshGrant(stuck.ctx, 'rt')).rejects.toBeInstanceOf(UpstreamOAuthError);
    expect(stuck.sent).toEqual(['old', 'old']);
  });
});
