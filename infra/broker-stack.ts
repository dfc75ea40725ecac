/**
 * The broker in one stack: the configuration (validated at synth), the session table and its
 * key, the token key ring and the ID-token signing keys, one function per entry of
 * functions/manifest.ts with exactly the access that entry names (the entry point's wiring is
 * checked against the same entry by the compiler), the HTTP API, the alarms and the dashboard
 * (all named after the stack).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CfnOutput, Duration, Stack, Stage, type StackProps } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as kms from 'aws-cdk-lib/aws-kms';
import type * as logs from 'aws-cdk-lib/aws-logs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import type { Construct } from 'constructs';
import { FUNCTION_NAMES, functionSpec, secretsReadBy, type FunctionName } from '../functions/manifest.js';
import { clientSecretReferences, loadBrokerConfig, OperatorInputError, secretsManagerId, type BrokerConfigDocument } from './config.js';
import { METRICS_SERVICE_ENV } from '../lib/metrics-names.js';
import { BrokerAlarms } from './constructs/broker-alarms.js';
import { BrokerDashboard } from './constructs/broker-dashboard.js';
import { BrokerMetrics } from './constructs/broker-metrics.js';
import { BrokerApi } from './constructs/broker-api.js';
import { BrokerEdge, type EdgeProps } from './constructs/broker-edge.js';
import { BrokerFunction } from './constructs/broker-function.js';
import { KeyRing } from './constructs/key-ring.js';
import type { RouteThrottles } from './constructs/route-throttles.js';
import { grantKeyViaService, SessionTable, type SessionIndexes } from './constructs/session-table.js';
import { ThrottledRequestsAlarm } from './constructs/throttled-requests-alarm.js';

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
  /** The stage's default (routes without their own limit: unknown paths). @default 50 requests per second */
  readonly throttlingRateLimit?: number;
  /** @default 100 requests */
  readonly throttlingBurstLimit?: number;
  /**
   * Per-route limits by throttle class (functions/manifest.ts); a class not given keeps its
   * default (`DEFAULT_ROUTE_THROTTLES`, sizing in docs/deploy.md).
   *
   * @default DEFAULT_ROUTE_THROTTLES
   */
  readonly routeThrottles?: RouteThrottles;
  /**
   * Throttled (429) answers in 5 minutes that raise the alarm.
   *
   * @default 50
   */
  readonly throttledRequestsThreshold?: number;
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
  /** The alarm on 429s (per-route throttles), from the access log. */
  readonly throttledRequests: ThrottledRequestsAlarm;
  readonly dashboard: BrokerDashboard;
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
      throw new OperatorInputError(`${props.configPath}: publicUrl (${config.publicUrl}) must be https://${publicHost}, the ${props.edge ? 'edge\'s' : 'custom'} domain`);
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
      const spec = functionSpec(name);
      const usesTable = Object.keys(spec.items).length > 0 || spec.sessionLookup;
      const { keyRing, clientSecrets: readsClientSecrets, signingKeys } = spec.secrets;
      const fn = new BrokerFunction(this, `Fn-${name}`, {
        name,
        configFile,
        // What the cold start reads first thing (functions/handler.ts): several ids, one BatchGetSecretValue.
        secretIds: secretsReadBy(spec.secrets, config),
        ...(usesTable ? { tableName: this.sessions.table.tableName } : {}),
        ...(spec.timeoutSeconds !== undefined ? { timeout: Duration.seconds(spec.timeoutSeconds) } : {}),
        memorySize: props.memorySize,
        logRetention: props.logRetention,
        reservedConcurrentExecutions: props.reservedConcurrency?.[name],
      });
      // The metrics' Service dimension: this stack's own series, alarms and dashboard.
      fn.function.addEnvironment(METRICS_SERVICE_ENV, this.stackName);
      this.sessions.grantAccess(fn.function, spec);
      for (const secret of [...(readsClientSecrets ? clientSecrets : []), ...(keyRing ? [keyRingSecret] : [])]) secret.grantRead(fn.function);
      if (signingKeys) signingKeysSecret.grantRead(fn.function);
      // The key rings must hold keys before a function can take a request.
      if (this.keyRing) fn.function.node.addDependency(this.keyRing.generated);
      if (this.signingKeys && signingKeys) fn.function.node.addDependency(this.signingKeys.generated);
      functions[name] = fn;
    }
    this.functions = functions;
    // The kept key secrets are encrypted with the kept key: their readers decrypt through Secrets Manager.
    if (keptKey) {
      for (const name of FUNCTION_NAMES) {
        const { keyRing, clientSecrets: readsClientSecrets, signingKeys } = functionSpec(name).secrets;
        if (keyRing || readsClientSecrets || signingKeys) grantKeyViaService(keptKey, functions[name].function, 'secretsmanager', ['kms:Decrypt']);
      }
    }
    const lambdas = Object.fromEntries(FUNCTION_NAMES.map((name) => [name, functions[name].function])) as Record<FunctionName, BrokerFunction['function']>;

    this.api = new BrokerApi(this, 'Http', {
      functions: lambdas,
      throttlingRateLimit: props.throttlingRateLimit,
      throttlingBurstLimit: props.throttlingBurstLimit,
      ...(props.routeThrottles ? { routeThrottles: props.routeThrottles } : {}),
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

    const alarmTopic = props.alarmTopicArn ? sns.Topic.fromTopicArn(this, 'AlarmTopic', props.alarmTopicArn) : undefined;
    const metrics = new BrokerMetrics(this.stackName);
    this.alarms = new BrokerAlarms(this, 'Alarms', {
      alarmNamePrefix: this.stackName,
      metrics,
      functions: lambdas,
      api: this.api.httpApi,
      table: this.sessions.table,
      ...(alarmTopic ? { alarmTopic } : {}),
    });
    this.throttledRequests = new ThrottledRequestsAlarm(this, 'Throttled', {
      alarmName: `${this.stackName}-throttled`,
      accessLogs: this.api.accessLogs,
      apiId: this.api.httpApi.apiId,
      ...(props.throttledRequestsThreshold !== undefined ? { threshold: props.throttledRequestsThreshold } : {}),
      ...(alarmTopic ? { alarmTopic } : {}),
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
      alarms: [...this.alarms.alarms.values(), this.throttledRequests.alarm],
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
