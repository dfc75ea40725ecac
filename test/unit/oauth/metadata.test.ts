import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../../lib/config/parse.js';
import { UpstreamMalformedError, UpstreamUnavailableError } from '../../../lib/errors.js';
import { createMetadataCache } from '../../../lib/oauth/metadata.js';

let server: Server | undefined;
afterEach(() => server?.close());

/** A discovery endpoint serving `doc(issuer)`; counts its requests. */
async function op(doc: (issuer: string) => unknown, extra: Record<string, unknown> = {}) {
  let hits = 0;
  server = createServer((req, res) => {
    hits++;
    const body = req.url === '/.well-known/openid-configuration' ? doc(issuer) : extra[req.url ?? ''];
    if (body === undefined) return void res.writeHead(404).end();
    res.writeHead(body === 500 ? 500 : 200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const provider = parseConfig({
    publicUrl: 'http://127.0.0.1:1',
    providers: { p: { issuer, clientId: 'c', clientAuth: 'none' } },
    clients: { app: { type: 'native', redirectUris: ['com.example.app:/cb'], providers: ['p'] } },
  }, { runtime: 'local' }).providers['p']!;
  return { issuer, provider, hits: () => hits };
}

const good = (issuer: string) => ({
  issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
  id_token_signing_alg_values_supported: ['none', 'RS256', 'HS256'], authorization_response_iss_parameter_supported: true,
});

describe('provider discovery', () => {
  it('refuses a document whose issuer is not the configured one (OIDC Discovery §4.3)', async () => {
    const { provider } = await op((issuer) => ({ ...good(issuer), issuer: `${issuer}/other` }));
    await expect(createMetadataCache().get(provider)).rejects.toBeInstanceOf(UpstreamMalformedError);
  });

  it('refuses an endpoint that is neither https nor loopback', async () => {
    const { provider } = await op((issuer) => ({ ...good(issuer), token_endpoint: 'http://evil.example/token' }));
    await expect(createMetadataCache().get(provider)).rejects.toThrow(/token_endpoint/);
  });

  it('does not cache a failure, and caches a success once per process', async () => {
    let fail = true;
    const { provider, hits } = await op((issuer) => (fail ? 500 : good(issuer)));
    const cache = createMetadataCache();
    await expect(cache.get(provider)).rejects.toBeInstanceOf(UpstreamUnavailableError);
    fail = false;
    const m = await cache.get(provider);
    await cache.get(provider);
    expect(hits()).toBe(2);
    // Never `none`, never a symmetric algorithm the broker has no key for.
    expect(m.idTokenSigningAlgs).toEqual(['RS256']);
    expect(m.issParameterSupported).toBe(true);
  });
});

describe('external providers (Milestone XProtect)', () => {
  it('reads the list in either spelling, and is empty without external_providers_uri', async () => {
    const { provider } = await op((issuer) => ({ ...good(issuer), external_providers_uri: `${issuer}/ext` }), {
      '/ext': [{ LoginProviderId: 'OIDC', DisplayName: 'Corporate' }, { loginProviderId: 'AAD' }, { displayName: 'no id' }],
    });
    expect(await createMetadataCache().externalProviders(provider)).toEqual([
      { loginProviderId: 'OIDC', displayName: 'Corporate' },
      { loginProviderId: 'AAD', displayName: undefined },
    ]);
    server!.close();
    const plain = await op(good);
    expect(await createMetadataCache().externalProviders(plain.provider)).toEqual([]);
  });
});

describe('(issue 13) upstream metrics per provider', () => {
  it('the runtime counts a provider\'s discovery request under Service and under Service + Provider; unlabelled requests under Service only', async () => {
    const { provider } = await op(good);
    const lines: Record<string, unknown>[] = [];
    const { createRuntime } = await import('../../../lib/runtime.js');
    const { createLogger } = await import('../../../lib/log.js');
    const { NO_TABLE } = await import('../../../lib/store/table.js');
    const { upstreamRequest } = await import('../../../lib/oauth/http.js');
    const config = parseConfig({
      publicUrl: 'http://127.0.0.1:1',
      providers: { p: { issuer: provider.issuer, clientId: 'c', clientAuth: 'none' } },
      clients: { app: { type: 'native', redirectUris: ['com.example.app:/cb'], providers: ['p'] } },
    }, { runtime: 'local' });
    const rt = createRuntime({ config, table: NO_TABLE, log: createLogger({ service: 'Staging', sink: (l) => lines.push(JSON.parse(l)) }) });
    await rt.metadata.get(config.providers['p']!);
    await upstreamRequest(`${provider.issuer}/.well-known/openid-configuration`, {}, rt.http);
    const upstream = lines.filter((l) => l['event'] === 'upstream.request');
    expect(upstream).toHaveLength(2);
    expect(upstream[0]).toMatchObject({ Service: 'Staging', Provider: 'p', UpstreamRequests: 1, UpstreamFailures: 0 });
    expect((upstream[0]!['_aws'] as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0]!.Dimensions).toEqual([['Service'], ['Service', 'Provider']]);
    expect(upstream[1]!['Provider']).toBeUndefined();
    expect((upstream[1]!['_aws'] as { CloudWatchMetrics: { Dimensions: string[][] }[] }).CloudWatchMetrics[0]!.Dimensions).toEqual([['Service']]);
    expect(rt.upstreamHttp('p')).toBe(rt.upstreamHttp('p'));
  });
});
