/**
 * The stack with every option: a custom domain, an alarm topic, context sizes, and a
 * configuration that names its own key ring and references secrets by ARN. No bundling here
 * (the assets are the other file's concern), so this synth is quick.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { App } from 'aws-cdk-lib';
import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { FUNCTION_NAMES, type FunctionName } from '../../functions/manifest.js';
import type { BrokerStack } from '../../infra/broker-stack.js';
import { EXAMPLE_CONFIG_PATH } from '../../infra/config.js';
import { logicalId, nagViolations, NO_BUNDLING, roleStatements, synthBroker, SYNTH_TIMEOUT } from './support.js';

const KEY_RING_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/broker-keys-AbC123';
const SIGNING_KEYS_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:team/signing-keys-DeF456';
const OKTA_ARN = 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:oauth-broker/okta-Xy9876';
const CERTIFICATE_ARN = 'arn:aws:acm:eu-west-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc';
const TOPIC_ARN = 'arn:aws:sns:eu-west-1:123456789012:broker-alarms';

let app: App;
let stack: BrokerStack;
let template: Template;

beforeAll(() => {
  const example = JSON.parse(readFileSync(EXAMPLE_CONFIG_PATH, 'utf8')) as { providers: Record<string, Record<string, unknown>> };
  const okta = example.providers['okta']!;
  const file = path.join(mkdtempSync(path.join(tmpdir(), 'broker-infra-domain-')), 'config.json');
  writeFileSync(file, JSON.stringify({
    ...example,
    providers: {
      okta: { ...okta, clientSecret: { secretsManager: OKTA_ARN, jsonKey: 'client_secret' } },
      entra: { ...okta, issuer: 'https://login.microsoftonline.com/tenant/v2.0', clientSecret: { secretsManager: 'oauth-broker/entra' } },
    },
    tokenEncryptionKeys: { secretsManager: KEY_RING_ARN },
    signingKeys: { secretsManager: SIGNING_KEYS_ARN },
  }));
  ({ app, stack, template } = synthBroker({
    ...NO_BUNDLING,
    brokerConfig: file,
    stackName: 'AuthProd',
    domainName: 'auth.example.com',
    certificateArn: CERTIFICATE_ARN,
    alarmTopicArn: TOPIC_ARN,
    throttlingRateLimit: '200',
    throttlingBurstLimit: '400',
    memorySize: '1024',
    logRetentionDays: '90',
  }));
}, SYNTH_TIMEOUT.timeout);

describe('custom domain', () => {
  it('is a regional TLS 1.2 domain with the given certificate, mapped to the $default stage', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', {
      DomainName: 'auth.example.com',
      DomainNameConfigurations: [{ CertificateArn: CERTIFICATE_ARN, EndpointType: 'REGIONAL', SecurityPolicy: 'TLS_1_2' }],
    });
    template.resourceCountIs('AWS::ApiGatewayV2::ApiMapping', 1);
    template.hasResource('AWS::ApiGatewayV2::ApiMapping', {
      Properties: { ApiId: { Ref: logicalId(stack.api.httpApi) }, DomainName: { Ref: logicalId(stack.api.domainName!) }, Stage: '$default' },
      DependsOn: Match.arrayWith([logicalId(stack.api.stage)]),
    });
  });

  it('switches the execute-api endpoint off: the broker has one origin', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { DisableExecuteApiEndpoint: true });
  });

  it('outputs the DNS target, under the readable names docs/deploy.md uses (issue 13)', () => {
    const outputs = template.toJSON()['Outputs'] as Record<string, { Value: unknown }>;
    expect(outputs['BrokerUrl']!.Value).toBe('https://auth.example.com');
    expect(outputs['DomainTarget']!.Value).toEqual({ 'Fn::GetAtt': [logicalId(stack.api.domainName!), 'RegionalDomainName'] });
    expect(outputs['DomainHostedZoneId']!.Value).toEqual({ 'Fn::GetAtt': [logicalId(stack.api.domainName!), 'RegionalHostedZoneId'] });
  });
});

describe('context sizes', () => {
  it('throttling, memory and log retention come from the context', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Stage', { DefaultRouteSettings: { ThrottlingRateLimit: 200, ThrottlingBurstLimit: 400 } });
    for (const name of FUNCTION_NAMES) {
      expect(template.toJSON()['Resources'][logicalId(stack.functions[name].function)].Properties.MemorySize).toBe(1024);
      expect(template.toJSON()['Resources'][logicalId(stack.functions[name].logGroup)].Properties.RetentionInDays).toBe(90);
    }
  });
});

describe('a configuration that names its own key ring and signing keys', () => {
  it('creates no key ring, no signing keys, no generator, no placeholder secret', () => {
    expect(stack.keyRing).toBeUndefined();
    expect(stack.signingKeys).toBeUndefined();
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
    template.resourceCountIs('Custom::BrokerKeyRing', 0);
    template.resourceCountIs('Custom::BrokerSigningKeys', 0);
    expect(stack.brokerConfig.usesCreatedKeyRing).toBe(false);
    expect(stack.brokerConfig.usesCreatedSigningKeys).toBe(false);
  });

  it.each(['callback', 'refresh', 'logout', 'proxy'] as FunctionName[])('%s reads exactly the configured secrets: ARN as given, name as name-??????', (name) => {
    const secrets = roleStatements(template, logicalId(stack.functions[name].role)).filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'));
    const sorted = (resources: unknown) => (resources as unknown[]).map((r) => JSON.stringify(r)).sort();
    expect(secrets).toHaveLength(1);
    expect(secrets[0]).toMatchObject({ Effect: 'Allow', Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'] });
    expect(sorted(secrets[0]!.Resource)).toEqual(sorted([
      OKTA_ARN,
      KEY_RING_ARN,
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':secretsmanager:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':secret:oauth-broker/entra-??????']] },
      // The signing keys only where ID tokens are signed (refresh) or checked (logout).
      ...(name === 'callback' || name === 'proxy' ? [] : [SIGNING_KEYS_ARN]),
    ]));
  });

  it('(v2) backchannel-logout reads the configured key ring and nothing else', () => {
    const secrets = roleStatements(template, logicalId(stack.functions['backchannel-logout'].role)).filter((s) => [s.Action].flat().includes('secretsmanager:GetSecretValue'));
    expect(secrets).toEqual([{ Effect: 'Allow', Action: ['secretsmanager:DescribeSecret', 'secretsmanager:GetSecretValue'], Resource: KEY_RING_ARN }]);
  });

  it.each(['start-login', 'metadata'] as FunctionName[])('%s reads no secret', (name) => {
    const actions = roleStatements(template, logicalId(stack.functions[name].role)).flatMap((s) => s.Action as string[]);
    expect(actions.filter((a) => a.startsWith('secretsmanager:'))).toEqual([]);
  });
});

describe('alarm topic', () => {
  it('gets every alarm and every return to OK', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm'));
    expect(alarms).toHaveLength(19);
    for (const alarm of alarms) {
      expect(alarm['Properties']).toMatchObject({ AlarmActions: [TOPIC_ARN], OKActions: [TOPIC_ARN] });
    }
  });
});

describe('checks', () => {
  it('cdk-nag AwsSolutions finds nothing unacknowledged', () => {
    expect(nagViolations(app)).toEqual([]);
  });

  it('the CDK itself warns of nothing', () => {
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
  });
});
