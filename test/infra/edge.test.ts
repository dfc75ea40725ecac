/**
 * The optional edge (infra/constructs/broker-edge.ts): off unless asked for; when on, a CloudFront
 * distribution on the broker's domain with the WAF limits, the cache behaviours and the
 * forwarding the broker needs, cdk-nag clean. No bundling: the code assets are another file's.
 */
import { App } from 'aws-cdk-lib';
import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { stackPropsFromContext } from '../../infra/broker-app.js';
import { BrokerStack } from '../../infra/broker-stack.js';
import { EXAMPLE_CONFIG_PATH, OperatorInputError } from '../../infra/config.js';
import { acknowledgements, cdkJsonContext, logicalId, nagViolations, NO_BUNDLING, synthBroker, SYNTH_TIMEOUT } from './support.js';

const EDGE_CERTIFICATE_ARN = 'arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-123456789abc';
const REGIONAL_CERTIFICATE_ARN = 'arn:aws:acm:eu-west-1:123456789012:certificate/1a2b3c4d-aaaa-bbbb-cccc-123456789abc';
const WEB_ACL_ARN = 'arn:aws:wafv2:us-east-1:123456789012:global/webacl/broker-edge/a1b2c3d4-5678-90ab-cdef-1234567890ab';
/** CloudFront's managed policies, by their fixed ids. */
const CACHING_DISABLED = '4135ea2d-6df8-44a3-9df3-4b5a84be39ad';
const ALL_VIEWER_EXCEPT_HOST_HEADER = 'b689b0a8-53d0-40ab-baf2-68738e2966ac';

const EDGE = { edge: 'true', edgeDomainName: 'auth.example.com', edgeCertificateArn: EDGE_CERTIFICATE_ARN };

type Resource = { Type: string; Properties: Record<string, unknown> };
const only = (template: Template, type: string): Resource => {
  const found = Object.values(template.findResources(type)) as Resource[];
  expect(found).toHaveLength(1);
  return found[0]!;
};

describe('the edge is off by default', () => {
  it('the stack has no distribution, no web ACL, no WAF logs, no template rule', () => {
    const { stack, template } = synthBroker(NO_BUNDLING);
    expect(stack.edge).toBeUndefined();
    for (const type of ['AWS::CloudFront::Distribution', 'AWS::CloudFront::CachePolicy', 'AWS::WAFv2::WebACL', 'AWS::WAFv2::LoggingConfiguration']) {
      template.resourceCountIs(type, 0);
    }
    expect(Object.values(template.findResources('AWS::Logs::LogGroup')).map((g) => JSON.stringify(g['Properties'].LogGroupName ?? ''))).not.toContainEqual(expect.stringContaining('aws-waf-logs'));
    expect(Object.keys(template.toJSON()['Rules'] ?? {}).filter((id) => id.startsWith('Edge'))).toEqual([]);
  }, SYNTH_TIMEOUT.timeout);

  it('edge=false is off too', () => {
    expect(stackPropsFromContext(new App({ context: { brokerConfig: EXAMPLE_CONFIG_PATH, edge: 'false' } }), {}).edge).toBeUndefined();
  });
});

describe('the edge, on, with the web ACL it creates (a us-east-1 stack)', () => {
  let app: App;
  let stack: BrokerStack;
  let template: Template;
  beforeAll(() => {
    ({ app, stack, template } = synthBroker({ ...NO_BUNDLING, ...EDGE, edgeLoginRateLimit: '120', edgeCallbackRateLimit: '60' }));
  }, SYNTH_TIMEOUT.timeout);

  const distribution = () => only(template, 'AWS::CloudFront::Distribution').Properties['DistributionConfig'] as Record<string, unknown>;

  it('serves the broker\'s domain with the us-east-1 certificate, TLS 1.2 and SNI, behind the web ACL', () => {
    expect(distribution()).toMatchObject({
      Enabled: true,
      Aliases: ['auth.example.com'],
      ViewerCertificate: { AcmCertificateArn: EDGE_CERTIFICATE_ARN, MinimumProtocolVersion: 'TLSv1.2_2021', SslSupportMethod: 'sni-only' },
      WebACLId: { 'Fn::GetAtt': [logicalId(stack.edge!.webAcl!), 'Arn'] },
      HttpVersion: 'http2and3',
      PriceClass: 'PriceClass_100',
    });
  });

  it('has one origin, the API\'s execute-api host, over https with TLS 1.2 only', () => {
    const origins = distribution()['Origins'] as Record<string, unknown>[];
    expect(origins).toHaveLength(1);
    expect(origins[0]).toMatchObject({
      DomainName: { 'Fn::Join': ['', [{ Ref: logicalId(stack.api.httpApi) }, '.execute-api.', { Ref: 'AWS::Region' }, '.', { Ref: 'AWS::URLSuffix' }]] },
      CustomOriginConfig: { OriginProtocolPolicy: 'https-only', OriginSSLProtocols: ['TLSv1.2'], OriginReadTimeout: 35 },
    });
  });

  it('caches nothing by default and forwards every method, header but Host, cookie and query string', () => {
    expect(distribution()['DefaultCacheBehavior']).toMatchObject({
      CachePolicyId: CACHING_DISABLED,
      OriginRequestPolicyId: ALL_VIEWER_EXCEPT_HOST_HEADER,
      AllowedMethods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'PATCH', 'POST', 'DELETE'],
      ViewerProtocolPolicy: 'https-only',
    });
  });

  it('caches the discovery documents and /jwks, GET and HEAD only, keyed by path alone, as the origin allows up to 60 s', () => {
    const behaviours = distribution()['CacheBehaviors'] as Record<string, unknown>[];
    expect(behaviours.map((b) => b['PathPattern'])).toEqual(['/.well-known/*', '/jwks']);
    for (const behaviour of behaviours) {
      expect(behaviour).toMatchObject({ AllowedMethods: ['GET', 'HEAD'], CachedMethods: ['GET', 'HEAD'], ViewerProtocolPolicy: 'https-only', Compress: true });
      expect(behaviour).not.toHaveProperty('OriginRequestPolicyId');
      expect(behaviour['CachePolicyId']).toEqual({ Ref: Object.keys(template.findResources('AWS::CloudFront::CachePolicy'))[0] });
    }
    expect(only(template, 'AWS::CloudFront::CachePolicy').Properties['CachePolicyConfig']).toMatchObject({
      MinTTL: 0,
      DefaultTTL: 0,
      MaxTTL: 60,
      ParametersInCacheKeyAndForwardedToOrigin: {
        HeadersConfig: { HeaderBehavior: 'none' },
        CookiesConfig: { CookieBehavior: 'none' },
        QueryStringsConfig: { QueryStringBehavior: 'none' },
        EnableAcceptEncodingGzip: true,
        EnableAcceptEncodingBrotli: true,
      },
    });
  });

  it('keeps no origin 5xx at the edge', () => {
    expect(distribution()['CustomErrorResponses']).toEqual([500, 502, 503, 504].map((ErrorCode) => ({ ErrorCode, ErrorCachingMinTTL: 0 })));
  });

  it('the web ACL answers 429 past the limits per client IP on /login and /callback, and allows everything else', () => {
    const scopeDown = (path: string) => ({
      ByteMatchStatement: {
        FieldToMatch: { UriPath: {} },
        PositionalConstraint: 'STARTS_WITH',
        SearchString: path,
        TextTransformations: [{ Priority: 0, Type: 'URL_DECODE' }, { Priority: 1, Type: 'NORMALIZE_PATH' }],
      },
    });
    const rule = (Name: string, Priority: number, path: string, Limit: number) => ({
      Name,
      Priority,
      Action: { Block: { CustomResponse: { ResponseCode: 429 } } },
      Statement: { RateBasedStatement: { AggregateKeyType: 'IP', EvaluationWindowSec: 300, Limit, ScopeDownStatement: scopeDown(path) } },
      VisibilityConfig: { CloudWatchMetricsEnabled: true, MetricName: `OAuthBroker-${Name}`, SampledRequestsEnabled: false },
    });
    const acl = only(template, 'AWS::WAFv2::WebACL').Properties;
    expect(acl).toMatchObject({ Scope: 'CLOUDFRONT', DefaultAction: { Allow: {} } });
    expect(acl['Rules']).toEqual([rule('login-per-ip', 0, '/login', 120), rule('callback-per-ip', 1, '/callback', 60)]);
  });

  it('the limits default to 300 per IP per 5 minutes', () => {
    const { template: defaults } = synthBroker({ ...NO_BUNDLING, ...EDGE });
    const limits = (only(defaults, 'AWS::WAFv2::WebACL').Properties['Rules'] as { Statement: { RateBasedStatement: { Limit: number } } }[])
      .map((r) => r.Statement.RateBasedStatement.Limit);
    expect(limits).toEqual([300, 300]);
  }, SYNTH_TIMEOUT.timeout);

  it('WAF logs every request to an aws-waf-logs-* group, without query string, Cookie, Authorization or DPoP', () => {
    const wafLogs = logicalId(stack.edge!.wafLogs!);
    expect(template.toJSON()['Resources'][wafLogs]).toMatchObject({
      Type: 'AWS::Logs::LogGroup',
      Properties: {
        LogGroupName: { 'Fn::Join': ['', ['aws-waf-logs-OAuthBroker-', { 'Fn::Select': [0, { 'Fn::Split': ['-', { 'Fn::Select': [2, { 'Fn::Split': ['/', { Ref: 'AWS::StackId' }] }] }] }] }]] },
        RetentionInDays: 30,
      },
      DeletionPolicy: 'Retain',
    });
    expect(only(template, 'AWS::WAFv2::LoggingConfiguration').Properties).toEqual({
      ResourceArn: { 'Fn::GetAtt': [logicalId(stack.edge!.webAcl!), 'Arn'] },
      LogDestinationConfigs: [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':logs:', { Ref: 'AWS::Region' }, ':', { Ref: 'AWS::AccountId' }, ':log-group:', { Ref: wafLogs }]] }],
      RedactedFields: [{ QueryString: {} }, { SingleHeader: { Name: 'cookie' } }, { SingleHeader: { Name: 'authorization' } }, { SingleHeader: { Name: 'dpop' } }],
    });
  });

  it('the stack fails to deploy outside us-east-1, before it creates anything', () => {
    const rules = template.toJSON()['Rules'] as Record<string, { Assertions: unknown[] }>;
    expect(rules[logicalId(stack.edge!.node.findChild('RegionRule'))]).toEqual({
      Assertions: [{ Assert: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] }, AssertDescription: expect.stringContaining('only in us-east-1') }],
    });
  });

  it('outputs the edge URL and the DNS target', () => {
    const outputs = template.toJSON()['Outputs'] as Record<string, { Value: unknown }>;
    expect(outputs['EdgeUrl']!.Value).toBe('https://auth.example.com');
    expect(outputs['EdgeDomainTarget']!.Value).toEqual({ 'Fn::GetAtt': [logicalId(stack.edge!.distribution), 'DomainName'] });
    expect(outputs['EdgeHostedZoneId']!.Value).toEqual({ 'Fn::FindInMap': ['AWSCloudFrontPartitionHostedZoneIdMap', { Ref: 'AWS::Partition' }, 'zoneId'] });
  });

  it('acknowledges exactly two cdk-nag findings on the distribution, each with its reason', () => {
    const edgeAcks = acknowledgements(app).filter((a) => a.path.startsWith('OAuthBroker/Edge/'));
    expect(edgeAcks.map(({ path, id }) => ({ path, id }))).toEqual([
      { path: 'OAuthBroker/Edge/Distribution', id: 'Annotation::AwsSolutions-CFR1' },
      { path: 'OAuthBroker/Edge/Distribution', id: 'Annotation::AwsSolutions-CFR3' },
    ]);
    expect(edgeAcks[1]!.reason).toMatch(/query string, which on \/callback carries the authorization code/);
  });

  it('cdk-nag finds nothing unacknowledged, the CDK warns of nothing, and the app synthesizes', () => {
    expect(nagViolations(app)).toEqual([]);
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
    expect(() => app.synth()).not.toThrow();
  });
});

describe('the edge with a web ACL made elsewhere, in front of an API with its own domain (a stack in another region)', () => {
  let app: App;
  let stack: BrokerStack;
  let template: Template;
  beforeAll(() => {
    ({ app, stack, template } = synthBroker({
      ...NO_BUNDLING, ...EDGE, edgeWebAclArn: WEB_ACL_ARN,
      domainName: 'origin.auth.example.com', certificateArn: REGIONAL_CERTIFICATE_ARN,
    }));
  }, SYNTH_TIMEOUT.timeout);

  it('attaches that web ACL and creates none, nor its logs, nor the region rule', () => {
    expect(stack.edge!.webAcl).toBeUndefined();
    template.resourceCountIs('AWS::WAFv2::WebACL', 0);
    template.resourceCountIs('AWS::WAFv2::LoggingConfiguration', 0);
    expect(Object.keys(template.toJSON()['Rules'] as object)).toEqual(['CheckBootstrapVersion']);
    template.hasResourceProperties('AWS::CloudFront::Distribution', { DistributionConfig: Match.objectLike({ WebACLId: WEB_ACL_ARN }) });
  });

  it('the origin is the API\'s custom domain (its execute-api endpoint is off)', () => {
    template.hasResourceProperties('AWS::ApiGatewayV2::Api', { DisableExecuteApiEndpoint: true });
    template.hasResourceProperties('AWS::ApiGatewayV2::DomainName', { DomainName: 'origin.auth.example.com' });
    template.hasResourceProperties('AWS::CloudFront::Distribution', {
      DistributionConfig: Match.objectLike({ Origins: [Match.objectLike({ DomainName: { Ref: logicalId(stack.api.domainName!) } })], Aliases: ['auth.example.com'] }),
    });
  });

  it('is cdk-nag clean and synthesizes', () => {
    expect(nagViolations(app)).toEqual([]);
    expect(() => app.synth()).not.toThrow();
  });
});

describe('the edge\'s settings are checked at synth', () => {
  const props = (context: Record<string, unknown>) => stackPropsFromContext(new App({ context: { brokerConfig: EXAMPLE_CONFIG_PATH, ...context } }), {});

  it.each([
    [{ edgeDomainName: 'auth.example.com' }, /edgeDomainName configure the edge, which is off/],
    [{ edge: 'false', edgeLoginRateLimit: '100' }, /edgeLoginRateLimit configure the edge, which is off/],
    [{ edge: 'yes' }, /context edge must be "true" or "false"/],
    [{ edge: 'true', edgeDomainName: 'auth.example.com' }, /needs edgeDomainName .* and edgeCertificateArn/],
    [{ ...EDGE, edgeCertificateArn: REGIONAL_CERTIFICATE_ARN }, /edge certificate must be in us-east-1, .*\(got eu-west-1\)/],
    [{ ...EDGE, edgeCertificateArn: 'auth.example.com' }, /edge certificate must be an ACM certificate ARN/],
    [{ ...EDGE, edgeDomainName: 'https://auth.example.com' }, /edge domain name must be a lower-case host name/],
    [{ ...EDGE, edgeWebAclArn: 'arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/broker/a1b2c3d4-5678-90ab-cdef-1234567890ab' }, /CloudFront-scoped \(global\)/],
    [{ ...EDGE, edgeWebAclArn: 'arn:aws:wafv2:eu-west-1:123456789012:global/webacl/broker/a1b2c3d4-5678-90ab-cdef-1234567890ab' }, /edge web ACL must be in us-east-1/],
    [{ ...EDGE, edgeWebAclArn: WEB_ACL_ARN, edgeCallbackRateLimit: '100' }, /rate limits belong to the web ACL the edge creates/],
    [{ ...EDGE, edgeLoginRateLimit: '5' }, /edge login rate limit must be a whole number .* from 10/],
    [{ ...EDGE, edgeCallbackRateLimit: '12.5' }, /context edgeCallbackRateLimit must be a whole number/],
  ])('%j is refused', (context, message) => {
    expect(() => props(context)).toThrow(message);
    // An operator's mistake: infra/app.ts prints the message alone, without a stack trace.
    expect(() => props(context)).toThrow(OperatorInputError);
  });

  it('a publicUrl on another host than the edge\'s is refused', () => {
    expect(() => synthBroker({ ...NO_BUNDLING, ...EDGE, edgeDomainName: 'login.example.com' })).toThrow(/publicUrl \(https:\/\/auth.example.com\) must be https:\/\/login.example.com, the edge's domain/);
  });

  it('the edge and the API on one domain are refused: the API needs its own name to be the origin', () => {
    expect(() => synthBroker({ ...NO_BUNDLING, ...EDGE, domainName: 'auth.example.com', certificateArn: REGIONAL_CERTIFICATE_ARN }))
      .toThrow(/the edge and the API's custom domain are both auth.example.com/);
  });

  it('a stack pinned to another region must name a web ACL made in us-east-1', () => {
    const app = new App({ context: { ...cdkJsonContext(), ...NO_BUNDLING } });
    const edge = { domainName: 'auth.example.com', certificateArn: EDGE_CERTIFICATE_ARN };
    expect(() => new BrokerStack(app, 'Pinned', { env: { account: '123456789012', region: 'eu-west-1' }, configPath: EXAMPLE_CONFIG_PATH, edge }))
      .toThrow(/exists only in us-east-1: deploy this stack there \(it is in eu-west-1\)/);
    const pinned = new BrokerStack(app, 'PinnedWithAcl', { env: { account: '123456789012', region: 'eu-west-1' }, configPath: EXAMPLE_CONFIG_PATH, edge: { ...edge, webAclArn: WEB_ACL_ARN } });
    expect(pinned.edge!.webAcl).toBeUndefined();
  });
});
