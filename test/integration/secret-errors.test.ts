/**
 * A client secret that cannot be read, as docs/deploy.md ("A wrong secret reference") tells the
 * operator: through the Secrets Manager adapter against a stand-in speaking its wire protocol. A
 * missing secret (or grant) is storage trouble: the app gets `temporarily_unavailable`, and
 * `login.failed` names the secret and the store's error, never a value. A `jsonKey` the secret
 * lacks is a broker error: `server_error`, and `login.error`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAwsJsonClient } from '../../lib/aws/json-client.js';
import { secretsManagerFetcher } from '../../lib/secrets/secrets-manager.js';
import { startHarness, webLogin, type Harness } from '../support/harness.js';
import { secretsManagerStandIn, type SecretsManagerStandIn } from '../support/secrets-manager.js';

let sm: SecretsManagerStandIn;
let h: Harness;

beforeAll(async () => {
  sm = await secretsManagerStandIn({ 'broker/wrong-shape': JSON.stringify({ other: 'the-client-secret-value' }) });
  const client = createAwsJsonClient({
    endpoint: sm.url, region: 'us-east-1', service: 'secretsmanager', targetPrefix: 'secretsmanager', jsonVersion: '1.1',
    credentials: { accessKeyId: 'a', secretAccessKey: 'b' }, maxAttempts: 1,
  });
  h = await startHarness({
    fetchSecret: secretsManagerFetcher(client),
    secondProvider: {},
    configure: (doc) => {
      doc.providers.op.clientSecret = { secretsManager: 'broker/missing' };
      doc.providers.op2.clientSecret = { secretsManager: 'broker/wrong-shape', jsonKey: 'clientSecret' };
    },
  });
});
afterAll(async () => {
  await h.close();
  await sm.close();
});

const lines = (event: string) => h.logs.map((l) => JSON.parse(l)).filter((l) => l.event === event);

describe('a client secret that cannot be read, at the login that needs it', () => {
  it('a missing secret: the app gets temporarily_unavailable; login.failed names the secret and the store\'s error', async () => {
    const { redirect } = await webLogin(h);
    expect(redirect.searchParams.get('error')).toBe('temporarily_unavailable');
    const failed = lines('login.failed').at(-1);
    expect(failed).toMatchObject({ error: 'BrokerUnavailableError', provider: 'op' });
    expect(failed.cause).toBe('SecretReadError: reading secret "broker/missing" failed (ResourceNotFoundException)');
  });

  it('a jsonKey the secret lacks: the app gets server_error; login.error names it, never the secret\'s value', async () => {
    const { redirect } = await webLogin(h, 'web-state', { provider: 'op2' });
    expect(redirect.searchParams.get('error')).toBe('server_error');
    expect(lines('login.error').at(-1)).toMatchObject({ level: 'error', error: 'SecretError', provider: 'op2' });
    expect(h.logs.join('\n')).not.toContain('the-client-secret-value');
  });
});
