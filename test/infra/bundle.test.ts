/**
 * The bundles as they deploy (infra/bundle.ts, the CDK stack's code assets and `npm run build`):
 * a function that reads secrets starts reading them before the rest of its code loads (the ids
 * the stack writes into `BROKER_SECRET_IDS`), and its cold start reads them all in one
 * `BatchGetSecretValue`, run here from the bundle itself against a Secrets Manager stand-in.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Metafile } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRET_IDS_ENV } from '../../functions/handler.js';
import { FUNCTION_NAMES, functionSpec, secretsReadBy, type FunctionName } from '../../functions/manifest.js';
import { parseConfig, PREPARED_CONFIG_ENV } from '../../lib/config/parse.js';
import { BUNDLED_CONFIG_FILE, bundleFunction, loadedWithEntry, PREPARED_CONFIG_FILE, writeConfigFiles } from '../../infra/bundle.js';
import { generateSigningGenerationSync } from '../../lib/oidc/signing-key-ring.js';
import { invokeBundle } from '../support/bundle-process.js';
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
    // Two files: nothing shared, so no third file (loaded first) for what both would import.
    expect(code).toHaveLength(2);
    expect(loadedWithEntry(meta).map((f) => path.basename(f))).toEqual(['index.mjs']);
    const dynamic = entry.imports.filter((i) => i.kind === 'dynamic-import').map((i) => path.basename(i.path));
    expect(dynamic).toHaveLength(1);
    expect(dynamic[0]).toMatch(/^main-[A-Z0-9]+\.mjs$/);
    // What starts the reads, and nothing else: the Secrets Manager client, the AWS JSON client and
    // SigV4, the DynamoDB client it hands on. The configuration's parser, jose, the routes, the
    // broker and the runtime wait for the dynamic import.
    expect(loadedFirst(meta).sort()).toEqual([
      'functions/handler.ts', `functions/${name}/index.ts`, 'lib/aws/json-client.ts', 'lib/aws/sigv4.ts', 'lib/secrets/secrets-manager.ts', 'lib/store/dynamo-client.ts',
    ].sort());
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

  /** What the stack writes into the refresh function's `BROKER_SECRET_IDS` for `config`. */
  const readFirst = JSON.stringify(secretsReadBy(functionSpec('refresh').secrets, parseConfig(JSON.parse(config), { runtime: 'lambda' })));

  /** The configuration as the stack ships it: the document and its prepared form, as files. */
  const shipped = () => {
    const configDir = path.join(dir, 'config');
    mkdirSync(configDir, { recursive: true });
    writeConfigFiles(configDir, config);
    return { BROKER_CONFIG: path.join(configDir, BUNDLED_CONFIG_FILE), [PREPARED_CONFIG_ENV]: path.join(configDir, PREPARED_CONFIG_FILE) };
  };

  /**
   * Imports the refresh bundle in a fresh process as Lambda would, and answers `GET /jwks` with
   * it; its `BROKER_SECRET_IDS` is the stack's unless `secretIds` says otherwise (null: unset),
   * its configuration as the stack ships it unless `configEnv` says otherwise.
   */
  const jwksFromBundle = (secretsUrl: string, secretIds: string | null = readFirst, configEnv: NodeJS.ProcessEnv = shipped()) =>
    invokeBundle(path.join(dir, 'refresh', 'index.mjs'), event, {
      PATH: process.env['PATH'], ...configEnv, AWS_LAMBDA_FUNCTION_NAME: 'refresh', AWS_REGION: 'us-east-1', DYNAMODB_TABLE: 't',
      AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsUrl, AWS_ACCESS_KEY_ID: 'a', AWS_SECRET_ACCESS_KEY: 'b',
      ...(secretIds === null ? {} : { [SECRET_IDS_ENV]: secretIds }),
    });
  const keyIds = (stdout: string) => {
    const result = JSON.parse(stdout.trim().split('\n').pop()!) as { statusCode: number; body: string };
    expect(result.statusCode).toBe(200);
    return (JSON.parse(result.body) as { keys: { kid: string }[] }).keys.map((k) => k.kid).sort();
  };
  const published = Object.keys((JSON.parse(signing) as { keys: Record<string, unknown> }).keys).sort();

  const allIds = ['broker/keys', 'arn:aws:secretsmanager:us-east-1:123456789012:secret:broker/signing-keys', 'broker/op'];

  /** A cold start of the refresh bundle against a stand-in made with `options`: its output, having served `/jwks`, and the stand-in's calls. */
  const coldStart = async (secretIds?: string | null, options?: Parameters<typeof secretsManagerStandIn>[1], configEnv?: NodeJS.ProcessEnv) => {
    const sm = await secretsManagerStandIn(secrets, options);
    try {
      const out = await jwksFromBundle(sm.url, secretIds, configEnv);
      expect(out.status).toBe(0);
      expect(keyIds(out.stdout)).toEqual(published);
      return { stdout: out.stdout, calls: sm.calls };
    } finally {
      await sm.close();
    }
  };

  it('reads the key ring, the signing keys (a partial ARN) and the client secret in one BatchGetSecretValue, and serves', async () => {
    expect(JSON.parse(readFirst)).toEqual(allIds);
    expect((await coldStart()).calls).toEqual([{ operation: 'BatchGetSecretValue', ids: allIds }]);
  });

  it('without BROKER_SECRET_IDS, reads what the configuration names, still in one call, once it is parsed', async () => {
    expect((await coldStart(null)).calls).toEqual([{ operation: 'BatchGetSecretValue', ids: allIds }]);
  });

  it('with the configuration alone (no prepared form), parses it and serves the same', async () => {
    expect((await coldStart(undefined, undefined, { BROKER_CONFIG_JSON: config })).calls).toEqual([{ operation: 'BatchGetSecretValue', ids: allIds }]);
  });

  it('with BROKER_SECRET_IDS out of step with the configuration, serves with the configuration\'s secrets: what the environment missed is read after', async () => {
    expect((await coldStart(JSON.stringify(['broker/keys', 'broker/gone']))).calls).toEqual([
      { operation: 'BatchGetSecretValue', ids: ['broker/keys', 'broker/gone'] },
      { operation: 'BatchGetSecretValue', ids: allIds.slice(1) },
    ]);
  });

  it('without the batch permission, reads them one by one, says so once, and serves', async () => {
    const { stdout, calls } = await coldStart(undefined, { denyBatch: true });
    expect(calls.map((c) => c.operation)).toEqual(['BatchGetSecretValue', 'GetSecretValue', 'GetSecretValue', 'GetSecretValue']);
    const warnings = stdout.split('\n').filter((line) => line.includes('secrets.batch_failed'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 'warn', event: 'secrets.batch_failed', error: 'AccessDeniedException' });
  });
});
