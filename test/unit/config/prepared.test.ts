/**
 * The configuration parsed ahead of time (lib/config/prepared.ts) and how a cold start takes it
 * (`configFromEnv`): the same configuration the parser returns, taken only for the very text and
 * runtime it was parsed from, and the text parsed in every other case.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { writeConfigFiles, BUNDLED_CONFIG_FILE, PREPARED_CONFIG_FILE } from '../../../infra/bundle.js';
import { ConfigError, configFromEnv, parseConfigText, PREPARED_CONFIG_ENV, type Config } from '../../../lib/config/parse.js';
import { prepareConfig, preparedConfig } from '../../../lib/config/prepared.js';
import { minimalConfigDoc } from '../fixtures.js';

/** A document valid in AWS Lambda: secrets from Secrets Manager, both rings, an API of the proxy. */
function lambdaDocument(): string {
  const doc = minimalConfigDoc();
  doc.providers['p']!['clientSecret'] = { secretsManager: 'broker/p', jsonKey: 'secret' };
  doc['tokenEncryptionKeys'] = { secretsManager: 'broker/keys' };
  doc['signingKeys'] = { secretsManager: 'broker/signing-keys' };
  doc['apis'] = { videos: { url: 'https://api.example.com/v1', provider: 'p' } };
  doc.clients['web']!['apis'] = ['videos'];
  doc.clients['web']!['tokenDelivery'] = 'proxy';
  doc.clients['web']!['allowedOrigins'] = ['https://app.example.com', 'https://admin.example.com'];
  return JSON.stringify(doc, null, 2);
}

/** The paths of every object or array in `value` that is not frozen. */
function unfrozen(value: unknown, at = '$'): string[] {
  if (!value || typeof value !== 'object' || value instanceof Set) return [];
  return [...(Object.isFrozen(value) ? [] : [at]), ...Object.entries(value).flatMap(([k, v]) => unfrozen(v, `${at}.${k}`))];
}

const examples = readdirSync('examples/providers').filter((f) => f.endsWith('.json')).map((f) => path.join('examples/providers', f));

describe('a prepared configuration', () => {
  const cases: Array<[string, string, 'lambda' | 'local']> = [
    ['a Lambda document', lambdaDocument(), 'lambda'],
    ...examples.map((file): [string, string, 'local'] => [file, readFileSync(file, 'utf8'), 'local']),
  ];

  it.each(cases)('%s: is the configuration the parser returns, frozen as it is', (_name, text, runtime) => {
    const parsed = parseConfigText(text, { runtime });
    const taken = preparedConfig(prepareConfig(text, parsed, runtime), text, runtime);
    expect(taken).toBeDefined();
    expect(isDeepStrictEqual(taken, parsed)).toBe(true);
    expect(taken!.allowedOrigins).toBeInstanceOf(Set);
    // Frozen all the way down, both of them.
    expect(unfrozen(parsed)).toEqual([]);
    expect(unfrozen(taken)).toEqual([]);
  });

  it('a document that has lost its shape, or is nested past what a start can freeze, is parsed instead', () => {
    const text = lambdaDocument();
    const document = JSON.parse(prepareConfig(text, parseConfigText(text, { runtime: 'lambda' }), 'lambda')) as { config: Record<string, unknown> };
    for (const field of ['providers', 'clients', 'ttl', 'storage', 'apis']) {
      expect(preparedConfig(JSON.stringify({ ...document, config: { ...document.config, [field]: undefined } }), text, 'lambda')).toBeUndefined();
    }
    const deep = `${'{"x":'.repeat(50_000)}{}${'}'.repeat(50_000)}`;
    const nested = JSON.stringify({ ...document, config: { ...document.config, extra: 0 } }).replace('"extra":0', `"extra":${deep}`);
    expect(preparedConfig(nested, text, 'lambda')).toBeUndefined();
  });

  it('is taken only for the very text it was parsed from, for the same runtime, in its own format', () => {
    const text = lambdaDocument();
    const prepared = prepareConfig(text, parseConfigText(text, { runtime: 'lambda' }), 'lambda');
    expect(preparedConfig(prepared, text, 'lambda')).toBeDefined();
    // One character more: an operator's edit, even a blank.
    expect(preparedConfig(prepared, `${text} `, 'lambda')).toBeUndefined();
    expect(preparedConfig(prepared, text, 'local')).toBeUndefined();
    // An earlier format (before `storage`) or a later one.
    expect(preparedConfig(prepared.replace('prepared-config/2', 'prepared-config/1'), text, 'lambda')).toBeUndefined();
    expect(preparedConfig(prepared.replace('prepared-config/2', 'prepared-config/3'), text, 'lambda')).toBeUndefined();
    expect(preparedConfig('not json', text, 'lambda')).toBeUndefined();
    expect(preparedConfig('null', text, 'lambda')).toBeUndefined();
    expect(preparedConfig(JSON.stringify({ ...JSON.parse(prepared), config: null }), text, 'lambda')).toBeUndefined();
  });
});

describe('configFromEnv, as a cold start reads the files the stack writes', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });
  const asset = (text: string) => {
    const dir = mkdtempSync(path.join(tmpdir(), 'broker-config-'));
    dirs.push(dir);
    writeConfigFiles(dir, text);
    return { dir, env: { AWS_LAMBDA_FUNCTION_NAME: 'refresh', BROKER_CONFIG: path.join(dir, BUNDLED_CONFIG_FILE), [PREPARED_CONFIG_ENV]: path.join(dir, PREPARED_CONFIG_FILE) } };
  };
  /** The prepared file made to say something the document does not: which of the two a start takes shows. */
  const marked = (dir: string) => {
    const file = path.join(dir, PREPARED_CONFIG_FILE);
    const prepared = JSON.parse(readFileSync(file, 'utf8')) as { config: { ttl: Record<string, number> } };
    prepared.config.ttl['codeSeconds'] = 17;
    writeFileSync(file, JSON.stringify(prepared));
  };
  const codeSeconds = (config: Config) => config.ttl.codeSeconds;

  it('takes the prepared configuration of the same document, without parsing it', () => {
    const { dir, env } = asset(lambdaDocument());
    expect(isDeepStrictEqual(configFromEnv(env), parseConfigText(lambdaDocument(), { runtime: 'lambda' }))).toBe(true);
    marked(dir);
    expect(codeSeconds(configFromEnv(env))).toBe(17);
  });

  it('parses a document edited after the stack wrote it, and names its errors', () => {
    const { dir, env } = asset(lambdaDocument());
    marked(dir);
    const edited = JSON.parse(lambdaDocument()) as { ttl?: Record<string, number> };
    edited.ttl = { codeSeconds: 30 };
    writeFileSync(env.BROKER_CONFIG, JSON.stringify(edited));
    expect(codeSeconds(configFromEnv(env))).toBe(30);
    writeFileSync(env.BROKER_CONFIG, JSON.stringify({ ...edited, ttl: { codeSeconds: 6000 } }));
    expect(() => configFromEnv(env)).toThrow(ConfigError);
  });

  it('parses the document when the prepared file is missing or not named, and outside Lambda', () => {
    const { dir, env } = asset(lambdaDocument());
    marked(dir);
    const parsed = (e: NodeJS.ProcessEnv) => codeSeconds(configFromEnv(e));
    expect(parsed({ ...env, [PREPARED_CONFIG_ENV]: undefined })).toBe(60);
    expect(parsed({ ...env, [PREPARED_CONFIG_ENV]: path.join(dir, 'gone.json') })).toBe(60);
    // Prepared for Lambda: the local runner parses for itself.
    expect(parsed({ ...env, AWS_LAMBDA_FUNCTION_NAME: undefined })).toBe(60);
  });

  it('the stack cannot write the files of a document that is not valid in Lambda', () => {
    const doc = JSON.parse(lambdaDocument()) as Record<string, unknown>;
    delete doc['signingKeys'];
    expect(() => asset(JSON.stringify(doc))).toThrow(ConfigError);
  });
});
