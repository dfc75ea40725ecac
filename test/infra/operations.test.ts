/**
 * (issue 13) An operator's first day and worst night: stack-scoped metrics, alarms and outputs,
 * the dashboard and the saved query, reserved concurrency, and a redeploy onto the key, table
 * and key secrets a deleted stack kept. No bundling: only the template matters here.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { App } from 'aws-cdk-lib';
import type { Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_NAMES, type FunctionName } from '../../functions/manifest.js';
import { reservedConcurrencyFromContext } from '../../infra/broker-app.js';
import type { BrokerStack } from '../../infra/broker-stack.js';
import { EXAMPLE_CONFIG_PATH } from '../../infra/config.js';
import { INIT_DURATION_QUERY, THROTTLED_QUERY } from '../../infra/constructs/broker-dashboard.js';
import { METRIC, REFRESH_SOURCES } from '../../lib/metrics-names.js';
import { logicalId, nagViolations, NO_BUNDLING, normalize, roleStatements, synthBroker, SYNTH_TIMEOUT, type PolicyStatement } from './support.js';

const dir = mkdtempSync(path.join(tmpdir(), 'broker-infra-ops-'));
const example = JSON.parse(readFileSync(EXAMPLE_CONFIG_PATH, 'utf8')) as Record<string, unknown> & { providers: Record<string, Record<string, unknown>> };
const okta = example.providers['okta']!;

/** The example with a second provider, so "per provider" is more than one line. */
const twoProviders = path.join(dir, 'two-providers.json');
writeFileSync(twoProviders, JSON.stringify({
  ...example,
  providers: { okta, entra: { ...okta, issuer: 'https://login.microsoftonline.com/tenant/v2.0', clientSecret: { secretsManager: 'oauth-broker/entra' } } },
}));

/**
 * A dashboard body with its tokens as readable placeholders (`#Ref:X#`, `#X.Arn#`), parsed: the
 * widgets as CloudWatch reads them.
 */
function dashboardBody(template: Template): { widgets: { type: string; properties: Record<string, unknown> }[] } {
  const [dashboard] = Object.values(template.findResources('AWS::CloudWatch::Dashboard'));
  const body = dashboard!['Properties'].DashboardBody as { 'Fn::Join': [string, unknown[]] };
  const text = body['Fn::Join'][1].map((part) => {
    if (typeof part === 'string') return part;
    const token = part as { Ref?: string; 'Fn::GetAtt'?: [string, string] };
    if (token.Ref) return `#Ref:${token.Ref}#`;
    if (token['Fn::GetAtt']) return `#${token['Fn::GetAtt'].join('.')}#`;
    return '#token#';
  }).join('');
  return JSON.parse(text) as { widgets: { type: string; properties: Record<string, unknown> }[] };
}

type MetricRow = (string | Record<string, unknown>)[];
const widget = (body: ReturnType<typeof dashboardBody>, title: string) => {
  const found = body.widgets.find((w) => w.properties['title'] === title);
  if (!found) throw new Error(`no widget "${title}" among ${body.widgets.map((w) => w.properties['title']).join(', ')}`);
  return found;
};
const rows = (body: ReturnType<typeof dashboardBody>, title: string) => widget(body, title).properties['metrics'] as MetricRow[];
/** A metric row without its rendering options: namespace, name, then dimension name/value pairs (CloudWatch sorts them by name). */
const plain = (row: MetricRow) => row.filter((cell) => typeof cell === 'string');
/** The value of one dimension in a row. */
const dimension = (row: MetricRow, name: string) => plain(row)[plain(row).indexOf(name) + 1];

describe('a stack named Broker-staging next to the default one', () => {
  let staging: { stack: BrokerStack; template: Template };
  let prod: { stack: BrokerStack; template: Template };
  beforeAll(() => {
    staging = synthBroker({ ...NO_BUNDLING, stackName: 'Broker-staging' });
    prod = synthBroker(NO_BUNDLING);
  }, SYNTH_TIMEOUT.timeout);

  it('gives its functions METRICS_SERVICE=<its name>: their metrics are its own series', () => {
    for (const { stack, template } of [staging, prod]) {
      for (const name of FUNCTION_NAMES) {
        const fn = template.toJSON()['Resources'][logicalId(stack.functions[name].function)];
        expect(fn.Properties.Environment.Variables.METRICS_SERVICE).toBe(stack.stackName);
      }
    }
  });

  it('alarms on its own series only, under names prefixed with its own', () => {
    const alarms = (t: Template) => Object.values(t.findResources('AWS::CloudWatch::Alarm')).map((a) => a['Properties'] as Record<string, unknown>);
    const serviceValues = (t: Template) => new Set(JSON.stringify(alarms(t)).match(/"Name":"Service","Value":"[^"]+"/g));
    expect(serviceValues(staging.template)).toEqual(new Set(['"Name":"Service","Value":"Broker-staging"']));
    expect(serviceValues(prod.template)).toEqual(new Set(['"Name":"Service","Value":"OAuthBroker"']));
    const stagingNames = alarms(staging.template).map((a) => a['AlarmName'] as string);
    const prodNames = alarms(prod.template).map((a) => a['AlarmName'] as string);
    expect(stagingNames.every((n) => n.startsWith('Broker-staging-'))).toBe(true);
    expect(stagingNames).toContain('Broker-staging-upstream-failure-rate');
    expect(stagingNames).toContain('Broker-staging-callback-errors');
    expect(prodNames).toContain('OAuthBroker-api-5xx');
    expect(stagingNames.filter((n) => prodNames.includes(n))).toEqual([]);
  });

  it('names its dashboard, saved query and key secrets after itself; its outputs have readable names', () => {
    staging.template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'Broker-staging' });
    staging.template.hasResourceProperties('AWS::Logs::QueryDefinition', { Name: 'Broker-staging/follow-one-request' });
    staging.template.hasResourceProperties('AWS::SecretsManager::Secret', { Name: 'Broker-staging/token-keys' });
    expect(Object.keys(staging.template.toJSON()['Outputs']).sort()).toEqual(['BrokerUrl', 'KeyRingSecretName', 'SigningKeysSecretName', 'TableName']);
  });

  it('stays cdk-nag clean', () => {
    expect(nagViolations(staging.stack)).toEqual([]);
  });
});

describe('dashboard', () => {
  let app: App;
  let stack: BrokerStack;
  let template: Template;
  let body: ReturnType<typeof dashboardBody>;
  beforeAll(() => {
    ({ app, stack, template } = synthBroker({ ...NO_BUNDLING, brokerConfig: twoProviders }));
    body = dashboardBody(template);
  }, SYNTH_TIMEOUT.timeout);
  const service = ['Service', 'OAuthBroker'];

  it('is one dashboard named for the stack, led by the status of every alarm', () => {
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardName: 'OAuthBroker' });
    const status = body.widgets[0]!;
    expect(status.type).toBe('alarm');
    expect((status.properties['alarms'] as string[]).sort()).toEqual([...stack.alarms.alarms.values(), stack.throttledRequests.alarm].map((a) => `#${logicalId(a)}.Arn#`).sort());
  });

  it('logins: started, completed, failed, from the names the code emits', () => {
    expect(rows(body, 'Logins').map(plain)).toEqual([
      ['OAuthBroker', METRIC.LoginsStarted, ...service],
      ['OAuthBroker', METRIC.LoginsCompleted, ...service],
      ['OAuthBroker', METRIC.LoginsFailed, ...service],
    ]);
  });

  it('refreshes by every source the code emits, and reuse revocations', () => {
    expect(rows(body, 'Refreshes by source').map(plain)).toEqual(REFRESH_SOURCES.map((source) => ['OAuthBroker', METRIC.Refreshes, ...service, 'Source', source]));
    expect(REFRESH_SOURCES).toEqual(['stored', 'upstream', 'grace', 'deduplicated']);
    expect(rows(body, 'Refresh token reuse: sessions revoked').map(plain)).toEqual([['OAuthBroker', METRIC.ReuseRevocations, ...service]]);
  });

  it('upstream latency, failures and requests per provider of the configuration', () => {
    for (const [title, metric] of [
      ['Upstream latency per provider (p90, ms)', METRIC.UpstreamLatency],
      ['Upstream failures per provider', METRIC.UpstreamFailures],
      ['Upstream requests per provider', METRIC.UpstreamRequests],
    ] as const) {
      expect(rows(body, title).map(plain)).toEqual(['okta', 'entra'].map((p) => ['OAuthBroker', metric, 'Provider', p, ...service]));
    }
    expect(rows(body, 'Upstream latency per provider (p90, ms)').map((r) => (r.at(-1) as { stat: string }).stat)).toEqual(['p90', 'p90']);
  });

  it('API requests, 4xx and 5xx of this API; 429s from the access log (HTTP APIs have no metric for them)', () => {
    const api = `#Ref:${logicalId(stack.api.httpApi)}#`;
    expect(rows(body, 'API answers').map(plain)).toEqual([
      ['AWS/ApiGateway', 'Count', 'ApiId', api],
      ['AWS/ApiGateway', '4xx', 'ApiId', api],
      ['AWS/ApiGateway', '5xx', 'ApiId', api],
    ]);
    const throttled = widget(body, 'API 429 (throttled) by route, from the access log');
    expect(throttled.type).toBe('log');
    expect(throttled.properties['query']).toBe(`SOURCE '#Ref:${logicalId(stack.api.accessLogs)}#' | ${THROTTLED_QUERY.join('\n| ')}`);
    // The access log writes the status as a string: the filter compares it as one.
    expect(THROTTLED_QUERY[0]).toBe('filter status = "429"');
  });

  it('Lambda duration, errors and throttles per function; init duration from REPORT lines of every function log group', () => {
    expect(rows(body, 'Lambda duration per function (p90, ms)').map(plain)).toEqual(FUNCTION_NAMES.map((n) => ['AWS/Lambda', 'Duration', 'FunctionName', `#Ref:${logicalId(stack.functions[n].function)}#`]));
    expect(rows(body, 'Lambda errors and throttles')).toHaveLength(FUNCTION_NAMES.length * 2);
    const init = widget(body, 'Cold starts: init duration per function (ms), from REPORT lines');
    expect(init.type).toBe('log');
    const sources = FUNCTION_NAMES.map((n) => `SOURCE '#Ref:${logicalId(stack.functions[n].logGroup)}#'`).join(' | ');
    expect(init.properties['query']).toBe(`${sources} | ${INIT_DURATION_QUERY.join('\n| ')}`);
    expect(INIT_DURATION_QUERY.join(' ')).toMatch(/@type = "REPORT" and ispresent\(@initDuration\)/);
  });

  it('DynamoDB throttles (the alarm\'s five operations) and consumed read and write capacity of the table', () => {
    const table = `#Ref:${logicalId(stack.sessions.table)}#`;
    const throttles = rows(body, 'DynamoDB throttled requests');
    const operations = throttles.filter((r) => plain(r).includes('ThrottledRequests')).map((r) => dimension(r, 'Operation'));
    expect(throttles.filter((r) => plain(r).includes('ThrottledRequests')).every((r) => dimension(r, 'TableName') === table)).toBe(true);
    expect(operations.sort()).toEqual(['DeleteItem', 'GetItem', 'PutItem', 'Query', 'UpdateItem']);
    expect(rows(body, 'DynamoDB consumed capacity').map(plain)).toEqual([
      ['AWS/DynamoDB', 'ConsumedReadCapacityUnits', 'TableName', table],
      ['AWS/DynamoDB', 'ConsumedWriteCapacityUnits', 'TableName', table],
    ]);
  });

  it('reads the broker\'s namespace only through names the code emits (lib/metrics-names.ts), under this stack\'s Service', () => {
    const brokerRows = body.widgets.flatMap((w) => (w.properties['metrics'] as MetricRow[] | undefined) ?? []).map(plain).filter((r) => r[0] === 'OAuthBroker');
    expect(brokerRows.length).toBeGreaterThan(10);
    for (const row of brokerRows) {
      expect(Object.values(METRIC)).toContain(row[1]);
      expect(dimension(row, 'Service')).toBe('OAuthBroker');
    }
  });

  it('saves the Logs Insights query that follows one request through the access log (requestId) and every function log (apigw_request_id)', () => {
    const queries = Object.values(template.findResources('AWS::Logs::QueryDefinition'));
    expect(queries).toHaveLength(1);
    const props = queries[0]!['Properties'] as { Name: string; QueryString: string; LogGroupNames: unknown[] };
    expect(props.Name).toBe('OAuthBroker/follow-one-request');
    expect(props.LogGroupNames).toEqual([{ Ref: logicalId(stack.api.accessLogs) }, ...FUNCTION_NAMES.map((n) => ({ Ref: logicalId(stack.functions[n].logGroup) }))]);
    expect(props.QueryString).toBe([
      'fields @timestamp, @log, routeKey, status, event, level, error, code, message, ms',
      '| filter requestId = "REQUEST_ID" or apigw_request_id = "REQUEST_ID"',
      '| sort @timestamp asc',
    ].join('\n'));
  });

  it('the field names of the query are the ones the access log and the function logs write', () => {
    const accessLog = readFileSync(path.join(import.meta.dirname, '../../infra/constructs/broker-api.ts'), 'utf8');
    expect(accessLog).toContain("requestId: '$context.requestId'");
    const apigw = readFileSync(path.join(import.meta.dirname, '../../lib/lambda/apigw.ts'), 'utf8');
    expect(apigw).toMatch(/apigw_request_id: req\.requestId/);
  });

  it('stays cdk-nag clean', () => {
    expect(nagViolations(app)).toEqual([]);
  });
});

describe('reserved concurrency', () => {
  it('is off by default', () => {
    const { template } = synthBroker(NO_BUNDLING);
    for (const fn of Object.values(template.findResources('AWS::Lambda::Function'))) expect(fn['Properties'].ReservedConcurrentExecutions).toBeUndefined();
  }, SYNTH_TIMEOUT.timeout);

  it('is set per function from the context, the others left alone', () => {
    const { stack, template } = synthBroker({ ...NO_BUNDLING, reservedConcurrency: 'callback=20,refresh=50' });
    const reserved = Object.fromEntries(FUNCTION_NAMES.map((n) => [n, template.toJSON()['Resources'][logicalId(stack.functions[n].function)].Properties.ReservedConcurrentExecutions]));
    expect(reserved).toEqual({ 'start-login': undefined, callback: 20, refresh: 50, logout: undefined, metadata: undefined, proxy: undefined, 'backchannel-logout': undefined });
  }, SYNTH_TIMEOUT.timeout);

  it('reads name=count pairs or an object (cdk.json), and refuses unknown functions and counts that are not positive integers', () => {
    expect(reservedConcurrencyFromContext(undefined)).toEqual({});
    expect(reservedConcurrencyFromContext({ proxy: 5 })).toEqual({ reservedConcurrency: { proxy: 5 } });
    expect(() => reservedConcurrencyFromContext('refresher=5')).toThrow('"refresher" is not a function');
    expect(() => reservedConcurrencyFromContext('refresh=0')).toThrow('refresh must be a positive integer');
    expect(() => reservedConcurrencyFromContext('refresh=1.5')).toThrow('refresh must be a positive integer');
    expect(() => reservedConcurrencyFromContext('refresh')).toThrow('name=count pairs');
  });
});

describe('redeploy after cdk destroy: onto the kept key, table and key secrets', () => {
  const KEY_ARN = 'arn:aws:kms:eu-west-1:123456789012:key/0f1e2d3c-aaaa-bbbb-cccc-123456789abc';
  const TABLE = 'OAuthBroker-SessionsTable1A2B3C4D-XYZ';
  let app: App;
  let stack: BrokerStack;
  let template: Template;
  beforeAll(() => {
    const kept = path.join(dir, 'kept.json');
    // As docs/deploy.md says: the configuration names the kept secrets (their names are taken).
    writeFileSync(kept, JSON.stringify({ ...example, tokenEncryptionKeys: { secretsManager: 'OAuthBroker/token-keys' }, signingKeys: { secretsManager: 'OAuthBroker/signing-keys' } }));
    ({ app, stack, template } = synthBroker({ ...NO_BUNDLING, brokerConfig: kept, existingKeyArn: KEY_ARN, existingTableName: TABLE }));
  }, SYNTH_TIMEOUT.timeout);

  const tableArnParts = ['arn:', { Ref: 'AWS::Partition' }, ':dynamodb:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:table/${TABLE}`];
  const tableArn = { 'Fn::Join': ['', tableArnParts] };
  const secretArn = (name: string) => ({ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, `:secret:${name}-??????`]] });
  const via = (service: string) => ({ StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', [`${service}.`, { Ref: 'AWS::Region' }, '.amazonaws.com']] } } });
  const roleId = (name: FunctionName) => logicalId(stack.functions[name].role);

  it('creates no table, no key and no key secret: it uses the kept ones', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 0);
    template.resourceCountIs('AWS::KMS::Key', 0);
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    template.resourceCountIs('Custom::BrokerKeyRing', 0);
    template.resourceCountIs('Custom::BrokerSigningKeys', 0);
    const fn = template.toJSON()['Resources'][logicalId(stack.functions.refresh.function)];
    expect(fn.Properties.Environment.Variables.DYNAMODB_TABLE).toBe(TABLE);
    expect(template.toJSON()['Outputs']['TableName'].Value).toBe(TABLE);
  });

  it('refresh (key ring, signing keys, table) may decrypt the kept secrets through Secrets Manager and use the key through DynamoDB, on that key only', () => {
    const statements = roleStatements(template, roleId('refresh'));
    const kms = statements.filter((s) => (s.Action as string[]).some((a) => a.startsWith('kms:')));
    expect(kms).toEqual([
      { Effect: 'Allow', Action: ['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*'], Resource: KEY_ARN, Condition: via('dynamodb') },
      { Effect: 'Allow', Action: ['kms:Decrypt'], Resource: KEY_ARN, Condition: via('secretsmanager') },
    ].map(normalize));
    const secrets = statements.find((s) => (s.Action as string[]).includes('secretsmanager:GetSecretValue'))!;
    expect(secrets.Resource).toEqual(expect.arrayContaining([secretArn('OAuthBroker/token-keys'), secretArn('OAuthBroker/signing-keys')]));
    const items = statements.find((s) => (s.Action as string[]).includes('dynamodb:UpdateItem'))!;
    expect(items.Resource).toEqual(tableArn);
  });

  it('every function that reads the key ring may decrypt it; metadata, which reads nothing, gets no key use', () => {
    const viaSecrets = (s: PolicyStatement) => s.Resource === KEY_ARN && JSON.stringify(s.Action) === '["kms:Decrypt"]' && JSON.stringify(s.Condition) === JSON.stringify(via('secretsmanager'));
    const decrypters = FUNCTION_NAMES.filter((n) => roleStatements(template, roleId(n)).some(viaSecrets));
    expect(decrypters.sort()).toEqual(['backchannel-logout', 'callback', 'logout', 'proxy', 'refresh']);
    expect(JSON.stringify(roleStatements(template, roleId('metadata')))).not.toContain('kms:');
  });

  it('queries the kept table\'s session indexes', () => {
    const query = roleStatements(template, roleId('backchannel-logout')).find((s) => (s.Action as string[]).includes('dynamodb:Query'))!;
    const prefix = tableArnParts.slice(0, -1);
    expect(query.Resource).toEqual(expect.arrayContaining(['by-idp-sub', 'by-idp-sid'].map((i) => ({ 'Fn::Join': ['', [...prefix, `:table/${TABLE}/index/${i}`]] }))));
    expect(query.Resource).toHaveLength(2);
  });

  it('stays cdk-nag clean', () => {
    expect(nagViolations(app)).toEqual([]);
  });

  it('with only the key (a new table): the new table is encrypted with the kept key', () => {
    const kept = path.join(dir, 'kept-key-only.json');
    writeFileSync(kept, JSON.stringify({ ...example, tokenEncryptionKeys: { secretsManager: 'OAuthBroker/token-keys' }, signingKeys: { secretsManager: 'OAuthBroker/signing-keys' } }));
    const { template: t } = synthBroker({ ...NO_BUNDLING, brokerConfig: kept, existingKeyArn: KEY_ARN });
    t.resourceCountIs('AWS::KMS::Key', 0);
    t.hasResourceProperties('AWS::DynamoDB::Table', { SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: KEY_ARN } });
  }, SYNTH_TIMEOUT.timeout);

  it('refuses a kept key with a configuration that leaves the key secrets out (their names are taken by the kept ones)', () => {
    expect(() => synthBroker({ ...NO_BUNDLING, existingKeyArn: KEY_ARN })).toThrow('with existingKeyArn, name the kept key secrets in the configuration: "tokenEncryptionKeys": {"secretsManager": "OAuthBroker/token-keys"}');
  });

  it('refuses a table without its key, and a key that is not a KMS key ARN', () => {
    expect(() => synthBroker({ ...NO_BUNDLING, existingTableName: TABLE })).toThrow('existingTableName needs existingKeyArn');
    expect(() => synthBroker({ ...NO_BUNDLING, existingKeyArn: 'alias/broker' })).toThrow('existingKeyArn must be a KMS key ARN');
  });
});
