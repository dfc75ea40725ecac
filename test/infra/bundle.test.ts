/**
 * The bundles as they deploy (infra/bundle.ts, the CDK stack's code assets and `npm run build`):
 * a function that reads secrets starts reading them before the rest of its code loads, and its
 * cold start reads them all in one `BatchGetSecretValue`, run here from the bundle itself against
 * a Secrets Manager stand-in.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_NAMES, functionSpec, type FunctionName } from '../../functions/manifest.js';
import { bundleFunction, loadedWithEntry } from '../../infra/bundle.js';
import { generateSigningGenerationSync } from '../../lib/oidc/signing-key-ring.js';
import { secretsManagerStandIn } from '../support/secrets-manager.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'broker-bundles-'));
const metafiles = new Map<FunctionName, Metafile>();
beforeAll(() => {
  for (const name of FUNCTION_NAMES) metafiles.set(name, bundleFunction(name, path.join(dir, name)));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const readsSecrets = (name: FunctionName) => {
  const { keyRing, clientSecrets, signingKeys } = functionSpec(name).secrets;
  return keyRing || clientSecrets || signingKeys !== false;
};

/** The inputs (source files) of what loads before the entry's code runs. */
const loadedFirst = (meta: Metafile) => loadedWithEntry(meta).flatMap((f) => Object.keys(meta.outputs[f]!.inputs));

describe('the bundles', () => {
  it.each(FUNCTION_NAMES)('%s: a secret reader loads its routes and the runtime by a dynamic import, after the reads start; the others are one file', (name) => {
    const meta = metafiles.get(name)!;
    const code = Object.keys(meta.outputs).filter((f) => f.endsWith('.mjs')).map((f) => path.basename(f)).sort();
    expect(readdirSync(path.join(dir, name)).sort()).toEqual(code.flatMap((f) => [f, `${f}.map`]).sort());
    const entry = meta.outputs[Object.keys(meta.outputs).find((f) => f.endsWith('/index.mjs'))!]!;
    expect(entry.entryPoint).toBe(`functions/${name}/index.ts`);
    if (!readsSecrets(name)) {
      expect(code).toEqual(['index.mjs']);
      return;
    }
    expect(code).toHaveLength(3);
    const dynamic = entry.imports.filter((i) => i.kind === 'dynamic-import').map((i) => path.basename(i.path));
    expect(dynamic).toHaveLength(1);
    expect(dynamic[0]).toMatch(/^main-[A-Z0-9]+\.mjs$/);
    const first = loadedFirst(meta);
    // What starts the reads: the configuration's parser and the Secrets Manager client.
    expect(first).toEqual(expect.arrayContaining(['lib/config/parse.ts', 'lib/secrets/secrets-manager.ts', 'lib/aws/json-client.ts', 'functions/handler.ts']));
    // What waits for the dynamic import: jose, the routes, the broker and the runtime.
    expect(first.filter((f) => /node_modules\/jose\/|^lib\/(routes|broker|oauth|oidc)\/|^lib\/runtime\.ts$|^functions\/serve\.ts$/.test(f))).toEqual([]);
  });
});

describe('a cold start from the bundle', () => {
  const signing = JSON.stringify({ current: 's1', keys: generateSigningGenerationSync('s1') });
  const secrets = {
    'broker/keys': JSON.stringify({ current: 'k1', keys: { k1: Buffer.alloc(32, 7).toString('base64url') } }),
    'broker/signing-keys': signing,
    'broker/op': 'client-secret',
  };
  const config = JSON.stringify({
    publicUrl: 'https://auth.example.com',
    providers: { op: { issuer: 'https://op.example.com', clientId: 'c', clientSecret: { secretsManager: 'broker/op' } } },
    clients: { web: { type: 'web', redirectUris: ['https://app.example.com/'], allowedOrigins: ['https://app.example.com'], providers: ['op'] } },
    tokenEncryptionKeys: { secretsManager: 'broker/keys' },
    signingKeys: { secretsManager: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:broker/signing-keys' },
  });
  const event = {
    version: '2.0', routeKey: 'GET /jwks', rawPath: '/jwks', rawQueryString: '', headers: {},
    requestContext: { http: { method: 'GET', path: '/jwks' }, requestId: 'r1' }, isBase64Encoded: false,
  };

  /** Imports the refresh bundle in a fresh process as Lambda would, and answers `GET /jwks` with it. */
  const jwksFromBundle = (secretsUrl: string) => new Promise<{ status: number | null; stdout: string }>((resolve) => {
    const file = path.join(dir, 'refresh', 'index.mjs');
    const child = spawn(process.execPath, ['--input-type=module', '-e', `const { handler } = await import(${JSON.stringify(file)}); console.log(JSON.stringify(await handler(${JSON.stringify(event)})));`], {
      env: {
        PATH: process.env['PATH'], BROKER_CONFIG_JSON: config, AWS_LAMBDA_FUNCTION_NAME: 'refresh', AWS_REGION: 'us-east-1', DYNAMODB_TABLE: 't',
        AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsUrl, AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.on('close', (status) => resolve({ status, stdout }));
  });
  const keyIds = (stdout: string) => {
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as { statusCode: number; body: string };
    expect(result.statusCode).toBe(200);
    return (JSON.parse(result.body) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
  };
  const published = Object.keys((JSON.parse(signing) as { keys: Record<string, unknown> }).keys).sort();

  it('reads the key ring, the signing keys (a partial ARN) and the client secret in one BatchGetSecretValue, and serves', async () => {
    const sm = await secretsManagerStandIn(secrets);
    try {
      const out = await jwksFromBundle(sm.url);
      expect(out.status).toBe(0);
      expect(keyIds(out.stdout)).toEqual(published);
      expect(sm.calls).toEqual([{ operation: 'BatchGetSecretValue', ids: ['broker/keys', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:broker/signing-keys', 'broker/op'] }]);
    } finally {
      await sm.close();
    }
  });

  it('without the batch permission, reads them one by one, says so once, and serves', async () => {
    const sm = await secretsManagerStandIn(secrets, { denyBatch: true });
    try {
      const out = await jwksFromBundle(sm.url);
      expect(out.status).toBe(0);
      expect(keyIds(out.stdout)).toEqual(published);
      expect(sm.calls.map((c) => c.operation)).toEqual(['BatchGetSecretValue', 'GetSecretValue', 'GetSecretValue', 'GetSecretValue']);
      const warnings = out.stdout.split('\n').filter((line) => line.includes('secrets.batch_failed'));
      expect(warnings).toHaveLength(1);
      expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn', event: 'secrets.batch_failed', error: 'AccessDeniedException' });
    } finally {
      await sm.close();
    }
  });
});
