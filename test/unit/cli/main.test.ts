import { describe, expect, it } from 'vitest';
import { run, type Io } from '../../../lib/cli/main.js';
import { parseKeyRing } from '../../../lib/crypto/key-ring.js';

function memoryIo(files: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = {
    out: (t) => out.push(t),
    err: (t) => err.push(t),
    read: (p) => {
      if (!(p in files)) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT', path: p });
      return files[p]!;
    },
    write: (p, t) => void (files[p] = t),
  };
  return { io, out, err, files };
}

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
