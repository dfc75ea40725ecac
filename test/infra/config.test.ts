/**
 * The configuration at synth time, the context and the secret imports:
 * everything that needs no bundling.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { describe, expect, it } from 'vitest';
import { createBrokerApp, stackPropsFromContext } from '../../infra/broker-app.js';
import { importSecret } from '../../infra/broker-stack.js';
import { clientSecretReferences, EXAMPLE_CONFIG_PATH, invokingDirectory, loadBrokerConfig, NO_CONFIG_MESSAGE, OperatorInputError, resolveConfigPath } from '../../infra/config.js';
import { FUNCTION_TIMEOUT, PROJECT_ROOT } from '../../infra/constructs/broker-function.js';
import { FINAL_WRITE_MS, LEASE_SECONDS, UPSTREAM_BUDGET_MS, WAIT_MS } from '../../lib/broker/refresh.js';
import { ConfigError } from '../../lib/config/parse.js';
import { cdkJsonContext, NO_BUNDLING } from './support.js';

/** The stack's own secrets, as BrokerStack passes them. */
const CREATED = { createdKeyRingSecretName: 'S/token-keys', createdSigningKeysSecretName: 'S/signing-keys' };
const dir = mkdtempSync(path.join(tmpdir(), 'broker-infra-config-'));
const example = JSON.parse(readFileSync(EXAMPLE_CONFIG_PATH, 'utf8')) as Record<string, unknown>;

function writeConfig(name: string, document: unknown): string {
  const file = path.join(dir, name);
  writeFileSync(file, typeof document === 'string' ? document : JSON.stringify(document));
  return file;
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('config path', () => {
  it('takes the context first, then BROKER_CONFIG', () => {
    expect(resolveConfigPath('/etc/broker.json', { BROKER_CONFIG: '/env.json' })).toBe('/etc/broker.json');
    expect(resolveConfigPath(undefined, { BROKER_CONFIG: '/env.json' })).toBe('/env.json');
  });

  it('(issue 13) refuses to go on without either, naming both and the example: never a silent default', () => {
    for (const given of [undefined, '']) {
      expect(() => resolveConfigPath(given, {})).toThrow(OperatorInputError);
      expect(() => resolveConfigPath(given, { BROKER_CONFIG: '' })).toThrow(NO_CONFIG_MESSAGE);
    }
    expect(NO_CONFIG_MESSAGE).toMatch(/-c brokerConfig=path\/to\/config\.json/);
    expect(NO_CONFIG_MESSAGE).toMatch(/BROKER_CONFIG=path\/to\/config\.json/);
    expect(NO_CONFIG_MESSAGE).toContain('infra/example.config.json');
  });

  it('(issue 13) refuses the synth itself without a configuration, before anything is built', () => {
    expect(() => createBrokerApp({ context: { ...cdkJsonContext(), ...NO_BUNDLING } }, {})).toThrow(NO_CONFIG_MESSAGE);
  });

  it('(issue 13) resolves a relative path against the directory npm was invoked in (INIT_CWD), else the working directory', () => {
    expect(resolveConfigPath('config/prod.json', { INIT_CWD: '/home/ops/infra' })).toBe('/home/ops/infra/config/prod.json');
    expect(resolveConfigPath(undefined, { INIT_CWD: '/home/ops/infra', BROKER_CONFIG: 'config/prod.json' })).toBe('/home/ops/infra/config/prod.json');
    expect(resolveConfigPath('/etc/prod.json', { INIT_CWD: '/home/ops/infra' })).toBe('/etc/prod.json');
    expect(resolveConfigPath('configs/prod.json', {})).toBe(path.resolve('configs/prod.json'));
    expect(invokingDirectory({ INIT_CWD: 'relative' })).toBe(process.cwd());
  });

  it('(issue 13) a missing file is named, with where a relative path was looked for, and no stack trace is needed to read it', () => {
    const missing = resolveConfigPath('config/prod.json', { INIT_CWD: dir });
    expect(() => loadBrokerConfig(missing, CREATED)).toThrow(OperatorInputError);
    expect(() => loadBrokerConfig(missing, CREATED)).toThrow(`cannot read the broker configuration ${path.join(dir, 'config/prod.json')}: no such file`);
  });
});

describe('loadBrokerConfig: the runtime validator, in Lambda mode', () => {
  it('rejects a document that is not JSON, with the validator\'s own issue', () => {
    const file = writeConfig('not-json.json', '{"publicUrl": ');
    const err = configError(() => loadBrokerConfig(file, CREATED));
    expect(err.issues).toEqual([{ path: '', message: expect.stringMatching(/^is not valid JSON/) }]);
    expect(err.message.startsWith(`${file}: invalid broker configuration`)).toBe(true);
  });

  it('names every bad field by its path, and the file', () => {
    const file = writeConfig('bad.json', {
      ...example,
      publicUrl: 'http://auth.example.com/path',
      providers: { okta: { issuer: 'http://idp.example.com', clientId: 'x', clientSecret: { env: 'OKTA_SECRET' } } },
      clients: { web: { type: 'web', redirectUris: ['http://app.example.com/'], providers: ['nope'] } },
    });
    const err = configError(() => loadBrokerConfig(file, CREATED));
    expect(err.issues.map((i) => i.path).sort()).toEqual([
      'clients.web.providers.0',
      'clients.web.redirectUris.0',
      'providers.okta.clientSecret',
      'providers.okta.issuer',
      'publicUrl',
      'publicUrl',
    ]);
    expect(err.message).toContain(file);
    for (const issue of err.issues) expect(err.message).toContain(`- ${issue.path}: ${issue.message}`);
    expect(err.issues.find((i) => i.path === 'providers.okta.clientSecret')?.message).toMatch(/Secrets Manager/);
  });

  it('reports unknown fields (shape errors) with their paths too', () => {
    const file = writeConfig('unknown-field.json', { ...example, tokenEncryptionKey: { secretsManager: 'typo' } });
    const err = configError(() => loadBrokerConfig(file, CREATED));
    expect(err.issues.map((i) => i.path)).toEqual(['tokenEncryptionKey']);
  });

  it('requires a key ring and (v2) signing keys in Lambda when the stack does not create them', () => {
    const err = configError(() => loadBrokerConfig(EXAMPLE_CONFIG_PATH));
    expect(err.issues).toEqual([
      { path: 'tokenEncryptionKeys', message: 'is required in AWS Lambda' },
      { path: 'signingKeys', message: 'is required in AWS Lambda' },
    ]);
  });

  it('fails on a file that does not exist, naming it', () => {
    const missing = path.join(dir, 'missing.json');
    expect(() => loadBrokerConfig(missing)).toThrow(`cannot read the broker configuration ${missing}`);
  });

  it('injects the created key ring and signing keys when the document leaves them out', () => {
    const loaded = loadBrokerConfig(EXAMPLE_CONFIG_PATH, { createdKeyRingSecretName: 'OAuthBroker/token-keys', createdSigningKeysSecretName: 'OAuthBroker/signing-keys' });
    expect(loaded.usesCreatedKeyRing).toBe(true);
    expect(loaded.usesCreatedSigningKeys).toBe(true);
    expect(loaded.document['tokenEncryptionKeys']).toEqual({ secretsManager: 'OAuthBroker/token-keys' });
    expect(loaded.document['signingKeys']).toEqual({ secretsManager: 'OAuthBroker/signing-keys' });
    expect(loaded.config.tokenEncryptionKeys).toEqual({ secretsManager: 'OAuthBroker/token-keys' });
    expect(loaded.config.signingKeys).toEqual({ secretsManager: 'OAuthBroker/signing-keys' });
    expect(loaded.config.publicUrl).toBe('https://auth.example.com');
  });

  it('keeps a key ring and signing keys the document names', () => {
    const file = writeConfig('own-ring.json', { ...example, tokenEncryptionKeys: { secretsManager: 'team/broker-keys' }, signingKeys: { secretsManager: 'team/signing-keys' } });
    const loaded = loadBrokerConfig(file, { createdKeyRingSecretName: 'OAuthBroker/token-keys', createdSigningKeysSecretName: 'OAuthBroker/signing-keys' });
    expect(loaded.usesCreatedKeyRing).toBe(false);
    expect(loaded.usesCreatedSigningKeys).toBe(false);
    expect(loaded.config.tokenEncryptionKeys).toEqual({ secretsManager: 'team/broker-keys' });
    expect(loaded.config.signingKeys).toEqual({ secretsManager: 'team/signing-keys' });
  });

  it('lists each client secret once, however many providers share it', () => {
    const provider = (example['providers'] as Record<string, Record<string, unknown>>)['okta']!;
    const file = writeConfig('shared-secret.json', {
      ...example,
      providers: {
        okta: provider,
        okta2: { ...provider, clientSecret: { secretsManager: 'oauth-broker/okta', jsonKey: 'other' } },
        pub: { ...provider, clientAuth: 'none', clientSecret: undefined },
      },
    });
    const { config } = loadBrokerConfig(file, CREATED);
    expect(clientSecretReferences(config)).toEqual([
      { secretId: 'oauth-broker/okta', usedBy: ['providers.okta.clientSecret', 'providers.okta2.clientSecret'] },
    ]);
  });
});

describe('a bad document fails the synth', () => {
  it('throws the ConfigError with the field paths before anything is bundled', () => {
    const file = writeConfig('bad-synth.json', { ...example, publicUrl: 'ftp://auth.example.com' });
    const err = configError(() => createBrokerApp({ context: { ...cdkJsonContext(), ...NO_BUNDLING, brokerConfig: file } }, {}));
    expect(err.issues.map((i) => i.path)).toEqual(['publicUrl']);
  });

  it('refuses a custom domain that is not the publicUrl host', () => {
    expect(() => createBrokerApp({
      context: { ...cdkJsonContext(), ...NO_BUNDLING, brokerConfig: EXAMPLE_CONFIG_PATH, domainName: 'login.example.org', certificateArn: 'arn:aws:acm:eu-west-1:123456789012:certificate/abc' },
    }, {})).toThrow('publicUrl (https://auth.example.com) must be https://login.example.org');
  });
});

describe('context', () => {
  const app = (context: Record<string, unknown>) => new App({ context: { brokerConfig: EXAMPLE_CONFIG_PATH, ...context } });

  it('reads numbers, the domain pair and the topic', () => {
    const props = stackPropsFromContext(app({
      brokerConfig: '/x/config.json', domainName: 'auth.example.com', certificateArn: 'arn:cert', alarmTopicArn: 'arn:topic',
      throttlingRateLimit: '10', throttlingBurstLimit: 20, memorySize: '1024', logRetentionDays: '90',
    }), {});
    expect(props).toMatchObject({
      configPath: '/x/config.json', customDomain: { domainName: 'auth.example.com', certificateArn: 'arn:cert' }, alarmTopicArn: 'arn:topic',
      throttlingRateLimit: 10, throttlingBurstLimit: 20, memorySize: 1024, logRetention: 90,
    });
  });

  it('rejects half a custom domain, bad numbers and retention periods CloudWatch does not offer', () => {
    expect(() => stackPropsFromContext(app({ domainName: 'auth.example.com' }), {})).toThrow('domainName and certificateArn go together');
    expect(() => stackPropsFromContext(app({ throttlingRateLimit: 'fast' }), {})).toThrow('throttlingRateLimit must be a positive number');
    // Whole numbers the services take, refused at synth rather than by CloudFormation mid-deploy.
    expect(() => stackPropsFromContext(app({ memorySize: '1000.5' }), {})).toThrow('memorySize must be a whole number from 128 to 10240');
    expect(() => stackPropsFromContext(app({ memorySize: '64' }), {})).toThrow('memorySize must be a whole number');
    expect(() => stackPropsFromContext(app({ throttlingBurstLimit: '2.5' }), {})).toThrow('throttlingBurstLimit must be a whole number');
    expect(() => stackPropsFromContext(app({ throttledRequestsThreshold: '0.5' }), {})).toThrow('throttledRequestsThreshold must be a whole number');
    expect(() => stackPropsFromContext(app({ logRetentionDays: '42' }), {})).toThrow('logRetentionDays');
    expect(() => stackPropsFromContext(app({ sessionIndexes: 'both' }), {})).toThrow('sessionIndexes must be "all" or "sub"');
  });

  it('(v2) sessionIndexes: all by default, sub for the first deploy of an upgrade', () => {
    expect(stackPropsFromContext(app({}), {}).sessionIndexes).toBeUndefined();
    expect(stackPropsFromContext(app({ sessionIndexes: 'sub' }), {}).sessionIndexes).toBe('sub');
  });
});

describe('cdk.json', () => {
  const cdkJson = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as Record<string, unknown> & { context: Record<string, unknown> };

  it('runs infra/app.ts with tsx and never reaches out (no notices, no telemetry)', () => {
    // (issue 13) Not through npx: npx would reset INIT_CWD, the directory a relative brokerConfig is resolved in.
    expect(cdkJson['app']).toBe('node --import tsx infra/app.ts');
    expect(cdkJson['notices']).toBe(false);
    expect(cdkJson.context['cli-telemetry']).toBe(false);
  });
});

describe('function timeout', () => {
  it('leaves room to wait out a whole lease and then refresh, and the lease outlasts its holder\'s work', () => {
    expect(FUNCTION_TIMEOUT.toMilliseconds()).toBeGreaterThan(WAIT_MS + UPSTREAM_BUDGET_MS + FINAL_WRITE_MS);
    expect(LEASE_SECONDS * 1000).toBeGreaterThan(UPSTREAM_BUDGET_MS + FINAL_WRITE_MS);
    expect(FUNCTION_TIMEOUT.toSeconds()).toBeLessThanOrEqual(Duration.seconds(29).toSeconds());
  });
});

describe('importSecret: the grant covers exactly the referenced secret', () => {
  const resources = (secretId: string) => {
    const stack = new Stack(new App({ context: cdkJsonContext() }), 'S', { env: { account: '123456789012', region: 'eu-west-1' } });
    const role = new iam.Role(stack, 'R', { assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com') });
    importSecret(stack, 'Secret', secretId).grantRead(role);
    const [policy] = Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'));
    const [statement] = policy!['Properties'].PolicyDocument.Statement as { Action: string[]; Resource: unknown }[];
    return statement!;
  };

  it('by name: name-?????? (Secrets Manager appends six characters)', () => {
    expect(resources('oauth-broker/okta')).toEqual({
      Effect: 'Allow',
      Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
      Resource: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:oauth-broker/okta-??????',
    });
  });

  it('by complete ARN: that ARN', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:oauth-broker/okta-AbC123';
    expect(resources(arn).Resource).toBe(arn);
  });

  it('by partial ARN: ARN-??????', () => {
    const arn = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:oauth-broker/okta';
    expect(resources(arn).Resource).toBe(`${arn}-??????`);
  });
});

describe('(issue 13) the app as cdk runs it (node --import tsx infra/app.ts, in the checkout)', () => {
  /** What the CDK CLI gives the app: its context and output directory (bundling off here), plus npm's INIT_CWD. */
  const runApp = (env: Record<string, string>, context: Record<string, unknown> = {}) => {
    const outdir = mkdtempSync(path.join(tmpdir(), 'broker-app-'));
    const result = spawnSync(process.execPath, ['--import', 'tsx', 'infra/app.ts'], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env: {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        CDK_OUTDIR: outdir,
        CDK_CONTEXT_JSON: JSON.stringify({ ...cdkJsonContext(), ...NO_BUNDLING, ...context }),
        ...env,
      },
    });
    return { ...result, outdir };
  };

  it('without a configuration: exits 1 with the message alone, no stack trace, and writes no template', () => {
    const { status, stderr, outdir } = runApp({ INIT_CWD: dir });
    expect(status).toBe(1);
    expect(stderr.trim()).toBe(NO_CONFIG_MESSAGE);
    expect(readdirSync(outdir).filter((f) => f.endsWith('.template.json'))).toEqual([]);
  });

  it('with a relative path from another directory (npm --prefix <broker> run synth): reads the operator\'s file', () => {
    writeConfig('prod.json', example);
    const { status, stderr, outdir } = runApp({ INIT_CWD: dir }, { brokerConfig: 'prod.json', stackName: 'Broker-prod' });
    expect(stderr).toBe('');
    expect(status).toBe(0);
    expect(readdirSync(outdir)).toContain('Broker-prod.template.json');
  }, 60_000);

  it('a bad document: exits 1 naming every bad field, no stack trace', () => {
    writeConfig('bad-app.json', { ...example, publicUrl: 'http://auth.example.com', extra: 1 });
    const { status, stderr } = runApp({ INIT_CWD: dir, BROKER_CONFIG: 'bad-app.json' });
    expect(status).toBe(1);
    expect(stderr.trim().split('\n')).toEqual([
      `${path.join(dir, 'bad-app.json')}: invalid broker configuration:`,
      '  - extra: is not a known field',
      '  - publicUrl: must be https (http only on loopback)',
    ]);
  }, 60_000);
});
