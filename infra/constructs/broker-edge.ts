/**
 * The optional edge (docs/deploy.md, "The edge"): a CloudFront distribution on the broker's own
 * host name in front of the HTTP API, with an AWS WAF web ACL that limits `/login` and
 * `/callback` per client IP (an HTTP API cannot take a web ACL itself). The discovery documents
 * and `/jwks` are cached at the edge for at most a minute, as the origin's `Cache-Control`
 * allows; nothing else is cached, and everything else reaches the API as the viewer sent it
 * (every header but `Host`, every cookie, the query string, every method).
 *
 * A CloudFront-scoped web ACL exists only in us-east-1. The construct creates one when the stack
 * is deployed there (a template rule makes a deploy elsewhere fail before it creates anything);
 * a broker in another region names a web ACL made in us-east-1 (`webAclArn`).
 */
import { ArnFormat, Aws, CfnOutput, CfnRule, Duration, Fn, Stack, Token } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as cloudfront from 'aws-cdk-lib/aws-cloudfront';
import * as origins from 'aws-cdk-lib/aws-cloudfront-origins';
import * as logs from 'aws-cdk-lib/aws-logs';
import { CloudFrontTarget } from 'aws-cdk-lib/aws-route53-targets';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { OperatorInputError } from '../config.js';
import { acknowledgeNag } from '../nag.js';
import type { BrokerApi } from './broker-api.js';

/** The only region CloudFront takes certificates and CloudFront-scoped web ACLs from. */
export const EDGE_REGION = 'us-east-1';

/** The longest the edge keeps a discovery document or the JWKS, whatever the origin allows. */
export const EDGE_CACHE_MAX_TTL = Duration.seconds(60);

/** The window WAF counts a client IP's requests over (its default, and what the limits mean). */
export const RATE_LIMIT_WINDOW_SECONDS = 300;

/** The default limit of each rule: requests per client IP per 5 minutes (a login is one `/login` and one `/callback`). */
export const DEFAULT_RATE_LIMIT = 300;

/** WAF's bounds for a rate-based rule's limit (requests per IP per window). */
export const RATE_LIMIT_MIN = 10;
export const RATE_LIMIT_MAX = 2_000_000_000;

/** The paths the edge caches: the two discovery documents and the broker's JWKS. */
export const EDGE_CACHED_PATHS = ['/.well-known/*', '/jwks'] as const;

/**
 * Request parts WAF's logs never hold: the query string (a callback's carries the authorization
 * code, `/end-session`'s an ID token), and the headers that carry the session cookie, a bearer
 * token or a DPoP proof.
 */
export const WAF_REDACTED_HEADERS = ['cookie', 'authorization', 'dpop'] as const;

export interface EdgeProps {
  /** The broker's public host name, served by the distribution (the host of `publicUrl`). */
  readonly domainName: string;
  /** An ACM certificate for `domainName` in us-east-1 (CloudFront takes no other region). */
  readonly certificateArn: string;
  /**
   * A web ACL (scope `CLOUDFRONT`, so made in us-east-1) to attach instead of creating one: for
   * a broker stack in another region. Its rules are then its owner's (docs/deploy.md).
   *
   * @default - this construct creates the web ACL, and the stack must be deployed in us-east-1
   */
  readonly webAclArn?: string;
  /**
   * Requests per client IP per 5 minutes to `/login` before WAF answers `429`.
   *
   * @default 300
   */
  readonly loginRateLimit?: number;
  /**
   * Requests per client IP per 5 minutes to `/callback` before WAF answers `429`.
   *
   * @default 300
   */
  readonly callbackRateLimit?: number;
}

export interface BrokerEdgeProps extends EdgeProps {
  /** The API behind the edge: its custom domain's name is the origin when it has one, else its execute-api host. */
  readonly api: BrokerApi;
  /**
   * How long the WAF logs are kept.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Where CloudFront serves from.
   *
   * @default cloudfront.PriceClass.PRICE_CLASS_100 (North America, Europe, Israel)
   */
  readonly priceClass?: cloudfront.PriceClass;
}

export class BrokerEdge extends Construct {
  readonly distribution: cloudfront.Distribution;
  /** The web ACL this construct created; undefined when `webAclArn` names one. */
  readonly webAcl: wafv2.CfnWebACL | undefined;
  /** Where the created web ACL logs; undefined with `webAclArn`. */
  readonly wafLogs: logs.LogGroup | undefined;
  /** The host CloudFront sends requests to. */
  readonly originDomainName: string;
  /** `https://<domainName>`, the configuration's `publicUrl`. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: BrokerEdgeProps) {
    super(scope, id);
    const stack = Stack.of(this);
    validateEdgeProps(props);
    const apiDomain = props.api.domainName;
    // (`apiDomain.name` is a reference to the domain resource; its URL holds the name as given.)
    if (apiDomain && new URL(props.api.url).host === props.domainName) {
      throw new OperatorInputError(`the edge and the API's custom domain are both ${props.domainName}: give the API another name (the origin), or no custom domain`);
    }

    if (props.webAclArn === undefined) {
      if (!Token.isUnresolved(stack.region) && stack.region !== EDGE_REGION) {
        throw new OperatorInputError(`the edge creates a CloudFront web ACL, which exists only in ${EDGE_REGION}: deploy this stack there (it is in ${stack.region}), or give the edge a web ACL made in ${EDGE_REGION}`);
      }
      // An environment-agnostic stack learns its region at deploy time: refuse before anything is created.
      new CfnRule(this, 'RegionRule', {
        assertions: [{
          assert: Fn.conditionEquals(Aws.REGION, EDGE_REGION),
          assertDescription: `The broker's edge creates a CloudFront web ACL, which exists only in ${EDGE_REGION}: deploy this stack there, or give the edge a web ACL made in ${EDGE_REGION} (-c edgeWebAclArn=...).`,
        }],
      });
      this.webAcl = rateLimitWebAcl(this, stack.stackName, props.loginRateLimit ?? DEFAULT_RATE_LIMIT, props.callbackRateLimit ?? DEFAULT_RATE_LIMIT);
      this.wafLogs = new logs.LogGroup(this, 'WafLogs', {
        // WAF logs only to groups named aws-waf-logs-*; the stack id's random part lets a
        // redeploy after `cdk destroy` create its own group beside the retained one.
        logGroupName: `aws-waf-logs-${stack.stackName}-${Fn.select(0, Fn.split('-', Fn.select(2, Fn.split('/', Aws.STACK_ID))))}`,
        retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      });
      new wafv2.CfnLoggingConfiguration(this, 'WafLogging', {
        resourceArn: this.webAcl.attrArn,
        // WAF wants the group's ARN without the `:*` that `logGroupArn` ends with.
        logDestinationConfigs: [stack.formatArn({ service: 'logs', resource: 'log-group', resourceName: this.wafLogs.logGroupName, arnFormat: ArnFormat.COLON_RESOURCE_NAME })],
        redactedFields: [{ queryString: {} }, ...WAF_REDACTED_HEADERS.map((name) => ({ singleHeader: { Name: name } }))],
      });
    }

    this.originDomainName = apiDomain ? apiDomain.name : `${props.api.httpApi.apiId}.execute-api.${stack.region}.${stack.urlSuffix}`;
    const origin = new origins.HttpOrigin(this.originDomainName, {
      protocolPolicy: cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
      originSslProtocols: [cloudfront.OriginSslPolicy.TLS_V1_2],
      // Longer than API Gateway's 30 s integration limit, so the API's own 504 comes back first.
      readTimeout: Duration.seconds(35),
    });

    // Public, cookie-less GETs: the cache key is the path alone, and the origin's Cache-Control
    // decides (`no-store` is not cached), up to EDGE_CACHE_MAX_TTL so that a redeploy or a key
    // rotation shows within a minute of the origin's own max-age.
    const publicDocuments = new cloudfront.CachePolicy(this, 'PublicDocuments', {
      comment: 'Broker discovery documents and JWKS: origin Cache-Control, at most 60 s',
      minTtl: Duration.seconds(0),
      defaultTtl: Duration.seconds(0),
      maxTtl: EDGE_CACHE_MAX_TTL,
      headerBehavior: cloudfront.CacheHeaderBehavior.none(),
      cookieBehavior: cloudfront.CacheCookieBehavior.none(),
      queryStringBehavior: cloudfront.CacheQueryStringBehavior.none(),
      enableAcceptEncodingGzip: true,
      enableAcceptEncodingBrotli: true,
    });
    const cached: cloudfront.BehaviorOptions = {
      origin,
      viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
      allowedMethods: cloudfront.AllowedMethods.ALLOW_GET_HEAD,
      cachedMethods: cloudfront.CachedMethods.CACHE_GET_HEAD,
      cachePolicy: publicDocuments,
      compress: true,
    };

    this.distribution = new cloudfront.Distribution(this, 'Distribution', {
      comment: `${stack.stackName}: OAuth broker edge`,
      domainNames: [props.domainName],
      certificate: acm.Certificate.fromCertificateArn(this, 'Certificate', props.certificateArn),
      minimumProtocolVersion: cloudfront.SecurityPolicyProtocol.TLS_V1_2_2021,
      sslSupportMethod: cloudfront.SSLMethod.SNI,
      httpVersion: cloudfront.HttpVersion.HTTP2_AND_3,
      priceClass: props.priceClass ?? cloudfront.PriceClass.PRICE_CLASS_100,
      webAclId: props.webAclArn ?? this.webAcl!.attrArn,
      // Everything else: never cached, and the request as the viewer sent it (the broker reads
      // Origin, Cookie, Content-Type, Accept, the CSRF header, the query string and the form).
      defaultBehavior: {
        origin,
        viewerProtocolPolicy: cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
        allowedMethods: cloudfront.AllowedMethods.ALLOW_ALL,
        cachePolicy: cloudfront.CachePolicy.CACHING_DISABLED,
        originRequestPolicy: cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER,
      },
      additionalBehaviors: Object.fromEntries(EDGE_CACHED_PATHS.map((pathPattern) => [pathPattern, cached])),
      // CloudFront keeps some origin errors for 10 s by default; a recovered origin answers at once.
      errorResponses: [500, 502, 503, 504].map((httpStatus) => ({ httpStatus, ttl: Duration.seconds(0) })),
    });
    acknowledgeNag(this.distribution, 'AwsSolutions-CFR1',
      'The broker signs in the users of its apps wherever they are; a country allow-list is the operator\'s product decision, and WAF (geo match) or CloudFront can add one.');
    acknowledgeNag(this.distribution, 'AwsSolutions-CFR3',
      'CloudFront standard logs always hold the query string, which on /callback carries the authorization code and on /end-session an ID token. The edge\'s per-request record is the WAF log (every request with the client IP; the query string, Cookie, Authorization and DPoP redacted in the web ACL this stack creates), and the API\'s access log behind it.');

    this.url = `https://${props.domainName}`;
    // Readable output names (no hash), as the deploy guide quotes them.
    const output = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description }).overrideLogicalId(`Edge${id}`);
    output('Url', this.url, 'The broker base URL at the edge (the configuration\'s publicUrl)');
    output('DomainTarget', this.distribution.distributionDomainName, `DNS: point ${props.domainName} here (a CNAME, or a Route 53 alias with EdgeHostedZoneId)`);
    output('HostedZoneId', CloudFrontTarget.getHostedZoneId(this), 'For a Route 53 alias record to the distribution');
  }
}

/**
 * The web ACL: everything allowed but more than `loginLimit` requests to `/login`, or
 * `callbackLimit` to `/callback`, from one client IP in 5 minutes, which get `429`. No AWS
 * managed rule group: the common rule set blocks query and form values with URLs on IPv4 hosts
 * (GenericRFI_*), i.e. every native app's loopback `redirect_uri=http://127.0.0.1:<port>/…`
 * (RFC 8252), and query strings over 2 KB (some providers' codes and states come close).
 * Sampled requests are off: the console would show their cookies and query strings.
 */
function rateLimitWebAcl(scope: Construct, stackName: string, loginLimit: number, callbackLimit: number): wafv2.CfnWebACL {
  const visibility = (name: string): wafv2.CfnWebACL.VisibilityConfigProperty => ({
    cloudWatchMetricsEnabled: true,
    metricName: `${stackName}-${name}`,
    sampledRequestsEnabled: false,
  });
  const perIp = (name: string, priority: number, path: string, limit: number): wafv2.CfnWebACL.RuleProperty => ({
    name,
    priority,
    action: { block: { customResponse: { responseCode: 429 } } },
    statement: {
      rateBasedStatement: {
        aggregateKeyType: 'IP',
        evaluationWindowSec: RATE_LIMIT_WINDOW_SECONDS,
        limit,
        // Counted as API Gateway routes them: decoded, with `//` and `./` segments folded.
        scopeDownStatement: {
          byteMatchStatement: {
            fieldToMatch: { uriPath: {} },
            positionalConstraint: 'STARTS_WITH',
            searchString: path,
            textTransformations: [{ priority: 0, type: 'URL_DECODE' }, { priority: 1, type: 'NORMALIZE_PATH' }],
          },
        },
      },
    },
    visibilityConfig: visibility(name),
  });
  return new wafv2.CfnWebACL(scope, 'WebAcl', {
    scope: 'CLOUDFRONT',
    description: `${stackName} broker edge: per-client-IP limits on /login and /callback`,
    defaultAction: { allow: {} },
    rules: [perIp('login-per-ip', 0, '/login', loginLimit), perIp('callback-per-ip', 1, '/callback', callbackLimit)],
    visibilityConfig: visibility('edge'),
  });
}

/** Throws on anything CloudFront or WAF would refuse at deploy time, naming the setting. */
export function validateEdgeProps(props: EdgeProps): void {
  if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])$/.test(props.domainName)) {
    throw new OperatorInputError(`edge domain name must be a lower-case host name such as auth.example.com (got "${props.domainName}")`);
  }
  const certificate = /^arn:aws[a-z-]*:acm:([a-z0-9-]+):\d{12}:certificate\/[A-Za-z0-9-]+$/.exec(props.certificateArn);
  if (!certificate) throw new OperatorInputError(`edge certificate must be an ACM certificate ARN (got "${props.certificateArn}")`);
  if (certificate[1] !== EDGE_REGION) {
    throw new OperatorInputError(`edge certificate must be in ${EDGE_REGION}, the only region CloudFront takes certificates from (got ${certificate[1]}): request one there for ${props.domainName}`);
  }
  if (props.webAclArn !== undefined) {
    const webAcl = /^arn:aws[a-z-]*:wafv2:([a-z0-9-]+):\d{12}:global\/webacl\/[A-Za-z0-9_-]+\/[0-9a-f-]+$/.exec(props.webAclArn);
    if (!webAcl) throw new OperatorInputError(`edge web ACL must be the ARN of a CloudFront-scoped (global) WAFv2 web ACL (got "${props.webAclArn}")`);
    if (webAcl[1] !== EDGE_REGION) {
      throw new OperatorInputError(`edge web ACL must be in ${EDGE_REGION}, where CloudFront-scoped web ACLs live (got ${webAcl[1]})`);
    }
    if (props.loginRateLimit !== undefined || props.callbackRateLimit !== undefined) {
      throw new OperatorInputError('edge rate limits belong to the web ACL the edge creates: with a web ACL of your own, set its rules there');
    }
  }
  for (const [name, limit] of [['login', props.loginRateLimit], ['callback', props.callbackRateLimit]] as const) {
    if (limit !== undefined && (!Number.isInteger(limit) || limit < RATE_LIMIT_MIN || limit > RATE_LIMIT_MAX)) {
      throw new OperatorInputError(`edge ${name} rate limit must be a whole number of requests per IP per 5 minutes from ${RATE_LIMIT_MIN} to ${RATE_LIMIT_MAX} (got ${limit})`);
    }
  }
}

/**
 * The edge's context keys (infra/broker-app.ts): `edge` (`true` switches it on; every other
 * `edge*` key needs it), `edgeDomainName`, `edgeCertificateArn`, `edgeWebAclArn`,
 * `edgeLoginRateLimit`, `edgeCallbackRateLimit`.
 */
export function edgePropsFromContext(get: (key: string) => string | undefined): EdgeProps | undefined {
  const edge = get('edge');
  if (edge !== undefined && edge !== 'true' && edge !== 'false') throw new OperatorInputError(`context edge must be "true" or "false" (got "${edge}")`);
  const keys = ['edgeDomainName', 'edgeCertificateArn', 'edgeWebAclArn', 'edgeLoginRateLimit', 'edgeCallbackRateLimit'] as const;
  if (edge !== 'true') {
    const given = keys.filter((key) => get(key) !== undefined);
    if (given.length > 0) throw new OperatorInputError(`context ${given.join(', ')} configure the edge, which is off: add -c edge=true, or drop them`);
    return undefined;
  }
  const domainName = get('edgeDomainName');
  const certificateArn = get('edgeCertificateArn');
  if (domainName === undefined || certificateArn === undefined) {
    throw new OperatorInputError('context edge=true needs edgeDomainName (the host of publicUrl) and edgeCertificateArn (an ACM certificate for it in us-east-1)');
  }
  const limit = (key: string): number | undefined => {
    const value = get(key);
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n)) throw new OperatorInputError(`context ${key} must be a whole number (got "${value}")`);
    return n;
  };
  const props: EdgeProps = {
    domainName,
    certificateArn,
    webAclArn: get('edgeWebAclArn'),
    loginRateLimit: limit('edgeLoginRateLimit'),
    callbackRateLimit: limit('edgeCallbackRateLimit'),
  };
  validateEdgeProps(props);
  return props;
}
