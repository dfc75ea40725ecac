/**
 * Per-route throttles from the configuration: the `routeThrottles` context, checked and applied
 * over the defaults, route by route; and the 429 alarm's threshold.
 */
import { Template } from 'aws-cdk-lib/assertions';
import { describe, expect, it } from 'vitest';
import { createBrokerApp } from '../../infra/broker-app.js';
import { EXAMPLE_CONFIG_PATH, OperatorInputError } from '../../infra/config.js';
import { DEFAULT_ROUTE_THROTTLES, parseRouteThrottles, resolveRouteThrottles } from '../../infra/constructs/route-throttles.js';
import { cdkJsonContext, NO_BUNDLING } from './support.js';

describe('the routeThrottles context', () => {
  it('refuses unknown classes, limits that are not positive integers and a burst below the rate, all at once', () => {
    expect(() => parseRouteThrottles('{"login":')).toThrow('must be a JSON object');
    expect(() => parseRouteThrottles('[1]')).toThrow('must be an object of throttle classes');
    // An operator's mistake: infra/app.ts prints the message alone, without a stack trace.
    expect(() => parseRouteThrottles('{"logn":{}}')).toThrow(OperatorInputError);
    let message = '';
    try {
      parseRouteThrottles({ logins: { rateLimit: 1, burstLimit: 1 }, token: { rateLimit: 0, burstLimit: 2.5 }, jwks: { rateLimit: 10, burstLimit: 5 } });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message.split('\n').slice(1).map((l) => l.trim())).toEqual([
      'routeThrottles.logins: unknown throttle class (one of login, token, api, discovery, jwks, backchannel)',
      'routeThrottles.token.rateLimit: a positive integer',
      'routeThrottles.token.burstLimit: a positive integer',
      'routeThrottles.jwks.burstLimit: at least rateLimit',
    ]);
  });

  it('takes a JSON string (-c) or an object (cdk.json), and leaves the classes it does not name at their defaults', () => {
    expect(parseRouteThrottles(undefined)).toBeUndefined();
    expect(parseRouteThrottles('{"login":{"rateLimit":5,"burstLimit":10}}')).toEqual({ login: { rateLimit: 5, burstLimit: 10 } });
    const resolved = resolveRouteThrottles(parseRouteThrottles({ api: { rateLimit: 500, burstLimit: 1000 } }));
    expect(resolved).toEqual({ ...DEFAULT_ROUTE_THROTTLES, api: { rateLimit: 500, burstLimit: 1000 } });
  });

  it('keeps /login and /callback well below the token endpoints by default', () => {
    expect(DEFAULT_ROUTE_THROTTLES.login.rateLimit * 5).toBeLessThanOrEqual(DEFAULT_ROUTE_THROTTLES.token.rateLimit);
    expect(DEFAULT_ROUTE_THROTTLES.login.burstLimit * 5).toBeLessThanOrEqual(DEFAULT_ROUTE_THROTTLES.token.burstLimit);
  });
});

describe('a stack with routeThrottles and throttledRequestsThreshold in its context', () => {
  const { stack } = createBrokerApp({
    context: {
      ...cdkJsonContext(),
      ...NO_BUNDLING,
      brokerConfig: EXAMPLE_CONFIG_PATH,
      routeThrottles: '{"login":{"rateLimit":2,"burstLimit":4},"jwks":{"rateLimit":50,"burstLimit":50}}',
      throttledRequestsThreshold: '7',
    },
  }, {});
  const template = Template.fromStack(stack);

  it('gives each route its class\'s configured limit, the others their defaults', () => {
    const [stage] = Object.values(template.findResources('AWS::ApiGatewayV2::Stage'));
    const settings = stage!['Properties'].RouteSettings as Record<string, unknown>;
    expect(settings['GET /login']).toEqual({ ThrottlingRateLimit: 2, ThrottlingBurstLimit: 4 });
    expect(settings['POST /callback']).toEqual({ ThrottlingRateLimit: 2, ThrottlingBurstLimit: 4 });
    expect(settings['GET /jwks']).toEqual({ ThrottlingRateLimit: 50, ThrottlingBurstLimit: 50 });
    expect(settings['POST /token']).toEqual({ ThrottlingRateLimit: 100, ThrottlingBurstLimit: 200 });
    expect(settings['POST /backchannel-logout/{provider}']).toEqual({ ThrottlingRateLimit: 10, ThrottlingBurstLimit: 20 });
  });

  it('alarms at the configured number of 429s', () => {
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { MetricName: 'ApiThrottled', Threshold: 7 });
  });
});
