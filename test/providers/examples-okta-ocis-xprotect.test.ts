/**
 * The documented examples for Okta, oCIS and XProtect (examples/providers/{okta,ocis,xprotect}.json;
 * other providers' examples are checked by their own tests) are deployable as written: they
 * pass the configuration check the Lambda runtime runs at cold start, take every secret from
 * Secrets Manager, and each registers one web and one native client.
 */
import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../lib/config/parse.js';
import { exampleDocument, EXAMPLES_DIR } from '../support/peers/example-flows.js';

const NAMES = ['okta', 'ocis', 'xprotect'];

describe('examples/providers', () => {
  it('has an example for each of these providers', () => {
    for (const name of NAMES) expect(existsSync(`${EXAMPLES_DIR}${name}.json`)).toBe(true);
  });

  describe.each(NAMES)('%s.json', (name) => {
    const doc = exampleDocument(name);

    it('passes parseConfig(doc, { runtime: "lambda" })', () => {
      expect(() => parseConfig(doc, { runtime: 'lambda' })).not.toThrow();
      const config = parseConfig(doc, { runtime: 'lambda' });
      expect(Object.keys(config.providers)).toEqual([name]);
      expect(config.publicUrl.startsWith('https://')).toBe(true);
      expect(config.secureCookies).toBe(true);
    });

    it('takes its secrets from Secrets Manager and registers one web and one native client', () => {
      expect(doc['tokenEncryptionKeys']).toEqual({ secretsManager: 'broker/token-keys' });
      expect(doc['signingKeys']).toEqual({ secretsManager: 'broker/signing-keys' });
      const provider = doc['providers'][name];
      if (provider.clientAuth === 'none') expect(provider.clientSecret).toBeUndefined();
      else expect(provider.clientSecret).toEqual({ secretsManager: `broker/${name}`, jsonKey: 'client_secret' });
      for (const key of ['issuer', 'authorizationEndpoint', 'tokenEndpoint', 'jwksUri']) {
        if (provider[key] !== undefined) expect(provider[key]).toMatch(/^https:\/\//);
      }
      if (provider.downstreamLogin) expect(provider.downstreamLogin.url).toMatch(/^https:\/\//);
      const types = Object.values(doc['clients'] as Record<string, { type: string; providers: string[] }>).map((c) => c.type).sort();
      expect(types).toEqual(['native', 'web']);
      for (const client of Object.values(doc['clients'] as Record<string, { providers: string[] }>)) expect(client.providers).toEqual([name]);
    });

    it('is refused in Lambda when a secret is given inline', () => {
      const inline = structuredClone(doc);
      inline['tokenEncryptionKeys'] = { value: 'x' };
      expect(() => parseConfig(inline, { runtime: 'lambda' })).toThrow(/tokenEncryptionKeys/);
    });
  });
});
