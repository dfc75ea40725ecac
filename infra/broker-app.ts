/**
 * The CDK app `cdk synth` builds (`infra/app.ts`) and the tests build: the broker stack from the
 * context, and cdk-nag's AwsSolutions checks, which fail the synthesis on any finding that is not
 * acknowledged with a reason next to its cause.
 */
import { App, Validations, type AppProps } from 'aws-cdk-lib';
import * as logs from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { BrokerStack, type BrokerStackProps } from './broker-stack.js';
import { CONFIG_CONTEXT_KEY, resolveConfigPath } from './config.js';
import { parseRouteThrottles } from './constructs/route-throttles.js';

/**
 * Context keys (`npx cdk deploy -c key=value`), all optional:
 * - `brokerConfig`: the configuration document's path (else env `BROKER_CONFIG`, else the example);
 * - `stackName`: default `OAuthBroker`;
 * - `domainName` and `certificateArn`: a custom domain (both or neither);
 * - `alarmTopicArn`: an SNS topic for the alarms;
 * - `throttlingRateLimit`, `throttlingBurstLimit`, `memorySize`, `logRetentionDays`,
 *   `throttledRequestsThreshold`: numbers;
 * - `routeThrottles`: per-class route limits, JSON (docs/deploy.md, "Throttles");
 * - `sessionIndexes`: `all` (default) or `sub`, the first deploy of an upgrade that adds the
 *   session indexes to an existing table (CloudFormation adds one index per update).
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
    if (!Number.isFinite(n) || n <= 0) throw new Error(`context ${key} must be a positive number (got "${value}")`);
    return n;
  };
  const domainName = get('domainName');
  const certificateArn = get('certificateArn');
  if ((domainName === undefined) !== (certificateArn === undefined)) {
    throw new Error('context domainName and certificateArn go together: give both or neither');
  }
  const retentionDays = num('logRetentionDays');
  if (retentionDays !== undefined && !Object.values(logs.RetentionDays).includes(retentionDays)) {
    throw new Error(`context logRetentionDays must be one of CloudWatch Logs' retention periods (got ${retentionDays})`);
  }
  const sessionIndexes = get('sessionIndexes');
  if (sessionIndexes !== undefined && sessionIndexes !== 'all' && sessionIndexes !== 'sub') {
    throw new Error(`context sessionIndexes must be "all" or "sub" (got "${sessionIndexes}")`);
  }
  return {
    description: 'OAuth 2.0 / OpenID Connect token broker',
    configPath: resolveConfigPath(app.node.tryGetContext(CONFIG_CONTEXT_KEY), env),
    ...(domainName && certificateArn ? { customDomain: { domainName, certificateArn } } : {}),
    alarmTopicArn: get('alarmTopicArn'),
    throttlingRateLimit: num('throttlingRateLimit'),
    throttlingBurstLimit: num('throttlingBurstLimit'),
    routeThrottles: parseRouteThrottles(app.node.tryGetContext('routeThrottles')),
    throttledRequestsThreshold: num('throttledRequestsThreshold'),
    memorySize: num('memorySize'),
    logRetention: retentionDays as logs.RetentionDays | undefined,
    ...(sessionIndexes ? { sessionIndexes } : {}),
  };
}

export function createBrokerApp(props: AppProps = {}, env: NodeJS.ProcessEnv = process.env): { app: App; stack: BrokerStack } {
  const app = new App(props);
  const stackName = (app.node.tryGetContext('stackName') as string | undefined) ?? 'OAuthBroker';
  const stack = new BrokerStack(app, stackName, stackPropsFromContext(app, env));
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { app, stack };
}
