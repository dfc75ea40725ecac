/**
 * The broker in one stack: the configuration (validated at synth), the session table and its
 * key, the token key ring and the ID-token signing keys, one function per `functions/` folder with exactly the access its
 * entry point wires, the HTTP API, the alarms and the dashboard (all named after the stack).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CfnOutput, Stack, Stage, type StackProps } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { FUNCTION_NAMES, type FunctionName } from '../functions/routes.js';
import { clientSecretReferences, loadBrokerConfig, OperatorInputError, secretsManagerId, type BrokerConfigDocument } from './config.js';
import { METRICS_SERVICE_ENV } from '../lib/metrics-names.js';
import { BrokerAlarms } from './constructs/broker-alarms.js';
import { BrokerDashboard } from './constructs/broker-dashboard.js';
import { BrokerMetrics } from './constructs/broker-metrics.js';
import { BrokerApi } from './constructs/broker-api.js';
import { BrokerFunction, PROXY_FUNCTION_TIMEOUT } from './constructs/broker-function.js';
import { KeyRing } from './constructs/key-ring.js';
import { grantKeyViaService, SessionTable, type ItemAction, type SessionIndexes } from './constructs/session-table.js';

/**
 * What each function may do, mirroring what its entry point (`functions/<name>/index.ts`) wires:
 * `tableFromEnv` gives it the table, and exactly the item operations its routes perform;
 * `secretsManagerFetcher` gives it `GetSecretValue` on the token key ring and, with
 * `clientSecrets`, on the client secrets; `signingKeys` (the functions whose entry point reads
 * `runtime.signing`) adds the ID-token signing keys: `refresh` signs ID tokens and serves `/jwks`,
 * `logout` checks `/end-session` hints. `sessionLookup` is `Query` on the session indexes, and
 * `logoutTokens` writes and reads the replay records of back-channel logout, and nothing else.
 */
export const FUNCTION_ACCESS = {
  'start-login': { items: ['dynamodb:PutItem'], secrets: false, clientSecrets: false, signingKeys: false, sessionLookup: false, logoutTokens: false },
  callback: { items: ['dynamodb:DeleteItem', 'dynamodb:PutItem'], secrets: true, clientSecrets: true, signingKeys: false, sessionLookup: false, logoutTokens: false },
  refresh: { items: ['dynamodb:UpdateItem', 'dynamodb:GetItem', 'dynamodb:DeleteItem'], secrets: true, clientSecrets: true, signingKeys: true, sessionLookup: false, logoutTokens: false },
  logout: { items: ['dynamodb:DeleteItem'], secrets: true, clientSecrets: true, signingKeys: true, sessionLookup: false, logoutTokens: false },
  metadata: { items: [], secrets: false, clientSecrets: false, signingKeys: false, sessionLookup: false, logoutTokens: false },
  // The API proxy reads the session (GetItem), refreshes it as `refresh` does (UpdateItem; DeleteItem
  // for an ended one), marks a spent token (UpdateItem), and needs the client secrets and the key
  // ring for upstream refreshes; it mints no ID token.
  proxy: { items: ['dynamodb:GetItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem'], secrets: true, clientSecrets: true, signingKeys: false, sessionLookup: false, logoutTokens: false },
  'backchannel-logout': { items: ['dynamodb:DeleteItem'], secrets: true, clientSecrets: false, signingKeys: false, sessionLookup: true, logoutTokens: true },
} as const satisfies Record<FunctionName, FunctionAccess>;

export interface FunctionAccess {
  readonly items: readonly ItemAction[];
  readonly secrets: boolean;
  readonly clientSecrets: boolean;
  readonly signingKeys: boolean;
  readonly sessionLookup: boolean;
  readonly logoutTokens: boolean;
}

export interface BrokerStackProps extends StackProps {
  /** Path of the configuration document (CONTRACT.md, Configuration). */
  readonly configPath: string;
  /**
   * A custom domain: its name (the host of `publicUrl`) and an ACM certificate ARN in this region.
   *
   * @default - no custom domain
   */
  readonly customDomain?: { readonly domainName: string; readonly certificateArn: string };
  /**
   * An SNS topic ARN the alarms notify.
   *
   * @default - alarms without actions
   */
  readonly alarmTopicArn?: string;
  /** @default 50 requests per second */
  readonly throttlingRateLimit?: number;
  /** @default 100 requests */
  readonly throttlingBurstLimit?: number;
  /** @default 512 MB */
  readonly memorySize?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The session indexes: `'sub'` only for the first of the two deploys that add them to a table
   * created before back-channel logout (docs/deploy.md).
   *
   * @default 'all'
   */
  readonly sessionIndexes?: SessionIndexes;
  /**
   * Redeploy onto what a deleted stack kept (docs/deploy.md, "Redeploy after destroy"): the ARN of
   * its KMS key, which encrypts the kept table and key secrets. The functions get `kms:Decrypt`
   * on it through Secrets Manager (to read the kept key secrets the configuration names) and the
   * key use DynamoDB needs; a new table is encrypted with it too.
   *
   * @default - a new key
   */
  readonly existingKeyArn?: string;
  /**
   * The kept table's name (the deleted stack's `TableName` output): the functions use it instead
   * of a new table. Needs `existingKeyArn`.
   *
   * @default - a new table
   */
  readonly existingTableName?: string;
  /**
   * Reserved concurrency per function (docs/deploy.md, context `reservedConcurrency`).
   *
   * @default - none reserved
   */
  readonly reservedConcurrency?: Readonly<Partial<Record<FunctionName, number>>>;
}

export class BrokerStack extends Stack {
  readonly brokerConfig: BrokerConfigDocument;
  readonly sessions: SessionTable;
  /** The key ring this stack created; undefined when the configuration names its own. */
  readonly keyRing: KeyRing | undefined;
  /** The ID-token signing keys this stack created; undefined when the configuration names its own. */
  readonly signingKeys: KeyRing | undefined;
  readonly functions: Readonly<Record<FunctionName, BrokerFunction>>;
  readonly api: BrokerApi;
  readonly alarms: BrokerAlarms;
  readonly dashboard: BrokerDashboard;

  constructor(scope: Construct, id: string, props: BrokerStackProps) {
    super(scope, id, props);

    // First: a document the functions would refuse fails the synth here, naming every bad field.
    const keyRingSecretName = `${this.stackName}/token-keys`;
    const signingKeysSecretName = `${this.stackName}/signing-keys`;
    this.brokerConfig = loadBrokerConfig(props.configPath, { createdKeyRingSecretName: keyRingSecretName, createdSigningKeysSecretName: signingKeysSecretName });
    const config = this.brokerConfig.config;
    if (props.customDomain && new URL(config.publicUrl).host !== props.customDomain.domainName) {
      throw new OperatorInputError(`${props.configPath}: publicUrl (${config.publicUrl}) must be https://${props.customDomain.domainName}, the custom domain`);
    }
    // The document as the functions read it, inside every code asset (no 4 KB environment limit).
    const configFile = path.join(Stage.of(this)!.outdir, `${this.artifactId}.broker.config.json`);
    mkdirSync(path.dirname(configFile), { recursive: true });
    writeFileSync(configFile, JSON.stringify(this.brokerConfig.document, null, 2) + '\n');

    const keptKey = props.existingKeyArn ? kms.Key.fromKeyArn(this, 'KeptKey', props.existingKeyArn) : undefined;
    if (keptKey && (this.brokerConfig.usesCreatedKeyRing || this.brokerConfig.usesCreatedSigningKeys)) {
      throw new OperatorInputError(`${props.configPath}: with existingKeyArn, name the kept key secrets in the configuration: "tokenEncryptionKeys": {"secretsManager": "${keyRingSecretName}"} and "signingKeys": {"secretsManager": "${signingKeysSecretName}"} (docs/deploy.md, "Redeploy after destroy")`);
    }
    this.sessions = new SessionTable(this, 'Sessions', { sessionIndexes: props.sessionIndexes, encryptionKey: keptKey, existingTableName: props.existingTableName });
    this.keyRing = this.brokerConfig.usesCreatedKeyRing
      ? new KeyRing(this, 'KeyRing', { secretName: keyRingSecretName, encryptionKey: this.sessions.encryptionKey, logRetention: props.logRetention })
      : undefined;
    const keyRingSecret = this.keyRing?.secret ?? importSecret(this, 'ConfiguredKeyRing', secretsManagerId(config.tokenEncryptionKeys)!);
    this.signingKeys = this.brokerConfig.usesCreatedSigningKeys
      ? new KeyRing(this, 'SigningKeys', { kind: 'signing', secretName: signingKeysSecretName, encryptionKey: this.sessions.encryptionKey, logRetention: props.logRetention })
      : undefined;
    const signingKeysSecret = this.signingKeys?.secret ?? importSecret(this, 'ConfiguredSigningKeys', secretsManagerId(config.signingKeys)!);
    const clientSecrets = clientSecretReferences(config).map((ref, i) => importSecret(this, `ClientSecret${i}`, ref.secretId));

    const functions = {} as Record<FunctionName, BrokerFunction>;
    for (const name of FUNCTION_NAMES) {
      const access: FunctionAccess = FUNCTION_ACCESS[name];
      const fn = new BrokerFunction(this, `Fn-${name}`, {
        name,
        configFile,
        ...(access.items.length > 0 ? { tableName: this.sessions.table.tableName } : {}),
        ...(name === 'proxy' ? { timeout: PROXY_FUNCTION_TIMEOUT } : {}),
        memorySize: props.memorySize,
        logRetention: props.logRetention,
        reservedConcurrentExecutions: props.reservedConcurrency?.[name],
      });
      // The metrics' Service dimension: this stack's own series, alarms and dashboard.
      fn.function.addEnvironment(METRICS_SERVICE_ENV, this.stackName);
      this.sessions.grantAccess(fn.function, access);
      if (access.secrets) {
        for (const secret of [...(access.clientSecrets ? clientSecrets : []), keyRingSecret]) secret.grantRead(fn.function);
      }
      if (access.signingKeys) signingKeysSecret.grantRead(fn.function);
      // The key rings must hold keys before a function can take a request.
      if (this.keyRing) fn.function.node.addDependency(this.keyRing.generated);
      if (this.signingKeys && access.signingKeys) fn.function.node.addDependency(this.signingKeys.generated);
      functions[name] = fn;
    }
    this.functions = functions;
    // The kept key secrets are encrypted with the kept key: their readers decrypt through Secrets Manager.
    if (keptKey) {
      for (const name of FUNCTION_NAMES) {
        if (FUNCTION_ACCESS[name].secrets) grantKeyViaService(keptKey, functions[name].function, 'secretsmanager', ['kms:Decrypt']);
      }
    }
    const lambdas = Object.fromEntries(FUNCTION_NAMES.map((name) => [name, functions[name].function])) as Record<FunctionName, BrokerFunction['function']>;

    this.api = new BrokerApi(this, 'Http', {
      functions: lambdas,
      throttlingRateLimit: props.throttlingRateLimit,
      throttlingBurstLimit: props.throttlingBurstLimit,
      accessLogRetention: props.logRetention,
      ...(props.customDomain
        ? {
          customDomain: {
            domainName: props.customDomain.domainName,
            certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', props.customDomain.certificateArn),
          },
        }
        : {}),
    });

    const metrics = new BrokerMetrics(this.stackName);
    this.alarms = new BrokerAlarms(this, 'Alarms', {
      alarmNamePrefix: this.stackName,
      metrics,
      functions: lambdas,
      api: this.api.httpApi,
      table: this.sessions.table,
      ...(props.alarmTopicArn ? { alarmTopic: sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) } : {}),
    });

    this.dashboard = new BrokerDashboard(this, 'Dashboard', {
      dashboardName: this.stackName,
      metrics,
      providers: Object.keys(config.providers),
      functions: lambdas,
      functionLogGroups: FUNCTION_NAMES.map((name) => functions[name].logGroup),
      api: this.api.httpApi,
      accessLogs: this.api.accessLogs,
      table: this.sessions.table,
      alarms: [...this.alarms.alarms.values()],
    });

    new CfnOutput(this, 'TableName', { value: this.sessions.table.tableName, description: 'The session table (retained when the stack is deleted)' });
    new CfnOutput(this, 'KeyRingSecretName', {
      value: this.keyRing?.secretName ?? secretsManagerId(config.tokenEncryptionKeys)!,
      description: 'The token-encryption key ring in Secrets Manager (rotate per docs/deploy.md)',
    });
    new CfnOutput(this, 'SigningKeysSecretName', {
      value: this.signingKeys?.secretName ?? secretsManagerId(config.signingKeys)!,
      description: 'The ID-token signing keys in Secrets Manager (rotate per docs/deploy.md)',
    });
  }
}

/**
 * A secret the configuration references by name or ARN. By name, the grant covers `name-??????`
 * (Secrets Manager appends six random characters); by complete ARN, that secret exactly.
 */
export function importSecret(scope: Construct, id: string, secretId: string): secretsmanager.ISecret {
  if (!secretId.startsWith('arn:')) return secretsmanager.Secret.fromSecretNameV2(scope, id, secretId);
  const name = secretId.split(':').slice(6).join(':');
  return /-[A-Za-z0-9]{6}$/.test(name)
    ? secretsmanager.Secret.fromSecretCompleteArn(scope, id, secretId)
    : secretsmanager.Secret.fromSecretPartialArn(scope, id, secretId);
}
