import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { freePort } from '../support/harness.js';
import { waitForReady } from '../support/processes.js';

const root = path.resolve(import.meta.dirname, '../..');
const tsx = path.join(root, 'node_modules/.bin/tsx');

/** Runs an ES module script (top-level await) with tsx. */
function script(source: string, env: NodeJS.ProcessEnv) {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'broker-script-')), 'run.mts');
  writeFileSync(file, source);
  return spawnSync(tsx, [file], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 });
}

function configFile(doc: unknown): string {
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'broker-cfg-')), 'config.json');
  writeFileSync(file, JSON.stringify(doc));
  return file;
}

const goodConfig = (port: number) => ({
  publicUrl: `http://127.0.0.1:${port}`,
  providers: { op: { issuer: 'http://127.0.0.1:9/', clientId: 'c', clientSecret: { value: 'not-a-real-secret' } } },
  clients: { app: { type: 'native', redirectUris: ['com.example.app:/cb'], providers: ['op'] } },
});

describe('the local runner (npm start)', () => {
  it('refuses an invalid configuration at start, naming every bad field by its path', () => {
    const file = configFile({
      publicUrl: 'ftp://x',
      providers: { op: { issuer: 'http://example.com', clientId: 'c', clientAuth: 'client_secret_post' } },
      clients: { app: { type: 'native', redirectUris: ['myapp:/cb'], providers: ['nope'] } },
    });
    const out = spawnSync(tsx, ['local/main.ts'], { cwd: root, env: { ...process.env, BROKER_CONFIG: file, PORT: '0' }, encoding: 'utf8', timeout: 60_000 });
    expect(out.status).toBe(1);
    for (const field of ['publicUrl', 'providers.op.issuer', 'providers.op.clientSecret', 'clients.app.redirectUris.0', 'clients.app.providers.0']) {
      expect(out.stderr).toContain(field);
    }
    expect(out.stdout).not.toContain('broker listening on');
  });

  it('runs the broker alone on BROKER_CONFIG and PORT, and says when it is ready', async () => {
    const port = await freePort();
    const child = spawn(tsx, ['local/main.ts'], { cwd: root, env: { ...process.env, BROKER_CONFIG: configFile(goodConfig(port)), PORT: String(port) }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      const ready = await waitForReady(child, { name: 'the runner', timeoutMs: 75_000 });
      expect(ready.url).toBe(`http://127.0.0.1:${port}`);
      expect(ready.output()).toMatch(/keys\.generated/);
      const meta = await (await fetch(`http://127.0.0.1:${port}/.well-known/oauth-authorization-server`)).json();
      expect(meta.issuer).toBe(`http://127.0.0.1:${port}`);
      // No demo page and no demo clients on a configuration of one's own.
      expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
      const demo = await fetch(`http://127.0.0.1:${port}/login?client_id=web`, { redirect: 'manual' });
      expect(demo.status).toBe(400);
      expect(ready.output()).not.toContain('not-a-real-secret');
    } finally {
      child.kill('SIGTERM');
    }
  }, 90_000);
});

describe('a Lambda cold start', () => {
  it('refuses local-only secret references in AWS Lambda', () => {
    const out = script(`await import(${JSON.stringify(path.join(root, 'functions/refresh/index.ts'))});`, {
      AWS_LAMBDA_FUNCTION_NAME: 'refresh', AWS_REGION: 'us-east-1', BROKER_CONFIG_JSON: JSON.stringify({ ...goodConfig(443), publicUrl: 'https://auth.example.com', providers: { op: { issuer: 'https://op.example.com', clientId: 'c', clientSecret: { value: 'x' } } } }),
    });
    expect(out.status).not.toBe(0);
    expect(out.stderr).toContain('providers.op.clientSecret');
    expect(out.stderr).toContain('tokenEncryptionKeys');
  });

  it('serves an API Gateway v2 event through the real handler', () => {
    const event = {
      version: '2.0', routeKey: 'GET /.well-known/oauth-authorization-server', rawPath: '/.well-known/oauth-authorization-server', rawQueryString: '', headers: {},
      requestContext: { http: { method: 'GET', path: '/.well-known/oauth-authorization-server' }, requestId: 'r1' }, isBase64Encoded: false,
    };
    const config = { ...goodConfig(443), publicUrl: 'https://auth.example.com', providers: { op: { issuer: 'https://op.example.com', clientId: 'c', clientSecret: { secretsManager: 'broker/op' } } }, tokenEncryptionKeys: { secretsManager: 'broker/keys' }, signingKeys: { secretsManager: 'broker/signing-keys' } };
    const out = script(
      `const { handler } = await import(${JSON.stringify(path.join(root, 'functions/metadata/index.ts'))}); console.log(JSON.stringify(await handler(${JSON.stringify(event)} as any)));`,
      { AWS_LAMBDA_FUNCTION_NAME: 'metadata', BROKER_CONFIG_JSON: JSON.stringify(config) },
    );
    expect(out.status).toBe(0);
    const result = JSON.parse(out.stdout.trim().split('\n').pop()!);
    expect(result.statusCode).toBe(200);
    expect(JSON.parse(result.body).issuer).toBe('https://auth.example.com');
  });
});
