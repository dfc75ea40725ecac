/**
 * The broker's HTTP API: exactly the routes of functions/manifest.ts, each to the function that
 * serves it, one `$default` stage with access logs and throttling per route (by the route's
 * throttle class), and an optional custom domain. CORS preflights (`OPTIONS` routes, one for the
 * path of each manifest route with a CORS class) go to the functions: API Gateway's own CORS would
 * answer them itself and bypass the broker's per-origin, per-path rules.
 */
import { CfnOutput } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type * as acm from 'aws-cdk-lib/aws-certificatemanager';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledgeNag } from '../nag.js';
import { INTEGRATION_TIMEOUT } from './broker-function.js';
import { deployedRoutes, FUNCTION_NAMES, type FunctionName, type ThrottleClass } from '../../functions/manifest.js';
import { resolveRouteThrottles, type RouteThrottles } from './route-throttles.js';

export interface RouteEntry {
  readonly routeKey: string;
  readonly method: apigwv2.HttpMethod;
  readonly path: string;
  readonly functionName: FunctionName;
  readonly throttle: ThrottleClass;
}

/**
 * Every route key of the contract, `"METHOD /path"`, with the function that serves it and its
 * throttle class: the manifest's routes, and the `OPTIONS` route of each path whose route has a
 * CORS class and a fixed method (an `ANY` route receives preflights itself).
 */
export function routeTable(): RouteEntry[] {
  const entries = new Map<string, RouteEntry>();
  const add = (routeKey: string, functionName: FunctionName, throttle: ThrottleClass) => {
    const [method, path] = routeKey.split(' ') as [string, string];
    if (!(method in apigwv2.HttpMethod)) throw new TypeError(`functions/manifest.ts: "${routeKey}" has an unknown method`);
    const known = entries.get(routeKey);
    if (known && (known.functionName !== functionName || known.throttle !== throttle)) {
      throw new TypeError(`functions/manifest.ts: "${routeKey}" is served twice (${known.functionName}, ${functionName})`);
    }
    entries.set(routeKey, { routeKey, method: apigwv2.HttpMethod[method as keyof typeof apigwv2.HttpMethod], path, functionName, throttle });
  };
  for (const functionName of FUNCTION_NAMES) {
    for (const { routeKey, route } of deployedRoutes(functionName)) add(routeKey, functionName, route.throttle);
  }
  return [...entries.values()];
}

/**
 * Access log fields: who, which route, what status, how long. No path or query string: a
 * callback's query holds the authorization code and state.
 */
export const ACCESS_LOG_FORMAT = {
  requestId: '$context.requestId',
  apiId: '$context.apiId',
  requestTime: '$context.requestTime',
  sourceIp: '$context.identity.sourceIp',
  userAgent: '$context.identity.userAgent',
  domainName: '$context.domainName',
  routeKey: '$context.routeKey',
  protocol: '$context.protocol',
  status: '$context.status',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationStatus: '$context.integrationStatus',
  integrationError: '$context.integrationErrorMessage',
} as const;

export interface CustomDomainProps {
  /** The broker's host name, e.g. `auth.example.com` (the host of the configuration's `publicUrl`). */
  readonly domainName: string;
  /** An ACM certificate for `domainName`, in the stack's region. */
  readonly certificate: acm.ICertificate;
}

export interface BrokerApiProps {
  /** The function serving each functions/manifest.ts entry. */
  readonly functions: Readonly<Record<FunctionName, lambda.IFunction>>;
  /**
   * The stage's default steady-state requests per second, for requests no route takes (every
   * route has its own limit, `routeThrottles`).
   *
   * @default 50
   */
  readonly throttlingRateLimit?: number;
  /**
   * The stage's default burst, for requests no route takes.
   *
   * @default 100
   */
  readonly throttlingBurstLimit?: number;
  /**
   * The limits of each throttle class; every route gets its class's (`RouteSettings`).
   *
   * @default DEFAULT_ROUTE_THROTTLES (infra/constructs/route-throttles.ts)
   */
  readonly routeThrottles?: RouteThrottles;
  /**
   * How long access logs are kept.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly accessLogRetention?: logs.RetentionDays;
  /**
   * A custom domain for the API. Web apps in cookie mode need it: the session cookie is
   * first-party only when the broker is on the same site as the web app (docs/deploy.md).
   * With a domain, the `execute-api` endpoint is switched off, so the broker has one origin.
   *
   * @default - no custom domain: the API's `execute-api` URL
   */
  readonly customDomain?: CustomDomainProps;
}

export class BrokerApi extends Construct {
  readonly httpApi: apigwv2.HttpApi;
  readonly stage: apigwv2.HttpStage;
  readonly accessLogs: logs.LogGroup;
  /** The stage's `RouteSettings`: each route key's throttle. */
  readonly routeSettings: Readonly<Record<string, { readonly ThrottlingRateLimit: number; readonly ThrottlingBurstLimit: number }>>;
  readonly domainName: apigwv2.DomainName | undefined;
  /** The broker's base URL: the custom domain's, else the stage's. */
  readonly url: string;

  constructor(scope: Construct, id: string, props: BrokerApiProps) {
    super(scope, id);
    this.httpApi = new apigwv2.HttpApi(this, 'Api', {
      description: 'oauth broker',
      createDefaultStage: false,
      disableExecuteApiEndpoint: props.customDomain !== undefined,
    });

    const integrations = new Map<FunctionName, HttpLambdaIntegration>();
    const routes = routeTable();
    const httpRoutes: apigwv2.HttpRoute[] = [];
    for (const route of routes) {
      let integration = integrations.get(route.functionName);
      if (!integration) {
        integration = new HttpLambdaIntegration(`${route.functionName}-integration`, props.functions[route.functionName], {
          payloadFormatVersion: apigwv2.PayloadFormatVersion.VERSION_2_0,
          timeout: INTEGRATION_TIMEOUT,
        });
        integrations.set(route.functionName, integration);
      }
      const httpRoute = new apigwv2.HttpRoute(this, `Route ${route.routeKey}`, {
        httpApi: this.httpApi,
        routeKey: apigwv2.HttpRouteKey.with(route.path, route.method),
        integration,
      });
      httpRoutes.push(httpRoute);
      acknowledgeNag(httpRoute, 'AwsSolutions-APIG4',
        'The broker is the authorization server front: its routes are called by browsers and apps before they hold any AWS or API credential, and each authenticates the caller itself (state and PKCE on login and callback, the HttpOnly session cookie plus Origin checks or the rotating handle on token, refresh, session and logout, the cookie plus the CSRF header and Origin on the API proxy). An API Gateway authorizer has nothing to check.');
    }

    this.domainName = props.customDomain
      ? new apigwv2.DomainName(this, 'Domain', {
        domainName: props.customDomain.domainName,
        certificate: props.customDomain.certificate,
        securityPolicy: apigwv2.SecurityPolicy.TLS_1_2,
      })
      : undefined;

    this.accessLogs = new logs.LogGroup(this, 'AccessLogs', { retention: props.accessLogRetention ?? logs.RetentionDays.ONE_MONTH });
    this.stage = new apigwv2.HttpStage(this, 'Stage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.throttlingRateLimit ?? 50, burstLimit: props.throttlingBurstLimit ?? 100 },
      accessLogSettings: {
        destination: new apigwv2.LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FORMAT)),
      },
      ...(this.domainName ? { domainMapping: { domainName: this.domainName } } : {}),
    });
    // Each route its class's limits. `HttpStage` has no per-route throttle: the CloudFormation
    // property, whose route keys must exist before the stage names them.
    const limits = resolveRouteThrottles(props.routeThrottles);
    this.routeSettings = Object.fromEntries(routes.map((r) => [r.routeKey, { ThrottlingRateLimit: limits[r.throttle].rateLimit, ThrottlingBurstLimit: limits[r.throttle].burstLimit }]));
    (this.stage.node.defaultChild as apigwv2.CfnStage).routeSettings = this.routeSettings;
    for (const route of httpRoutes) this.stage.node.addDependency(route);

    this.url = this.domainName ? `https://${props.customDomain!.domainName}` : this.stage.url;
    // Outputs under readable names (`BrokerUrl`, not `HttpUrlEF4F1CA1`): each stack has its own.
    new CfnOutput(this, 'Url', { value: this.url, description: 'The API\'s base URL: the configuration\'s publicUrl, unless the optional edge fronts it (EdgeUrl)' }).overrideLogicalId('BrokerUrl');
    if (this.domainName) {
      new CfnOutput(this, 'DomainTarget', {
        value: this.domainName.regionalDomainName,
        description: `DNS: point ${props.customDomain!.domainName} here (a CNAME, or a Route 53 alias with DomainHostedZoneId)`,
      }).overrideLogicalId('DomainTarget');
      new CfnOutput(this, 'DomainHostedZoneId', { value: this.domainName.regionalHostedZoneId, description: 'For a Route 53 alias record' }).overrideLogicalId('DomainHostedZoneId');
    }
  }
}
