/**
 * The broker configuration at synth time: the same JSON document the runtime reads (CONTRACT.md,
 * Configuration), found by path, validated with the runtime's own validator in Lambda mode, so a
 * document the functions would refuse at cold start fails `cdk synth` instead, naming every bad
 * field by its path.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, parseConfig, parseConfigText, type Config } from '../lib/config/parse.js';
import type { SecretRef } from '../lib/config/schema.js';
import { withCreatedKeySecrets } from '../lib/config/stack-document.js';

/** A mistake in what the operator gave `cdk synth`/`deploy` (configuration path, context): shown without a stack trace. */
export class OperatorInputError extends Error {
  override readonly name = 'OperatorInputError';
}

/** The committed example document: CI and the tests synthesize it, always by naming it. */
export const EXAMPLE_CONFIG_PATH = fileURLToPath(new URL('./example.config.json', import.meta.url));

/** The CDK context key naming the document: `npx cdk synth -c brokerConfig=path/to/config.json`. */
export const CONFIG_CONTEXT_KEY = 'brokerConfig';

/** The environment variable naming the document when the context key is not set. */
export const CONFIG_ENV_VAR = 'BROKER_CONFIG';

/** Why `cdk synth` and `cdk deploy` refuse to run without a configuration. */
export const NO_CONFIG_MESSAGE = `no broker configuration given: pass -c ${CONFIG_CONTEXT_KEY}=path/to/config.json `
  + `(or set ${CONFIG_ENV_VAR}=path/to/config.json). Nothing is deployed without one; to try the synth, `
  + `name the example: -c ${CONFIG_CONTEXT_KEY}=infra/example.config.json (docs/deploy.md, section 5)`;

/**
 * The directory the operator ran the command in: npm (`npm run synth`, `npm --prefix <broker> run
 * ...`, `npx`) sets `INIT_CWD` to it and then runs the script in the broker checkout; the CDK CLI
 * runs the app in the directory of `cdk.json` and passes no such variable, so without npm the
 * working directory is all there is (and `cdk` itself only runs in the checkout).
 */
export function invokingDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const init = env['INIT_CWD'];
  return init && path.isAbsolute(init) ? init : process.cwd();
}

/**
 * Where the configuration comes from: context `brokerConfig`, else env `BROKER_CONFIG`; neither is
 * an error (never a silent default). A relative path is resolved against the invoking directory.
 */
export function resolveConfigPath(contextValue: unknown, env: NodeJS.ProcessEnv = process.env): string {
  const given = typeof contextValue === 'string' && contextValue !== '' ? contextValue : env[CONFIG_ENV_VAR];
  if (!given) throw new OperatorInputError(NO_CONFIG_MESSAGE);
  return path.resolve(invokingDirectory(env), given);
}

export interface LoadConfigOptions {
  /**
   * The name of the key ring secret the stack creates, put into the document as
   * `tokenEncryptionKeys: {"secretsManager": <name>}` when the document leaves the key ring out.
   *
   * @default - no injection: a document without `tokenEncryptionKeys` is invalid in Lambda
   */
  readonly createdKeyRingSecretName?: string;
  /**
   * The name of the ID-token signing key secret the stack creates, put into the document as
   * `signingKeys: {"secretsManager": <name>}` when the document leaves the signing keys out.
   *
   * @default - no injection: a document without `signingKeys` is invalid in Lambda
   */
  readonly createdSigningKeysSecretName?: string;
}

export interface BrokerConfigDocument {
  /** Absolute path of the document read. */
  readonly path: string;
  /** The document as the functions will read it (with the injected key ring reference, if any). */
  readonly document: Readonly<Record<string, unknown>>;
  /** The document as the runtime validator parsed it. */
  readonly config: Config;
  /** True when the document left `tokenEncryptionKeys` out and the stack's key ring was injected. */
  readonly usesCreatedKeyRing: boolean;
  /** True when the document left `signingKeys` out and the stack's signing keys were injected. */
  readonly usesCreatedSigningKeys: boolean;
}

/**
 * Reads and validates the configuration document. Throws `ConfigError` (its message starts with
 * the file's path and names every bad field) for a document the Lambda runtime would refuse.
 */
export function loadBrokerConfig(file: string, options: LoadConfigOptions = {}): BrokerConfigDocument {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (cause as Error).message;
    throw new OperatorInputError(`cannot read the broker configuration ${file}: ${reason} (a relative -c ${CONFIG_CONTEXT_KEY} or ${CONFIG_ENV_VAR} path is resolved against the directory the command was run in)`, { cause });
  }
  try {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      parseConfigText(text, { runtime: 'lambda' }); // throws the validator's own "is not valid JSON" issue
    }
    const { document, usesCreatedKeyRing, usesCreatedSigningKeys } = withCreatedKeySecrets(json, {
      keyRing: options.createdKeyRingSecretName,
      signingKeys: options.createdSigningKeysSecretName,
    });
    const config = parseConfig(document, { runtime: 'lambda' });
    return { path: file, document: document as Record<string, unknown>, config, usesCreatedKeyRing, usesCreatedSigningKeys };
  } catch (err) {
    if (err instanceof ConfigError) err.message = `${file}: ${err.message}`;
    throw err;
  }
}

/** A Secrets Manager reference: its id (name or ARN) and where in the document it is used. */
export interface SecretsManagerReference {
  readonly secretId: string;
  readonly usedBy: readonly string[];
}

/**
 * Every client secret the providers reference, one entry per Secrets Manager id (two providers may
 * share one secret with different `jsonKey`s). The key rings are not among them.
 */
export function clientSecretReferences(config: Config): SecretsManagerReference[] {
  const byId = new Map<string, string[]>();
  for (const provider of Object.values(config.providers)) {
    const id = secretsManagerId(provider.clientSecret);
    if (id === undefined) continue;
    byId.set(id, [...(byId.get(id) ?? []), `providers.${provider.name}.clientSecret`]);
  }
  return [...byId].map(([secretId, usedBy]) => ({ secretId, usedBy }));
}

export function secretsManagerId(ref: SecretRef | undefined): string | undefined {
  return ref && 'secretsManager' in ref ? ref.secretsManager : undefined;
}
