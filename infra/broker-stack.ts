/**
 * The broker in one stack: the configuration (validated at synth), the session table and its
 * key, the token key ring and the ID-token signing keys, one function per `functions/` folder with exactly the access its
 * entry point wires, the HTTP API, and the alarms.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CfnOutput, Stack, Stage, type StackProps } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { FUNCTION_NAMES, type FunctionName } from '../functions/routes.js';
import { clientSecretReferences, loadBrokerConfig, secretsManagerId, type BrokerConfigDocument } from './config.js';
import { BrokerAlarms } from './constructs/broker-alarms.js';
import { BrokerApi } from './constructs/broker-api.js';
import { BrokerEdge, type EdgeProps } from './constructs/broker-edge.js';
import { BrokerFunction, PROXY_FUNCTION_TIMEOUT } from './constructs/broker-function.js';
import { KeyRing } from './constructs/key-ring.js';
import { SessionTable, type ItemAction, type SessionIndexes } from './constructs/session-table.js';

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
   * A CloudFront distribution with per-client-IP WAF limits in front of the API, on its own
   * domain (then the host of `publicUrl`); see infra/constructs/broker-edge.ts and docs/deploy.md.
   *
   * @default - no edge: clients call the API directly
   */
  readonly edge?: EdgeProps;
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
  /** The edge in front of the API, when `props.edge` asks for one. */
  readonly edge: BrokerEdge | undefined;

  constructor(scope: Construct, id: string, props: BrokerStackProps) {
    super(scope, id, props);

    // First: a document the functions would refuse fails the synth here, naming every bad field.
    const keyRingSecretName = `${this.stackName}/token-keys`;
    const signingKeysSecretName = `${this.stackName}/signing-keys`;
    this.brokerConfig = loadBrokerConfig(props.configPath, { createdKeyRingSecretName: keyRingSecretName, createdSigningKeysSecretName: signingKeysSecretName });
    const config = this.brokerConfig.config;
    const publicHost = props.edge?.domainName ?? props.customDomain?.domainName;
    if (publicHost !== undefined && new URL(config.publicUrl).host !== publicHost) {
      throw new Error(`${props.configPath}: publicUrl (${config.publicUrl}) must be https://${publicHost}, the ${props.edge ? 'edge\'s' : 'custom'} domain`);
    }
    // The document as the functions read it, inside every code asset (no 4 KB environment limit).
    const configFile = path.join(Stage.of(this)!.outdir, `${this.artifactId}.broker.config.json`);
    mkdirSync(path.dirname(configFile), { recursive: true });
    writeFileSync(configFile, JSON.stringify(this.brokerConfig.document, null, 2) + '\n');

    this.sessions = new SessionTable(this, 'Sessions', { sessionIndexes: props.sessionIndexes });
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
      });
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

    this.edge = props.edge ? new BrokerEdge(this, 'Edge', { ...props.edge, api: this.api, logRetention: props.logRetention }) : undefined;

    this.alarms = new BrokerAlarms(this, 'Alarms', {
      functions: lambdas,
      api: this.api.httpApi,
      table: this.sessions.table,
      ...(props.alarmTopicArn ? { alarmTopic: sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) } : {}),
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
