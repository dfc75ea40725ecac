/**
 * The optional edge (infra/constructs/broker-edge.ts): off unless asked for; when on, a CloudFront
 * distribution on the broker's domain with the WAF limits, the cache behaviours and the
 * forwarding the broker needs, cdk-nag clean. No bundling: the code assets are another file's.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Annotations, Match, type Template } from 'aws-cdk-lib/assertions';
import { beforeAll, describe, expect, it } from 'vitest';
import { createBrokerApp, stackPropsFromContext } from '../../infra/broker-app.js';
import { BrokerStack } from '../../infra/broker-stack.js';
import { EXAMPLE_CONFIG_PATH } from '../../infra/config.js';
import { cdkJsonContext, logicalId, nagViolations, NO_BUNDLING, synthBroker, SYNTH_TIMEOUT } from './support.js';

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
  it('the stack has no distribution, no web ACL, no template rule', () => {
    const { stack, template } = synthBroker(NO_BUNDLING);
    expect(stack.edge).toBeUndefined();
    template.resourceCountIs('AWS::CloudFront::Distribution', 0);
    template.resourceCountIs('AWS::WAFv2::WebACL', 0);
    expect(template.toJSON()['Rules'] ?? {}).not.toHaveProperty(Match.stringLikeRegexp('Edge') as unknown as string);
    expect(Object.keys(template.toJSON()['Rules'] ?? {}).filter((id) => id.startsWith('Edge'))).toEqual([]);
  }, SYNTH_TIMEOUT.timeout);

  it('edge=false is off too', () => {
    expect(stackPropsFromContext(new App({ context: { edge: 'false' } }), {}).edge).toBeUndefined();
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
    const policyId = { Ref: Match.stringLikeRegexp('^EdgePublicDocuments') };
    expect(behaviours.map((b) => b['PathPattern'])).toEqual(['/.well-known/*', '/jwks']);
    for (const behaviour of behaviours) {
      expect(behaviour).toMatchObject({ AllowedMethods: ['GET', 'HEAD'], CachedMethods: ['GET', 'HEAD'], ViewerProtocolPolicy: 'https-only', Compress: true });
      expect(behaviour).not.toHaveProperty('OriginRequestPolicyId');
      expect(JSON.stringify(behaviour['CachePolicyId'])).toMatch(/"Ref":"EdgePublicDocuments/);
    }
    expect(policyId).toBeDefined();
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
    const group = only(template, 'AWS::Logs::LogGroup' as string) as Resource | undefined;
    expect(group).toBeUndefined();
  });

  it('the stack fails to deploy outside us-east-1, before it creates anything', () => {
    const rules = template.toJSON()['Rules'] as Record<string, { Assertions: unknown[] }>;
    expect(rules[logicalId(stack.edge!.node.findChild('RegionRule'))]).toEqual({
      Assertions: [{ Assert: { 'Fn::Equals': [{ Ref: 'AWS::Region' }, 'us-east-1'] }, AssertDescription: expect.stringContaining('only in us-east-1') }],
    });
  });

  it('outputs the edge URL and the DNS target', () => {
    const outputs = Object.values(template.toJSON()['Outputs'] as Record<string, { Value: unknown }>).map((o) => o.Value);
    expect(outputs).toEqual(expect.arrayContaining([
      'https://auth.example.com',
      { 'Fn::GetAtt': [logicalId(stack.edge!.distribution), 'DomainName'] },
    ]));
  });

  it('cdk-nag finds nothing unacknowledged, the CDK warns of nothing, and the app synthesizes', () => {
    expect(nagViolations(app)).toEqual([]);
    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
    expect(Annotations.fromStack(stack).findError('*', Match.anyValue())).toEqual([]);
    expect(() => app.synth()).not.toThrow();
  });
});
