import { describe, expect, it } from 'vitest';
import { createLogger, errorFields, isoTime } from '../../lib/log.js';
import { UpstreamOAuthError, UpstreamUnavailableError } from '../../lib/errors.js';
import { METRICS_NAMESPACE } from '../../lib/metrics-names.js';

function capture(level: 'debug' | 'info' | 'warn' = 'info') {
  const lines: any[] = [];
  return { log: createLogger({ level, sink: (l) => lines.push(JSON.parse(l)) }), lines };
}

describe('createLogger', () => {
  it('drops lines below its level', () => {
    const { log, lines } = capture('warn');
    log.info('x');
    log.metric('m', { LoginsStarted: 1 });
    expect(lines).toEqual([]);
  });

  it('writes one JSON object a line with the event, the child fields and the line fields', () => {
    const { log, lines } = capture();
    log.child({ request_id: 'r1' }).warn('refresh.grace_hit', { client_id: 'app' });
    expect(lines[0]).toMatchObject({ level: 'warn', event: 'refresh.grace_hit', request_id: 'r1', client_id: 'app' });
    expect(Date.parse(lines[0].time)).not.toBeNaN();
  });

  it('writes metrics in CloudWatch Embedded Metric Format', () => {
    const { log, lines } = capture();
    log.child({ request_id: 'r2' }).metric('refresh.served', { Refreshes: 1 }, { client_id: 'app' }, { name: 'Source', value: 'upstream' });
    log.metric('upstream.request', { UpstreamRequests: 1, UpstreamFailures: 0, UpstreamLatency: 12 });
    const [served, upstream] = lines;
    expect(served).toMatchObject({ event: 'refresh.served', request_id: 'r2', Service: 'broker', Source: 'upstream', Refreshes: 1 });
    expect(served._aws.CloudWatchMetrics).toEqual([{ Namespace: METRICS_NAMESPACE, Dimensions: [['Service', 'Source']], Metrics: [{ Name: 'Refreshes', Unit: 'Count' }] }]);
    expect(typeof served._aws.Timestamp).toBe('number');
    expect(upstream._aws.CloudWatchMetrics[0].Dimensions).toEqual([['Service']]);
    expect(upstream._aws.CloudWatchMetrics[0].Metrics).toContainEqual({ Name: 'UpstreamLatency', Unit: 'Milliseconds' });
  });
});

describe('metric dimensions (issue 13)', () => {
  it('scopes every metric by the service it is given: two stacks never share a series', () => {
    const lines: any[] = [];
    createLogger({ service: 'OAuthBroker-staging', sink: (l) => lines.push(JSON.parse(l)) }).metric('login.started', { LoginsStarted: 1 });
    expect(lines[0]).toMatchObject({ Service: 'OAuthBroker-staging', LoginsStarted: 1 });
    expect(lines[0]._aws.CloudWatchMetrics[0].Dimensions).toEqual([['Service']]);
  });

  it('with an aggregate dimension, emits one line under two dimension sets: Service alone, and Service with Provider', () => {
    const { log, lines } = capture();
    log.metric('upstream.request', { UpstreamRequests: 1, UpstreamFailures: 1, UpstreamLatency: 30 }, {}, { name: 'Provider', value: 'okta', aggregate: true });
    expect(lines[0]).toMatchObject({ Service: 'broker', Provider: 'okta', UpstreamFailures: 1 });
    expect(lines[0]._aws.CloudWatchMetrics).toEqual([{
      Namespace: METRICS_NAMESPACE,
      Dimensions: [['Service'], ['Service', 'Provider']],
      Metrics: [{ Name: 'UpstreamRequests', Unit: 'Count' }, { Name: 'UpstreamFailures', Unit: 'Count' }, { Name: 'UpstreamLatency', Unit: 'Milliseconds' }],
    }]);
  });
});

describe('errorFields', () => {
  it('keeps the provider error code of an upstream OAuth error, and nothing of its body', () => {
    expect(errorFields(new UpstreamOAuthError('invalid_grant', 400))).toEqual({ error: 'UpstreamOAuthError', code: 'invalid_grant', upstream_error: 'invalid_grant', upstream_status: 400 });
  });
  it('reduces a broker error to its class, code, description and cause', () => {
    const f = errorFields(new UpstreamUnavailableError('the provider at x could not be reached', { cause: new TypeError('fetch failed') }));
    expect(f).toEqual({ error: 'UpstreamUnavailableError', code: 'temporarily_unavailable', message: 'the provider at x could not be reached', cause: 'TypeError: fetch failed' });
  });
  it('reduces a plain error to its class and message', () => {
    expect(errorFields(new Error('boom'))).toEqual({ error: 'Error', message: 'boom' });
    expect(errorFields('weird')).toEqual({ error: 'string' });
  });
});

describe('isoTime', () => {
  it('is toISOString\'s form for every millisecond, day and month it is given', () => {
    let t = Date.UTC(1999, 11, 31, 23, 59, 59, 999);
    for (let i = 0; i < 5_000; i++, t += 86_400_000 * 3 + 3_723_017) expect(isoTime(new Date(t))).toBe(new Date(t).toISOString());
    for (const t0 of [0, Date.UTC(2026, 0, 1), Date.UTC(9999, 11, 31, 23, 59, 59, 999)]) expect(isoTime(new Date(t0))).toBe(new Date(t0).toISOString());
  });
});
