/**
 * The key ring generator's code, run here against a fake Secrets Manager: it writes a ring the
 * runtime accepts (a token key ring, or (v2) the ID-token signing keys), only while the secret
 * holds none, and never returns or logs a key.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { KEY_RING_GENERATOR_CODE } from '../../infra/constructs/key-ring.js';
import { SignJWT } from 'jose';
import { parseKeyRing } from '../../lib/crypto/key-ring.js';
import { parseSigningKeyRing } from '../../lib/oidc/signing-key-ring.js';
import { createSigningKeys } from '../../lib/oidc/signing-keys.js';

interface Command { readonly kind: string; readonly input: Record<string, unknown> }
type Handler = (event: Record<string, unknown>) => Promise<{ PhysicalResourceId: string; Data?: unknown }>;

const nodeRequire = createRequire(import.meta.url);
const SECRET_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:OAuthBroker/token-keys-AbC123';

function generator(currentValue: string) {
  const sent: Command[] = [];
  const logged: string[] = [];
  const command = (kind: string) => class { readonly kind = kind; constructor(readonly input: Record<string, unknown>) {} };
  const sdk = {
    SecretsManagerClient: class {
      async send(cmd: Command) {
        sent.push(cmd);
        return cmd.kind === 'get' ? { SecretString: currentValue } : {};
      }
    },
    GetSecretValueCommand: command('get'),
    PutSecretValueCommand: command('put'),
  };
  const fakeRequire = (id: string) => (id === '@aws-sdk/client-secrets-manager' ? sdk : nodeRequire(id));
  const module = { exports: {} as { handler?: Handler } };
  const console = { log: (line: string) => logged.push(line) };
  new Function('require', 'module', 'exports', 'console', KEY_RING_GENERATOR_CODE)(fakeRequire, module, module.exports, console);
  return { handler: module.exports.handler!, sent, logged };
}

const event = (RequestType: string) => ({ RequestType, ResourceProperties: { SecretId: SECRET_ARN }, PhysicalResourceId: SECRET_ARN });

describe('key ring generator', () => {
  it('replaces the placeholder CloudFormation created with a ring the runtime accepts', async () => {
    const g = generator('{"uninitialized":"replaced by the key ring generator at deploy","placeholder":"Xy12"}');
    const result = await g.handler(event('Create'));
    expect(result).toEqual({ PhysicalResourceId: SECRET_ARN });
    expect(g.sent.map((c) => c.kind)).toEqual(['get', 'put']);
    const put = g.sent[1]!.input;
    expect(put['SecretId']).toBe(SECRET_ARN);
    const ring = parseKeyRing(put['SecretString'] as string);
    expect(ring.current).toMatch(/^k\d{8}$/);
    expect([...ring.keys.keys()]).toEqual([ring.current]);
    expect(ring.keys.get(ring.current)).toHaveLength(32);
    // The key is in the secret only: not in the response, not in the log.
    const key = JSON.parse(put['SecretString'] as string).keys[ring.current] as string;
    expect(JSON.stringify(result)).not.toContain(key);
    expect(g.logged.join('\n')).not.toContain(key);
  });

  it('generates a different key on every call', async () => {
    const keys = new Set<string>();
    for (let i = 0; i < 3; i++) {
      const g = generator('placeholder');
      await g.handler(event('Create'));
      keys.add(g.sent[1]!.input['SecretString'] as string);
    }
    expect(keys.size).toBe(3);
  });

  it('never replaces a key ring: redeploys keep the keys (and an operator\'s rotation)', async () => {
    const rotated = JSON.stringify({ current: 'k2', keys: { k1: Buffer.alloc(32, 1).toString('base64url'), k2: Buffer.alloc(32, 2).toString('base64url') } });
    for (const type of ['Create', 'Update']) {
      const g = generator(rotated);
      await g.handler(event(type));
      expect(g.sent.map((c) => c.kind)).toEqual(['get']);
    }
  });

  it('does nothing on Delete: the secret is retained with the table', async () => {
    const g = generator('placeholder');
    expect(await g.handler(event('Delete'))).toEqual({ PhysicalResourceId: SECRET_ARN });
    expect(g.sent).toEqual([]);
  });

  it('fits Lambda\'s 4 KB limit for inline code', () => {
    expect(Buffer.byteLength(KEY_RING_GENERATOR_CODE)).toBeLessThan(4096);
  });
});

describe('(v2) signing key generator (Kind signing)', () => {
  const signingEvent = (RequestType: string) => ({ RequestType, ResourceProperties: { SecretId: SECRET_ARN, Kind: 'signing' }, PhysicalResourceId: SECRET_ARN });

  it('replaces the placeholder with one generation the runtime accepts: RS256 <g> and ES256 <g>.es256, private JWKs', async () => {
    const g = generator('{"uninitialized":"replaced by the key ring generator at deploy","placeholder":"Xy12"}');
    const result = await g.handler(signingEvent('Create'));
    expect(result).toEqual({ PhysicalResourceId: SECRET_ARN });
    expect(g.sent.map((c) => c.kind)).toEqual(['get', 'put']);
    const text = g.sent[1]!.input['SecretString'] as string;
    const ring = parseSigningKeyRing(text);
    expect(ring.current).toMatch(/^s\d{8}$/);
    expect([...ring.keys.keys()].sort()).toEqual([ring.current, `${ring.current}.es256`]);
    expect(ring.keys.get(ring.current)!.jwk).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
    expect(ring.keys.get(`${ring.current}.es256`)!.jwk).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    // It signs: the private keys import and work.
    const keys = createSigningKeys(ring);
    for (const alg of ['RS256', 'ES256'] as const) {
      const { key, kid } = await keys.signingKey(alg);
      expect(kid).toBe(alg === 'RS256' ? ring.current : `${ring.current}.es256`);
      expect(await new SignJWT({ sub: 'x' }).setProtectedHeader({ alg, kid }).sign(key)).toMatch(/^ey/);
    }
    // No private member in the response or the log.
    const d = (JSON.parse(text) as { keys: Record<string, { d: string }> }).keys[ring.current]!.d;
    expect(JSON.stringify(result)).not.toContain(d);
    expect(g.logged.join('\n')).not.toContain(d);
  });

  it('never replaces a signing key ring (redeploys keep it and the operator\'s rotation), and never takes a token ring for one', async () => {
    const g1 = generator('{"uninitialized":"x"}');
    await g1.handler(signingEvent('Create'));
    const signingRing = g1.sent[1]!.input['SecretString'] as string;
    for (const type of ['Create', 'Update']) {
      const g = generator(signingRing);
      await g.handler(signingEvent(type));
      expect(g.sent.map((c) => c.kind)).toEqual(['get']);
    }
    const tokenRing = JSON.stringify({ current: 'k1', keys: { k1: Buffer.alloc(32, 1).toString('base64url') } });
    const g2 = generator(tokenRing);
    await g2.handler(signingEvent('Create'));
    expect(g2.sent.map((c) => c.kind)).toEqual(['get', 'put']);
    // And the token kind does not take a signing ring for a token ring.
    const g3 = generator(signingRing);
    await g3.handler(event('Create'));
    expect(g3.sent.map((c) => c.kind)).toEqual(['get', 'put']);
    expect(() => parseKeyRing(g3.sent[1]!.input['SecretString'] as string)).not.toThrow();
  });
});
