/**
 * The stack `npx cdk synth` builds from the example configuration, synthesized once (esbuild runs
 * for real): routes, functions and their code assets, exact IAM, the table, the key ring, the
 * stage, the alarms, and cdk-nag.
 */
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { Stage, type App } from 'aws-cdk-lib';
import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { SECRET_IDS_ENV, secretIdsFromEnv } from '../../functions/handler.js';
import { FUNCTION_NAMES, functionSpec, secretsReadBy, type FunctionName } from '../../functions/manifest.js';
import type { BrokerStack } from '../../infra/broker-stack.js';
import { routeTable } from '../../infra/constructs/broker-api.js';
import { BUNDLED_CONFIG_FILE, PREPARED_CONFIG_FILE, SECRET_IDS_MAX_BYTES, secretIdsVariable } from '../../infra/constructs/broker-function.js';
import { parseConfigText, PREPARED_CONFIG_ENV } from '../../lib/config/parse.js';
import { preparedConfig } from '../../lib/config/prepared.js';
import { PROXY_BUDGET_MS } from '../../lib/proxy/limits.js';
import { acknowledgements, logicalId, nagViolations, normalize, roleStatements, synthBroker, SYNTH_TIMEOUT, type PolicyStatement } from './support.js';

let app: App;
let stack: BrokerStack;
let template: Template;

beforeAll(() => {
  ({ app, stack, template } = synthBroker());
}, SYNTH_TIMEOUT.timeout);

const fnId = (name: FunctionName) => logicalId(stack.functions[name].function);
const fn = (name: FunctionName) => template.toJSON()['Resources'][fnId(name)];
/** Where the synthesized function's code asset is. */
const assetDirOf = (name: FunctionName) => path.join(Stage.of(stack)!.outdir, `asset.${(fn(name).Properties.Code.S3Key as string).replace(/\.zip$/, '')}`);
const roleId = (name: FunctionName) => logicalId(stack.functions[name].role);
const tableArn = () => ({ 'Fn::GetAtt': [logicalId(stack.sessions.table), 'Arn'] });

describe('routes', () => {
  it('are exactly the contract\'s, from functions/manifest.ts (with an OPTIONS route for each CORS path, and POST beside GET for /login and /end-session as OIDC asks)', () => {
    const routeKeys = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).map((r) => r['Properties'].RouteKey as string);
    expect(routeKeys.sort()).toEqual([
      'ANY /api/{proxy+}',
      'GET /.well-known/oauth-authorization-server',
      'GET /.well-known/openid-configuration',
      'GET /callback',
      'GET /end-session',
      'GET /jwks',
      'GET /login',
      'GET /session',
      'OPTIONS /logout',
      'OPTIONS /refresh',
      'OPTIONS /session',
      'OPTIONS /token',
      'POST /backchannel-logout/{provider}',
      'POST /callback',
      'POST /end-session',
      'POST /login',
      'POST /logout',
      'POST /refresh',
      'POST /token',
    ]);
    expect(routeKeys.sort()).toEqual(routeTable().map((r) => r.routeKey).sort());
  });

  it('each go to the function that serves them, as Lambda proxy payload 2.0', () => {
    const integrations = template.findResources('AWS::ApiGatewayV2::Integration');
    expect(Object.keys(integrations)).toHaveLength(FUNCTION_NAMES.length);
    for (const integration of Object.values(integrations)) {
      expect(integration['Properties']).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0', TimeoutInMillis: 29000 });
    }
    const functionOf = (integrationId: string) => {
      const uri = integrations[integrationId]!['Properties'].IntegrationUri as { 'Fn::GetAtt': [string, string] };
      return FUNCTION_NAMES.find((name) => fnId(name) === uri['Fn::GetAtt'][0]);
    };
    for (const route of Object.values(template.findResources('AWS::ApiGatewayV2::Route'))) {
      const target = route['Properties'].Target as { 'Fn::Join': [string, [string, { Ref: string }]] };
      const served = functionOf(target['Fn::Join'][1][1].Ref)!;
      expect(routeTable().find((r) => r.routeKey === route['Properties'].RouteKey)?.functionName).toBe(served);
      expect(route['Properties'].AuthorizationType).toBe('NONE');
    }
  });

  it('leave CORS to the functions: no API Gateway CORS configuration', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { ProtocolType: 'HTTP', CorsConfiguration: Match.absent(), DisableExecuteApiEndpoint: false });
  });

  it('let API Gateway invoke each function from its own routes only', () => {
    const permissions = Object.values(template.findResources('AWS::Lambda::Permission'));
    expect(permissions).toHaveLength(routeTable().length);
    for (const p of permissions) expect(p['Properties']).toMatchObject({ Action: 'lambda:InvokeFunction', Principal: 'apigateway.amazonaws.com' });
  });
});

describe('stage', () => {
  it('is the $default stage, auto-deployed, throttled with the default rate and burst', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Stage', 1);
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', {
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 50, ThrottlingBurstLimit: 100 },
    });
  });

  it('throttles each route by its class: /login and /callback at a tenth of the token endpoints; discovery, /jwks and back-channel logout their own', () => {
    const login = { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 };
    const token = { ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 };
    const discovery = { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 };
    const [stage] = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'));
    expect(stage!['Properties'].RouteSettings).toEqual({
      'GET /login': login,
      'POST /login': login,
      'GET /callback': login,
      'POST /callback': login,
      'POST /token': token,
      'OPTIONS /token': token,
      'POST /refresh': token,
      'OPTIONS /refresh': token,
      'GET /session': token,
      'OPTIONS /session': token,
      'POST /logout': token,
      'OPTIONS /logout': token,
      'GET /end-session': token,
      'POST /end-session': token,
      'GET /jwks': { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
      'GET /.well-known/openid-configuration': discovery,
      'GET /.well-known/oauth-authorization-server': discovery,
      'ANY /api/{proxy+}': token,
      'POST /backchannel-logout/{provider}': { ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 },
    });
    // A route must exist before the stage names it.
    const routeIds = Object.keys(template.findResources('AWS::ApiGatewayV2::Route'));
    expect(stage!['DependsOn']).toEqual(expect.arrayContaining(routeIds));
  });

  it('counts 429s from the access log and alarms on them: HTTP APIs publish no 429 metric', () => {
    template.hasResourceProperties('AWS::Logs::MetricFilter', {
      LogGroupName: { Ref: logicalId(stack.api.accessLogs) },
      FilterPattern: '{ $.status = "429" }',
      MetricTransformations: [{ MetricNamespace: 'OAuthBroker', MetricName: 'ApiThrottled', MetricValue: '1', Dimensions: [{ Key: 'ApiId', Value: '$.apiId' }] }],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'OAuthBroker',
      MetricName: 'ApiThrottled',
      Dimensions: [{ Name: 'ApiId', Value: { Ref: logicalId(stack.api.httpApi) } }],
      Statistic: 'Sum',
      Period: 300,
      Threshold: 50,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
    });
  });

  it('writes JSON access logs to a log group with retention, without paths or query strings', () => {
    const [stage] = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'));
    const settings = stage!['Properties'].AccessLogSettings as { DestinationArn: unknown; Format: string };
    expect(settings.DestinationArn).toEqual({ 'Fn::GetAtt': [logicalId(stack.api.accessLogs), 'Arn'] });
    const format = JSON.parse(settings.Format) as Record<string, string>;
    expect(format).toMatchObject({ requestId: '$context.requestId', apiId: '$context.apiId', routeKey: '$context.routeKey', status: '$context.status' });
    expect(Object.values(format).filter((v) => /path|querystring/i.test(v))).toEqual([]);
    template.hasResource('AWS::Logs::LogGroup', { Properties: { RetentionInDays: 30 }, DeletionPolicy: 'Retain' });
    expect(template.toJSON()['Resources'][logicalId(stack.api.accessLogs)].Properties.RetentionInDays).toBe(30);
  });

  it('has no custom domain unless asked', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::DomainName', 0);
    template.resourceCountIs('AWS::ApiGatewayV2::ApiMapping', 0);
  });
});

describe('functions', () => {
  it.each(FUNCTION_NAMES)('%s: pinned runtime, arm64, ESM handler, memory, timeout, tracing, log group', (name) => {
    const fn = template.toJSON()['Resources'][fnId(name)];
    expect(fn.Type).toBe('AWS::Lambda::Function');
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['arm64'],
      Handler: 'index.handler',
      MemorySize: 512,
      // (v2) The API proxy answers within API Gateway's 29 s; the others within 25 s.
      Timeout: name === 'proxy' ? 29 : 25,
      TracingConfig: { Mode: 'Active' },
      LoggingConfig: { LogGroup: { Ref: logicalId(stack.functions[name].logGroup) } },
      Role: { 'Fn::GetAtt': [roleId(name), 'Arn'] },
    });
    const logGroup = template.toJSON()['Resources'][logicalId(stack.functions[name].logGroup)];
    expect(logGroup.Properties.RetentionInDays).toBe(30);
  });

  it.each(FUNCTION_NAMES)('%s: the configuration file, where it wires the table DYNAMODB_TABLE, and the secrets its cold start reads first', (name) => {
    const fn = template.toJSON()['Resources'][fnId(name)];
    const secretIds = secretsReadBy(functionSpec(name).secrets, stack.brokerConfig.config);
    expect(fn.Properties.Environment.Variables).toEqual({
      BROKER_CONFIG: 'broker.config.json',
      // The document parsed at synth, beside it (lib/config/prepared.ts).
      [PREPARED_CONFIG_ENV]: 'broker.config.prepared.json',
      LOG_LEVEL: 'info',
        // (issue 13) The metrics' Service dimension: the stack's own name.
        METRICS_SERVICE: 'OAuthBroker',
      ...(name === 'metadata' ? {} : { DYNAMODB_TABLE: { Ref: logicalId(stack.sessions.table) } }),
      // As functions/handler.ts reads it: the ids its grants are for, a JSON array.
      ...(secretIds.length > 0 ? { [SECRET_IDS_ENV]: JSON.stringify(secretIds) } : {}),
    });
    if (name === 'start-login' || name === 'metadata') expect(secretIds).toEqual([]);
    else expect(secretIdsFromEnv({ [SECRET_IDS_ENV]: fn.Properties.Environment.Variables[SECRET_IDS_ENV] })).toEqual(secretIds);
  });

  it('keeps BROKER_SECRET_IDS within 1 KB of the 4 KB Lambda allows a function\'s variables: the first ids (key ring, signing keys), in order, the rest read after', () => {
    const arn = (i: number) => `arn:aws:secretsmanager:eu-central-1:123456789012:secret:broker/provider-${i}-AbCdEf`;
    const many = ['broker/token-keys', 'broker/signing-keys', ...Array.from({ length: 40 }, (_, i) => arn(i))];
    const kept = secretIdsFromEnv({ [SECRET_IDS_ENV]: secretIdsVariable(many) });
    expect(Buffer.byteLength(secretIdsVariable(many))).toBeLessThanOrEqual(SECRET_IDS_MAX_BYTES);
    expect(kept.length).toBeGreaterThan(5);
    expect(kept).toEqual(many.slice(0, kept.length));
    expect(Buffer.byteLength(JSON.stringify(many.slice(0, kept.length + 1)))).toBeGreaterThan(SECRET_IDS_MAX_BYTES);
    expect(secretIdsFromEnv({ [SECRET_IDS_ENV]: secretIdsVariable(many.slice(0, 3)) })).toEqual(many.slice(0, 3));
  });

  it.each(FUNCTION_NAMES)('%s: the code asset holds the minified ESM bundle (an entry and its chunks), their source maps, the validated configuration and its prepared form', (name) => {
    const assetDir = assetDirOf(name);
    const files = readdirSync(assetDir).sort();
    const code = files.filter((f) => f.endsWith('.mjs'));
    expect(code).toContain('index.mjs');
    expect(files).toEqual([BUNDLED_CONFIG_FILE, PREPARED_CONFIG_FILE, ...code.flatMap((f) => [f, `${f}.map`])].sort());
    expect(fn(name).Properties.Handler).toBe('index.handler');
    const entry = readFileSync(path.join(assetDir, 'index.mjs'), 'utf8');
    expect(entry).toMatch(/export\s*\{[^}]*as handler\s*\}|export\s*\{\s*handler\s*\}/);
    // Its own bundle: the entry names its function (regression: CDK's bundling cache once gave
    // every function the first one's asset).
    expect(entry).toContain(`brokerHandler(${JSON.stringify(name)}`.replace('brokerHandler', ''));
    expect(code).toHaveLength(name === 'start-login' || name === 'metadata' ? 1 : 2);
    for (const file of code) {
      const text = readFileSync(path.join(assetDir, file), 'utf8');
      expect(text).not.toMatch(/from\s*["']@aws-sdk\//); // nothing left to the runtime's copy of the SDK
      expect(text.length / text.split('\n').length).toBeGreaterThan(500); // minified: long lines
    }
    const config = JSON.parse(readFileSync(path.join(assetDir, BUNDLED_CONFIG_FILE), 'utf8')) as Record<string, unknown>;
    expect(config).toEqual(stack.brokerConfig.document);
    expect(config['tokenEncryptionKeys']).toEqual({ secretsManager: 'OAuthBroker/token-keys' });
    expect(config['signingKeys']).toEqual({ secretsManager: 'OAuthBroker/signing-keys' });
    // The prepared form is that very text, parsed for Lambda: what a cold start takes instead of parsing.
    const text = readFileSync(path.join(assetDir, BUNDLED_CONFIG_FILE), 'utf8');
    const prepared = preparedConfig(readFileSync(path.join(assetDir, PREPARED_CONFIG_FILE), 'utf8'), text, 'lambda');
    expect(prepared).toBeDefined();
    expect(isDeepStrictEqual(prepared, parseConfigText(text, { runtime: 'lambda' }))).toBe(true);
  });

  it('each have a code asset of their own', () => {
    const assets = FUNCTION_NAMES.map((name) => fn(name).Properties.Code.S3Key as string);
    expect(new Set(assets).size).toBe(FUNCTION_NAMES.length);
  });

  it('are created after the key ring holds keys; those that read the signing keys, after those too', () => {
    const generated = logicalId(stack.keyRing!.generated as never);
    const signing = logicalId(stack.signingKeys!.generated as never);
    for (const name of FUNCTION_NAMES) {
      const dependsOn = template.toJSON()['Resources'][fnId(name)].DependsOn as string[];
      expect(dependsOn).toContain(generated);
      expect(dependsOn.includes(signing), name).toBe(name === 'refresh' || name === 'logout');
    }
  });

  it('(v2) the API proxy: ANY /api/{proxy+} goes to the proxy function alone, which times out at 29 s, as API Gateway does, after the proxy\'s 28 s budget', () => {
    const routes = Object.values(template.findResources('AWS::ApiGatewayV2::Route')).filter((r) => String(r['Properties'].RouteKey).includes('/api/'));
    expect(routes.map((r) => r['Properties'].RouteKey)).toEqual(['ANY /api/{proxy+}']);
    const target = routes[0]!['Properties'].Target as { 'Fn::Join': [string, [string, { Ref: string }]] };
    const integration = template.toJSON()['Resources'][target['Fn::Join'][1][1].Ref];
    expect(integration.Properties).toMatchObject({ IntegrationType: 'AWS_PROXY', PayloadFormatVersion: '2.0', TimeoutInMillis: 29000, IntegrationUri: { 'Fn::GetAtt': [fnId('proxy'), 'Arn'] } });
    expect(template.toJSON()['Resources'][fnId('proxy')].Properties.Timeout).toBe(29);
    expect(PROXY_BUDGET_MS).toBeLessThan(29_000);
  });

  it.each(FUNCTION_NAMES)('%s bundles no AWS SDK: DynamoDB and Secrets Manager go through lib/aws/json-client.ts (cold start, CPU per call)', (name) => {
    const assetDir = assetDirOf(name);
    const code = readdirSync(assetDir).filter((f) => f.endsWith('.mjs')).map((f) => readFileSync(path.join(assetDir, f), 'utf8')).join('\n');
    expect(code).not.toMatch(/client-secrets-manager|DynamoDBClient|SecretsManagerClient|smithy/);
    expect(code.length).toBeLessThan(150_000);
  });
});

describe('IAM: each function gets exactly what its routes use', () => {
  const logs = (name: FunctionName): PolicyStatement => ({
    Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [logicalId(stack.functions[name].logGroup), 'Arn'] },
  });
  const xray: PolicyStatement = { Effect: 'Allow', Action: ['xray:PutTelemetryRecords', 'xray:PutTraceSegments'], Resource: '*' };
  /**
   * X-Ray and, for a function that reads secrets, the cold start's one read of them all
   * (BatchGetSecretValue, which returns only what GetSecretValue allows): neither has
   * resource-level permissions, and CDK merges the two into one statement.
   */
  const anyResource = (readsSecrets: boolean): PolicyStatement => ({ Effect: 'Allow', Action: [...(readsSecrets ? ['secretsmanager:BatchGetSecretValue'] : []), ...xray.Action as string[]], Resource: '*' });
  const batch = anyResource(true);
  /** Item actions on the items whose key starts with one of `prefixes` (`dynamodb:LeadingKeys`). */
  const items = (prefixes: string[], ...actions: string[]): PolicyStatement => ({
    Effect: 'Allow',
    Action: actions,
    Resource: tableArn(),
    Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': prefixes.map((p) => `${p}*`) } },
  });
  /** The client secret and the token key ring; with `signing`, the ID-token signing keys too. */
  const secrets = (signing = false): PolicyStatement => ({
    Effect: 'Allow',
    Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'],
    Resource: [
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':secret:oauth-broker/okta-??????']] },
      { Ref: logicalId(stack.keyRing!.secret) },
      ...(signing ? [{ Ref: logicalId(stack.signingKeys!.secret) }] : []),
    ],
  });
  const expected = (): Record<FunctionName, PolicyStatement[]> => ({
    // The anonymous front writes logins only.
    'start-login': [items(['login#'], 'dynamodb:PutItem'), logs('start-login'), xray],
    // Takes its login (a conditional UpdateItem: regression, the grant had DeleteItem from before
    // the take became an update, and no UpdateItem), creates the session; deletes nothing.
    callback: [items(['session#'], 'dynamodb:PutItem'), items(['login#'], 'dynamodb:UpdateItem'), logs('callback'), secrets(), batch],
    refresh: [items(['session#'], 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'), logs('refresh'), secrets(true), batch],
    logout: [items(['session#'], 'dynamodb:DeleteItem', 'dynamodb:GetItem'), logs('logout'), secrets(true), batch],
    metadata: [logs('metadata'), xray],
    proxy: [items(['session#'], 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:UpdateItem'), logs('proxy'), secrets(), batch],
    // (v2) Back-channel logout: deletes sessions, queries the two session indexes (not key-scoped:
    // their keys are hashes without a prefix), writes, reads and forgets only the logout-token
    // records, reads only the key ring.
    'backchannel-logout': [
      items(['session#'], 'dynamodb:DeleteItem'),
      items(['logout-jti#'], 'dynamodb:DeleteItem', 'dynamodb:GetItem', 'dynamodb:PutItem', 'dynamodb:UpdateItem'),
      {
        Effect: 'Allow',
        Action: ['dynamodb:Query'],
        Resource: ['by-idp-sid', 'by-idp-sub'].map((name) => ({ 'Fn::Join': ['', [tableArn(), `/index/${name}`]] })),
      },
      logs('backchannel-logout'),
      { Effect: 'Allow', Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], Resource: { Ref: logicalId(stack.keyRing!.secret) } },
      // One secret: read with GetSecretValue, no batch.
      anyResource(false),
    ],
  });

  it.each(FUNCTION_NAMES)('%s: every table item statement is scoped by dynamodb:LeadingKeys', (name) => {
    const itemStatements = roleStatements(template, roleId(name)).filter((s) => (s.Action as string[]).some((a) => a.startsWith('dynamodb:') && a !== 'dynamodb:Query'));
    for (const statement of itemStatements) expect(statement.Condition, JSON.stringify(statement.Action)).toHaveProperty(['ForAllValues:StringLike', 'dynamodb:LeadingKeys']);
  });

  it.each(FUNCTION_NAMES)('%s: role policy statements, exact', (name) => {
    const inOrder = (statements: PolicyStatement[]) => statements.map(normalize).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
    expect(inOrder(roleStatements(template, roleId(name)))).toEqual(inOrder(expected()[name]));
  });

  it.each(FUNCTION_NAMES)('%s: no AWS managed policy, and only X-Ray and, for a reader of several secrets, BatchGetSecretValue have a wildcard resource', (name) => {
    const role = template.toJSON()['Resources'][roleId(name)];
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const wildcards = roleStatements(template, roleId(name)).filter((s) => JSON.stringify(s.Resource).includes('*') && !JSON.stringify(s.Resource).includes('-??????'));
    expect(wildcards).toEqual([anyResource(new Set(secretsReadBy(functionSpec(name).secrets, stack.brokerConfig.config)).size > 1)]);
  });

  describe('the customer-managed key', () => {
    const keyStatements = () => {
      const key = template.toJSON()['Resources'][logicalId(stack.sessions.encryptionKey as never)];
      return key.Properties.KeyPolicy.Statement as (PolicyStatement & { Principal: { AWS: unknown } })[];
    };
    const principals = (s: { Principal: { AWS: unknown } }) => ([] as unknown[]).concat(s.Principal.AWS);
    const viaService = (service: string) => ({
      StringEquals: { 'kms:ViaService': { 'Fn::Join': ['', [`${service}.`, { Ref: 'AWS::Region' }, '.amazonaws.com']] } },
    });
    const roleArn = (id: string) => ({ 'Fn::GetAtt': [id, 'Arn'] });

    it('lets the table users (all of them write) use the key through DynamoDB only, in one statement', () => {
      const statements = keyStatements().filter((s) => JSON.stringify(s.Condition) === JSON.stringify(viaService('dynamodb')));
      expect(statements).toHaveLength(1);
      const statement = statements[0]!;
      expect(normalize(statement).Action).toEqual(['kms:Decrypt', 'kms:DescribeKey', 'kms:Encrypt', 'kms:GenerateDataKey*', 'kms:ReEncrypt*']);
      expect(principals(statement)).toEqual(expect.arrayContaining(['start-login', 'callback', 'refresh', 'logout', 'proxy', 'backchannel-logout'].map((n) => roleArn(roleId(n as FunctionName)))));
      expect(principals(statement)).toHaveLength(6);
    });

    it('lets the secret readers decrypt the key rings through Secrets Manager only', () => {
      const statement = keyStatements().find((s) => JSON.stringify(s.Condition) === JSON.stringify(viaService('secretsmanager'))
        && JSON.stringify(s.Action) === '"kms:Decrypt"')!;
      const generatorRole = logicalId(stack.keyRing!.node.findChild('GeneratorRole'));
      const signingGeneratorRole = logicalId(stack.signingKeys!.node.findChild('GeneratorRole'));
      expect(principals(statement)).toEqual(expect.arrayContaining([...['callback', 'refresh', 'logout', 'proxy', 'backchannel-logout'].map((n) => roleArn(roleId(n as FunctionName))), roleArn(generatorRole), roleArn(signingGeneratorRole)]));
      expect(principals(statement)).toHaveLength(7);
    });

    it('never names the metadata function, which touches neither table nor secret', () => {
      expect(JSON.stringify(keyStatements())).not.toContain(roleId('metadata'));
    });

    it('rotates yearly and is retained with the table', () => {
      template.hasResource('AWS::KMS::Key', { Properties: { EnableKeyRotation: true }, DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
    });
  });
});

describe('table', () => {
  it('is the one table: pk, on-demand, TTL expiresAt, PITR, deletion protection, KMS CMK, retained', () => {
    template.resourceCountIs('AWS::DynamoDB::Table', 1);
    template.hasResource('AWS::DynamoDB::Table', {
      Properties: {
        KeySchema: [{ AttributeName: 'pk', KeyType: 'HASH' }],
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'idpSubKey', AttributeType: 'S' },
          { AttributeName: 'idpSidKey', AttributeType: 'S' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
        TimeToLiveSpecification: { AttributeName: 'expiresAt', Enabled: true },
        PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
        DeletionProtectionEnabled: true,
        SSESpecification: { SSEEnabled: true, SSEType: 'KMS', KMSMasterKeyId: { 'Fn::GetAtt': [logicalId(stack.sessions.encryptionKey as never), 'Arn'] } },
      },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
  });

  it('(v2) has exactly the two sparse keys-only session indexes of back-channel logout, and no other index', () => {
    const table = template.toJSON()['Resources'][logicalId(stack.sessions.table)];
    expect(table.Properties.GlobalSecondaryIndexes).toEqual([
      { IndexName: 'by-idp-sub', KeySchema: [{ AttributeName: 'idpSubKey', KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } },
      { IndexName: 'by-idp-sid', KeySchema: [{ AttributeName: 'idpSidKey', KeyType: 'HASH' }], Projection: { ProjectionType: 'KEYS_ONLY' } },
    ]);
    expect(table.Properties.LocalSecondaryIndexes).toBeUndefined();
  });

  it('(v2) only back-channel logout may query, and only the session indexes', () => {
    const queriers = FUNCTION_NAMES.filter((name) => JSON.stringify(roleStatements(template, roleId(name))).includes('dynamodb:Query'));
    expect(queriers).toEqual(['backchannel-logout']);
  });
});

describe('key ring', () => {
  it('is a retained secret, named for the stack, encrypted with the CMK, with a placeholder and no key in the template', () => {
    template.hasResource('AWS::SecretsManager::Secret', {
      Properties: {
        Name: 'OAuthBroker/token-keys',
        KmsKeyId: { 'Fn::GetAtt': [logicalId(stack.sessions.encryptionKey as never), 'Arn'] },
        GenerateSecretString: { GenerateStringKey: 'placeholder', SecretStringTemplate: Match.stringLikeRegexp('uninitialized') },
        SecretString: Match.absent(),
      },
      DeletionPolicy: 'Retain',
    });
    expect(JSON.stringify(template.toJSON())).not.toMatch(/"keys"|"current"/);
  });

  it('is generated at deploy by the custom resource, which may read and write that secret only', () => {
    template.hasResourceProperties('Custom::BrokerKeyRing', { SecretId: { Ref: logicalId(stack.keyRing!.secret) } });
    const generatorRole = logicalId(stack.keyRing!.node.findChild('GeneratorRole'));
    const generatorLogs = logicalId(stack.keyRing!.node.findChild('GeneratorLogs'));
    expect(roleStatements(template, generatorRole)).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [generatorLogs, 'Arn'] } },
      {
        Effect: 'Allow',
        Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecret', 'secretsmanager:UpdateSecretVersionStage'],
        Resource: { Ref: logicalId(stack.keyRing!.secret) },
      },
    ]);
    const generator = template.toJSON()['Resources'][logicalId(stack.keyRing!.node.findChild('Generator'))];
    expect(generator.Properties).toMatchObject({ Runtime: 'nodejs24.x', Architectures: ['arm64'], Handler: 'index.handler' });
  });
});

describe('(v2) ID-token signing keys', () => {
  it('are a retained secret, named for the stack, encrypted with the CMK, with a placeholder and no key in the template', () => {
    template.hasResource('AWS::SecretsManager::Secret', {
      Properties: {
        Name: 'OAuthBroker/signing-keys',
        KmsKeyId: { 'Fn::GetAtt': [logicalId(stack.sessions.encryptionKey as never), 'Arn'] },
        GenerateSecretString: { GenerateStringKey: 'placeholder', SecretStringTemplate: Match.stringLikeRegexp('uninitialized') },
        SecretString: Match.absent(),
      },
      DeletionPolicy: 'Retain',
    });
    expect(JSON.stringify(template.toJSON())).not.toMatch(/"kty"|"RS256"/);
  });

  it('are generated at deploy by their own custom resource (Kind signing), which may read and write that secret only', () => {
    template.hasResourceProperties('Custom::BrokerSigningKeys', { SecretId: { Ref: logicalId(stack.signingKeys!.secret) }, Kind: 'signing' });
    template.hasResourceProperties('Custom::BrokerKeyRing', { SecretId: { Ref: logicalId(stack.keyRing!.secret) }, Kind: Match.absent() });
    const generatorRole = logicalId(stack.signingKeys!.node.findChild('GeneratorRole'));
    const generatorLogs = logicalId(stack.signingKeys!.node.findChild('GeneratorLogs'));
    expect(roleStatements(template, generatorRole)).toEqual([
      { Effect: 'Allow', Action: ['logs:CreateLogStream', 'logs:PutLogEvents'], Resource: { 'Fn::GetAtt': [generatorLogs, 'Arn'] } },
      {
        Effect: 'Allow',
        Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue', 'secretsmanager:PutSecretValue', 'secretsmanager:UpdateSecret', 'secretsmanager:UpdateSecretVersionStage'],
        Resource: { Ref: logicalId(stack.signingKeys!.secret) },
      },
    ]);
  });

  it('are readable by the refresh function (signs, serves /jwks) and the logout function (checks /end-session hints) only', () => {
    const readers = FUNCTION_NAMES.filter((name) => JSON.stringify(roleStatements(template, roleId(name))).includes(logicalId(stack.signingKeys!.secret)));
    expect(readers.sort()).toEqual(['logout', 'refresh']);
  });
});

describe('alarms', () => {
  const alarms = () => Object.values(template.findResources('AWS::CloudWatch::Alarm')).map((a) => a['Properties'] as Record<string, unknown>);

  it('are 19: errors and throttles per function, API 5xx, table throttles, upstream failure rate, login failures, and (in its own construct) API 429s', () => {
    expect(alarms()).toHaveLength(FUNCTION_NAMES.length * 2 + 4 + 1);
    expect(logicalId(stack.throttledRequests.alarm)).toMatch(/^Throttled/);
    expect([...stack.alarms.alarms.keys()].sort()).toEqual([
      ...FUNCTION_NAMES.flatMap((n) => [`${n}-errors`, `${n}-throttles`]), 'api-5xx', 'table-throttles', 'upstream-failure-rate', 'login-failures',
    ].sort());
  });

  it.each(FUNCTION_NAMES)('%s: Errors and Throttles of that function', (name) => {
    for (const metricName of ['Errors', 'Throttles']) {
      template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        Namespace: 'AWS/Lambda',
        MetricName: metricName,
        Dimensions: [{ Name: 'FunctionName', Value: { Ref: fnId(name) } }],
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
      });
    }
  });

  it('API 5xx on the API', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/ApiGateway', MetricName: '5xx', Dimensions: [{ Name: 'ApiId', Value: { Ref: logicalId(stack.api.httpApi) } }], Threshold: 5,
    });
  });

  it('DynamoDB throttles over the four item operations and the index query', () => {
    const alarm = alarms().find((a) => JSON.stringify(a['Metrics'] ?? '').includes('ThrottledRequests'))!;
    const metrics = alarm['Metrics'] as { MetricStat?: { Metric: { MetricName: string; Dimensions: { Name: string; Value: unknown }[] } } }[];
    const operations = metrics.flatMap((m) => m.MetricStat?.Metric.Dimensions.filter((d) => d.Name === 'Operation').map((d) => d.Value) ?? []);
    expect(operations.sort()).toEqual(['DeleteItem', 'GetItem', 'PutItem', 'Query', 'UpdateItem']);
    expect(metrics.filter((m) => m.MetricStat).every((m) => m.MetricStat!.Metric.MetricName === 'ThrottledRequests')).toBe(true);
  });

  it('upstream failure rate from the broker\'s EMF metrics (OAuthBroker, Service=<stack name>)', () => {
    const alarm = alarms().find((a) => JSON.stringify(a['Metrics'] ?? '').includes('UpstreamFailures'))!;
    expect(alarm).toMatchObject({ Threshold: 10, EvaluationPeriods: 3, DatapointsToAlarm: 2, TreatMissingData: 'notBreaching' });
    const metrics = alarm['Metrics'] as { Id: string; Expression?: string; MetricStat?: { Metric: Record<string, unknown>; Stat: string } }[];
    expect(metrics.find((m) => m.Expression)!.Expression).toBe('IF(FILL(requests, 0) >= 10, 100 * FILL(failures, 0) / FILL(requests, 0), 0)');
    for (const [id, metricName] of [['failures', 'UpstreamFailures'], ['requests', 'UpstreamRequests']] as const) {
      expect(metrics.find((m) => m.Id === id)!.MetricStat).toEqual({
        Metric: { Namespace: 'OAuthBroker', MetricName: metricName, Dimensions: [{ Name: 'Service', Value: 'OAuthBroker' }] },
        Period: 300,
        Stat: 'Sum',
      });
    }
  });

  it('(issue 13) have readable names, prefixed with the stack name', () => {
    expect(alarms().map((a) => a['AlarmName']).sort()).toEqual([...stack.alarms.alarms.keys(), 'throttled'].map((name) => `OAuthBroker-${name}`).sort());
  });

  it('have no actions without a topic', () => {
    for (const a of alarms()) expect(a['AlarmActions']).toBeUndefined();
  });
});

describe('outputs', () => {
  it('name the URL, the table and the key ring', () => {
    const outputs = template.toJSON()['Outputs'] as Record<string, { Value: unknown }>;
    expect(Object.values(outputs).map((o) => o.Value)).toEqual(expect.arrayContaining([
      { Ref: logicalId(stack.sessions.table) },
      'OAuthBroker/token-keys',
      'OAuthBroker/signing-keys',
    ]));
    // (issue 13) Readable names, as docs/deploy.md uses them.
    expect(Object.keys(outputs).sort()).toEqual(['BrokerUrl', 'KeyRingSecretName', 'SigningKeysSecretName', 'TableName']);
    expect(outputs['BrokerUrl']!.Value).toEqual({ 'Fn::Join': ['', ['https://', { Ref: logicalId(stack.api.httpApi) }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }, '/']] });
  });
});

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged', () => {
    expect(nagViolations(app)).toEqual([]);
  });

  it('leaves no error or warning annotation (AwsSolutions or the CDK\'s own)', () => {
    expect(Annotations.fromStack(stack).findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    expect(Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });

  it('acknowledges only these findings, each with its reason, on the construct that causes it', () => {
    const acks = acknowledgements(app);
    for (const a of acks) expect(a.reason.length).toBeGreaterThan(60);
    const summary = [...new Set(acks.map((a) => `${a.path.replace(/\/Route [A-Z]+ .*$/, '/Route *')} ${a.id.replace(/<[A-Za-z0-9]+\.Arn>/, '<generator>')}`))].sort();
    expect(summary).toEqual([
      'OAuthBroker/Fn-backchannel-logout/Role Annotation::AwsSolutions-IAM5[Resource::*]',
      'OAuthBroker/Fn-callback/Role Annotation::AwsSolutions-IAM5[Resource::*]',
      'OAuthBroker/Fn-logout/Role Annotation::AwsSolutions-IAM5[Resource::*]',
      'OAuthBroker/Fn-metadata/Role Annotation::AwsSolutions-IAM5[Resource::*]',
      'OAuthBroker/Fn-proxy/Role Annotation::AwsSolutions-IAM5[Resource::*]',
      'OAuthBroker/Fn-refresh/Role Annotation::AwsSolutions-IAM5[Resource::*]',
      'OAuthBroker/Fn-start-login/Role Annotation::AwsSolutions-IAM5[Resource::*]',
      'OAuthBroker/Http/Route * Annotation::AwsSolutions-APIG4',
      'OAuthBroker/KeyRing/ProviderRole Annotation::AwsSolutions-IAM5[Resource::<generator>:*]',
      'OAuthBroker/KeyRing/Secret Annotation::AwsSolutions-SMG4',
      'OAuthBroker/SigningKeys/ProviderRole Annotation::AwsSolutions-IAM5[Resource::<generator>:*]',
      'OAuthBroker/SigningKeys/Secret Annotation::AwsSolutions-SMG4',
    ]);
    expect(acks.filter((a) => a.id.endsWith('APIG4'))).toHaveLength(routeTable().length);
  });
});
