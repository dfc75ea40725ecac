import { describe, expect, it } from 'vitest';
import { run } from '../../../lib/cli/main.js';
import { memoryIo } from '../../support/cli-io.js';
import { parseKeyRing } from '../../../lib/crypto/key-ring.js';
import { parseSigningKeyRing } from '../../../lib/oidc/signing-key-ring.js';

const config = JSON.stringify({
  publicUrl: 'https://auth.example.com',
  providers: { okta: { issuer: 'https://dev-1.okta.com/oauth2/default', clientId: 'c', clientSecret: { secretsManager: 'broker/okta', jsonKey: 'client_secret' } } },
  clients: { web: { type: 'web', redirectUris: ['https://app.example.com/'], allowedOrigins: ['https://app.example.com'], providers: ['okta'] } },
  tokenEncryptionKeys: { secretsManager: 'broker/token-keys' },
});

describe('broker CLI: rejections', () => {
  it('exits 2 with the usage on a wrong command line', () => {
    const { io, err } = memoryIo();
    expect(run([], io)).toBe(2);
    expect(run(['keys', 'promote', 'ring.json'], io)).toBe(2);
    expect(err.join('\n')).toMatch(/usage:/);
  });

  it('exits 1 naming every bad field of an invalid configuration', () => {
    const { io, err } = memoryIo({ 'bad.json': JSON.stringify({ publicUrl: 'ftp://x', providers: {}, clients: {}, extra: 1 }) });
    expect(run(['config', 'check', 'bad.json'], io)).toBe(1);
    expect(err[0]).toMatch(/extra: is not a known field/);
  });

  it('exits 1 for a missing file, an unknown key id, and retiring the current key', () => {
    const { io, files } = memoryIo();
    expect(run(['config', 'check', 'nope.json'], io)).toBe(1);
    files['ring.json'] = JSON.stringify({ current: 'k1', keys: { k1: Buffer.alloc(32, 1).toString('base64url') } });
    expect(run(['keys', 'promote', 'ring.json', 'k9'], io)).toBe(1);
    expect(run(['keys', 'retire', 'ring.json', 'k1'], io)).toBe(1);
  });

  it('applies Lambda rules with --lambda', () => {
    const doc = JSON.parse(config);
    doc.providers.okta.clientSecret = { value: 'inline' };
    const { io, err } = memoryIo({ 'c.json': JSON.stringify(doc) });
    expect(run(['config', 'check', 'c.json'], io)).toBe(0);
    expect(run(['config', 'check', 'c.json', '--lambda'], io)).toBe(1);
    expect(err.join('\n')).toMatch(/providers\.okta\.clientSecret/);
  });
});

describe('(issue 13) config check --lambda: the document as the stack deploys it', () => {
  const withoutRings = () => {
    const doc = JSON.parse(config);
    delete doc.tokenEncryptionKeys;
    return doc;
  };

  it('lists every error at once: an unknown field does not hide the others', () => {
    const doc = { ...withoutRings(), publicUrl: 'http://auth.example.com', tokenEncryptionKey: { secretsManager: 'typo' } };
    doc.providers.okta.clientSecret = { env: 'OKTA_SECRET' };
    const { io, err } = memoryIo({ 'c.json': JSON.stringify(doc) });
    expect(run(['config', 'check', 'c.json', '--lambda'], io)).toBe(1);
    const [first, ...lines] = err[0]!.split('\n');
    expect(first).toBe('c.json: invalid broker configuration:');
    expect(lines).toEqual([
      '  - tokenEncryptionKey: is not a known field',
      '  - publicUrl: must be https (http only on loopback)',
      '  - providers.okta.clientSecret: in AWS Lambda a secret must come from Secrets Manager ({"secretsManager": ...})',
    ]);
  });

  it('refuses an unknown option or a stack name without --lambda', () => {
    const { io } = memoryIo({ 'c.json': JSON.stringify(withoutRings()) });
    expect(run(['config', 'check', 'c.json', '--lamda'], io)).toBe(2);
    expect(run(['config', 'check', 'c.json', '--stack-name', 'X'], io)).toBe(2);
    expect(run(['config', 'check', 'c.json', '--lambda', '--stack-name'], io)).toBe(2);
  });

  it('accepts a document without tokenEncryptionKeys and signingKeys: the stack creates them, under its name', () => {
    const { io, out } = memoryIo({ 'c.json': JSON.stringify(withoutRings()) });
    expect(run(['config', 'check', 'c.json', '--lambda'], io)).toBe(0);
    expect(out[0]).toMatch(/^c\.json: valid in AWS Lambda/);
    expect(out[0]).toMatch(/token keys {2}Secrets Manager OAuthBroker\/token-keys/);
    expect(out[0]).toMatch(/signing {5}Secrets Manager OAuthBroker\/signing-keys/);
    expect(out[0]).toMatch(/tokenEncryptionKeys and signingKeys: left out, so the stack "OAuthBroker" creates them/);
    expect(run(['config', 'check', 'c.json', '--lambda', '--stack-name', 'Broker-staging'], io)).toBe(0);
    expect(out[1]).toMatch(/Secrets Manager Broker-staging\/token-keys/);
  });

  it('keeps the key rings a document names', () => {
    const { io, out } = memoryIo({ 'c.json': JSON.stringify({ ...JSON.parse(config), signingKeys: { secretsManager: 'team/signing' } }) });
    expect(run(['config', 'check', 'c.json', '--lambda'], io)).toBe(0);
    expect(out[0]).toMatch(/token keys {2}Secrets Manager broker\/token-keys/);
    expect(out[0]).toMatch(/signing {5}Secrets Manager team\/signing/);
    expect(out[0]).not.toMatch(/left out/);
  });

  it('says how new ciphertexts are written', () => {
    const { io, out } = memoryIo({ 'a.json': config, 'b.json': JSON.stringify({ ...JSON.parse(config), storage: { ciphertexts: 'compact' } }) });
    expect(run(['config', 'check', 'a.json', '--lambda'], io)).toBe(0);
    expect(run(['config', 'check', 'b.json', '--lambda'], io)).toBe(0);
    expect(out[0]).toMatch(/storage {5}new ciphertexts JWE; both forms are read/);
    expect(out[1]).toMatch(/storage {5}new ciphertexts compact \(kid~iv\.ciphertext\.tag\); both forms are read/);
  });

  it('resolves a relative file against the directory npm was called from (INIT_CWD)', async () => {
    const { fromInvokingDirectory } = await import('../../../lib/cli/main.js');
    expect(fromInvokingDirectory('config/prod.json', { INIT_CWD: '/ops' })).toBe('/ops/config/prod.json');
    expect(fromInvokingDirectory('/abs/prod.json', { INIT_CWD: '/ops' })).toBe('/abs/prod.json');
    expect(fromInvokingDirectory('config/prod.json', {})).toBe('config/prod.json');
  });
});

describe('broker CLI', () => {
  it('summarises a valid configuration without any secret value', () => {
    const doc = JSON.parse(config);
    doc.providers.okta.clientSecret = { value: 'hunter2-secret' };
    const { io, out } = memoryIo({ 'c.json': JSON.stringify(doc) });
    expect(run(['config', 'check', 'c.json'], io)).toBe(0);
    expect(out[0]).toMatch(/c\.json: valid/);
    expect(out[0]).toMatch(/okta: discovery at https:\/\/dev-1\.okta\.com\/oauth2\/default/);
    expect(out[0]).not.toContain('hunter2-secret');
  });

  it('rotates a key ring: generate, add, promote, retire', () => {
    const { io, out, files } = memoryIo();
    expect(run(['keys', 'generate'], io)).toBe(0);
    files['ring.json'] = out[0]!;
    const first = parseKeyRing(files['ring.json']!).current;
    expect(run(['keys', 'add', 'ring.json', 'k2'], io)).toBe(0);
    expect(parseKeyRing(files['ring.json']!).current).toBe(first);
    expect(run(['keys', 'promote', 'ring.json', 'k2'], io)).toBe(0);
    expect(run(['keys', 'retire', 'ring.json', first], io)).toBe(0);
    const ring = parseKeyRing(files['ring.json']!);
    expect(ring.current).toBe('k2');
    expect([...ring.keys.keys()]).toEqual(['k2']);
    // Messages name key ids only, never key material.
    const key = JSON.parse(files['ring.json']!).keys.k2;
    expect(out.join('\n')).not.toContain(key);
  });
});

describe('broker CLI: (v2) signing keys', () => {
  it('rotates: generate, add (published, not signing), promote, retire; messages name generations only', () => {
    const { io, out, files } = memoryIo();
    expect(run(['signing-keys', 'generate'], io)).toBe(0);
    files['signing.json'] = out[0]!;
    const first = parseSigningKeyRing(files['signing.json']!).current;
    expect(run(['signing-keys', 'add', 'signing.json', 's-next'], io)).toBe(0);
    let ring = parseSigningKeyRing(files['signing.json']!);
    expect(ring.current).toBe(first);
    expect([...ring.keys.keys()]).toEqual([first, `${first}.es256`, 's-next', 's-next.es256']);
    expect(out.at(-1)).toMatch(/promote it no earlier than 25 minutes/);
    expect(run(['signing-keys', 'promote', 'signing.json', 's-next'], io)).toBe(0);
    expect(run(['signing-keys', 'retire', 'signing.json', first], io)).toBe(0);
    ring = parseSigningKeyRing(files['signing.json']!);
    expect(ring.current).toBe('s-next');
    expect([...ring.keys.keys()]).toEqual(['s-next', 's-next.es256']);
    const d = (JSON.parse(files['signing.json']!) as { keys: Record<string, { d: string }> }).keys['s-next']!.d;
    expect(out.slice(1).join('\n')).not.toContain(d);
  });

  it('exits 1 for an unknown generation, a duplicate one, retiring the current one, and a malformed ring; 2 without arguments', () => {
    const { io, out, err, files } = memoryIo();
    run(['signing-keys', 'generate'], io);
    files['s.json'] = out[0]!;
    const current = parseSigningKeyRing(files['s.json']!).current;
    expect(run(['signing-keys', 'promote', 's.json', 'nope'], io)).toBe(1);
    expect(run(['signing-keys', 'add', 's.json', current], io)).toBe(1);
    expect(run(['signing-keys', 'retire', 's.json', current], io)).toBe(1);
    files['bad.json'] = JSON.stringify({ current: 'x', keys: { x: { kty: 'RSA' } } });
    expect(run(['signing-keys', 'add', 'bad.json'], io)).toBe(1);
    expect(err.join('\n')).toMatch(/already has a generation|is current|no generation|private JWK/);
    expect(run(['signing-keys', 'promote', 's.json'], io)).toBe(2);
  });

  it('summarises signing keys, empty provider scopes and each client\'s ID token algorithm', () => {
    const doc = JSON.parse(config);
    doc.signingKeys = { secretsManager: 'broker/signing-keys' };
    doc.providers.okta.scopes = [];
    doc.providers.okta.issuer = undefined;
    doc.providers.okta.authorizationEndpoint = 'https://api.example.com/authorize';
    doc.providers.okta.tokenEndpoint = 'https://api.example.com/token';
    doc.clients.web.idTokenSigningAlg = 'ES256';
    const { io, out } = memoryIo({ 'c.json': JSON.stringify(doc) });
    expect(run(['config', 'check', 'c.json'], io)).toBe(0);
    expect(out[0]).toMatch(/signing +Secrets Manager broker\/signing-keys/);
    expect(out[0]).toMatch(/scopes: \(none: no scope parameter\)/);
    expect(out[0]).toMatch(/web: web, .*ID tokens ES256/);
  });
});
