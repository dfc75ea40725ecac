/**
 * The CDK app `cdk synth` builds (`infra/app.ts`) and the tests build: the broker stack from the
 * context, and cdk-nag's AwsSolutions checks, which fail the synthesis on any finding that is not
 * acknowledged with a reason next to its cause.
 */
import { App, Validations, type AppProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BrokerStack, type BrokerStackProps } from './broker-stack.js';
import { FUNCTION_NAMES, type FunctionName } from '../functions/manifest.js';
import { DEFAULT_STACK_NAME } from '../lib/config/stack-document.js';
import { CONFIG_CONTEXT_KEY, OperatorInputError, resolveConfigPath } from './config.js';
import { parseRouteThrottles } from './constructs/route-throttles.js';
import { edgePropsFromContext } from './constructs/broker-edge.js';

/**
 * Context keys (`npx cdk deploy -c key=value`):
 * - `brokerConfig`: the configuration document's path, else env `BROKER_CONFIG`; one of them is
 *   required (no silent default), and a relative path is the invoking directory's;
 * - `stackName`: default `OAuthBroker`;
 * - `domainName` and `certificateArn`: a custom domain (both or neither);
 * - `alarmTopicArn`: an SNS topic for the alarms;
 * - `throttlingRateLimit`, `throttlingBurstLimit`, `memorySize`, `logRetentionDays`,
 *   `throttledRequestsThreshold`: numbers;
 * - `routeThrottles`: per-class route limits, JSON (docs/deploy.md, "Throttles");
 * - `sessionIndexes`: `all` (default) or `sub`, the first deploy of an upgrade that adds the
 *   session indexes to an existing table (CloudFormation adds one index per update);
 * - `existingKeyArn` and `existingTableName`: redeploy onto the key (and table) a deleted stack kept;
 * - `reservedConcurrency`: `name=n,name=n` (or an object in cdk.json), reserved concurrency per function.
 * - `edge`: `true` puts a CloudFront distribution with per-IP WAF limits in front of the API
 *   (off by default); with it `edgeDomainName` (the host of `publicUrl`) and `edgeCertificateArn`
 *   (ACM, us-east-1) are required, and `edgeLoginRateLimit`, `edgeCallbackRateLimit` (requests
 *   per IP per 5 minutes, default 300) or `edgeWebAclArn` (a us-east-1 CloudFront web ACL, for a
 *   stack in another region) are optional; any `edge*` key without `edge=true` is refused.
 */
export function stackPropsFromContext(app: App, env: NodeJS.ProcessEnv = process.env): BrokerStackProps {
  const get = (key: string): string | undefined => {
    const value: unknown = app.node.tryGetContext(key);
    return value === undefined || value === null || value === '' ? undefined : String(value);
  };
  const num = (key: string): number | undefined => {
    const value = get(key);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) throw new OperatorInputError(`context ${key} must be a positive number (got "${value}")`);
    return n;
  };
  /** A whole number within what the service takes (Lambda's memory, API Gateway's burst, CloudWatch's threshold). */
  const int = (key: string, min: number, max: number): number | undefined => {
    const n = num(key);
    if (n !== undefined && (!Number.isInteger(n) || n < min || n > max)) throw new OperatorInputError(`context ${key} must be a whole number from ${min} to ${max} (got ${n})`);
    return n;
  };
  const domainName = get('domainName');
  const certificateArn = get('certificateArn');
  if ((domainName === undefined) !== (certificateArn === undefined)) {
    throw new OperatorInputError('context domainName and certificateArn go together: give both or neither');
  }
  const retentionDays = num('logRetentionDays');
  if (retentionDays !== undefined && !Object.values(logs.RetentionDays).includes(retentionDays)) {
    throw new OperatorInputError(`context logRetentionDays must be one of CloudWatch Logs' retention periods (got ${retentionDays})`);
  }
  const sessionIndexes = get('sessionIndexes');
  if (sessionIndexes !== undefined && sessionIndexes !== 'all' && sessionIndexes !== 'sub') {
    throw new OperatorInputError(`context sessionIndexes must be "all" or "sub" (got "${sessionIndexes}")`);
  }
  const existingKeyArn = get('existingKeyArn');
  const existingTableName = get('existingTableName');
  if (existingTableName !== undefined && existingKeyArn === undefined) {
    throw new OperatorInputError('context existingTableName needs existingKeyArn: the kept table is encrypted with the kept key (docs/deploy.md, "Redeploy after destroy")');
  }
  if (existingKeyArn !== undefined && !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[0-9a-f-]{36}$/.test(existingKeyArn)) {
    throw new OperatorInputError(`context existingKeyArn must be a KMS key ARN, arn:aws:kms:<region>:<account>:key/<id> (got "${existingKeyArn}")`);
  }
  const edge = edgePropsFromContext(get);
  return {
    description: 'OAuth 2.0 / OpenID Connect token broker',
    configPath: resolveConfigPath(app.node.tryGetContext(CONFIG_CONTEXT_KEY), env),
    ...(domainName && certificateArn ? { customDomain: { domainName, certificateArn } } : {}),
    alarmTopicArn: get('alarmTopicArn'),
    throttlingRateLimit: num('throttlingRateLimit'),
    throttlingBurstLimit: int('throttlingBurstLimit', 0, 5_000),
    routeThrottles: parseRouteThrottles(app.node.tryGetContext('routeThrottles')),
    throttledRequestsThreshold: int('throttledRequestsThreshold', 1, 1_000_000),
    memorySize: int('memorySize', 128, 10_240),
    logRetention: retentionDays as logs.RetentionDays | undefined,
    ...(sessionIndexes ? { sessionIndexes } : {}),
    ...(existingKeyArn ? { existingKeyArn } : {}),
    ...(existingTableName ? { existingTableName } : {}),
    ...reservedConcurrencyFromContext(app.node.tryGetContext('reservedConcurrency')),
    ...(edge ? { edge } : {}),
  };
}

/** `callback=20,refresh=50` (the command line) or `{"callback": 20}` (cdk.json): positive integers per function. */
export function reservedConcurrencyFromContext(value: unknown): { reservedConcurrency?: Partial<Record<FunctionName, number>> } {
  if (value === undefined || value === null || value === '') return {};
  const entries: [string, unknown][] = typeof value === 'string'
    ? value.split(',').map((pair) => {
      const [name, n, ...rest] = pair.split('=');
      if (rest.length > 0 || n === undefined) throw new OperatorInputError(`context reservedConcurrency must be name=count pairs, comma-separated (got "${value}")`);
      return [name!.trim(), Number(n)];
    })
    : typeof value === 'object' && !Array.isArray(value) ? Object.entries(value) : [];
  if (entries.length === 0) throw new OperatorInputError('context reservedConcurrency must be name=count pairs or an object');
  const result: Partial<Record<FunctionName, number>> = {};
  for (const [name, n] of entries) {
    if (!(FUNCTION_NAMES as readonly string[]).includes(name)) throw new OperatorInputError(`context reservedConcurrency: "${name}" is not a function (${FUNCTION_NAMES.join(', ')})`);
    if (typeof n !== 'number' || !Number.isInteger(n) || n < 1) throw new OperatorInputError(`context reservedConcurrency: ${name} must be a positive integer`);
    result[name as FunctionName] = n;
  }
  return { reservedConcurrency: result };
}

export function createBrokerApp(props: AppProps = {}, env: NodeJS.ProcessEnv = process.env): { app: App; stack: BrokerStack } {
  const app = new App(props);
  const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? DEFAULT_STACK_NAME;
  const stack = new BrokerStack(app, stackName, stackPropsFromContext(app, env));
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
