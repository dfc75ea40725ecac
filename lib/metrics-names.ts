/**
 * CloudWatch metric names the broker emits (Embedded Metric Format in its log lines) and the CDK
 * stack's alarms and dashboard read: one list, shared by all three.
 */
export const METRICS_NAMESPACE = 'OAuthBroker';
/**
 * Every metric carries `Service=<value>`. The stack sets the value to its own name through
 * `METRICS_SERVICE_ENV`, so two stacks in one account and region (staging and prod) never share a
 * series; a process without it (the local runner, tests) uses `value`.
 */
export const SERVICE_DIMENSION = { name: 'Service', value: 'broker' } as const;
/** The environment variable naming the `Service` dimension's value (the stack name in AWS). */
export const METRICS_SERVICE_ENV = 'METRICS_SERVICE';
/** The upstream metrics' second dimension: the provider's name in the configuration. */
export const PROVIDER_DIMENSION = 'Provider';
/** The `Refreshes` metric's dimension, and every value it takes (lib/broker/refresh.ts). */
export const REFRESH_SOURCE_DIMENSION = 'Source';
export const REFRESH_SOURCES = ['stored', 'upstream', 'grace', 'deduplicated'] as const;
export type RefreshSource = (typeof REFRESH_SOURCES)[number];
/** The proxy metrics' dimension: the API's name in the configuration. */
export const API_DIMENSION = 'Api';

export const METRIC = {
  /**
   * Every request to a provider (token, revocation, discovery, downstream login). The three
   * upstream metrics are emitted twice from one line: under `Service` alone (the alarm) and under
   * `Service` and `Provider` (the dashboard, per provider).
   */
  UpstreamRequests: 'UpstreamRequests',
  /** Provider requests that failed: unreachable, timed out, 5xx or oversized. */
  UpstreamFailures: 'UpstreamFailures',
  UpstreamLatency: 'UpstreamLatency',
  LoginsStarted: 'LoginsStarted',
  LoginsCompleted: 'LoginsCompleted',
  LoginsFailed: 'LoginsFailed',
  /** Refreshes served, with dimension `Source`: stored, upstream, grace or deduplicated. */
  Refreshes: 'Refreshes',
  RefreshesDeduplicated: 'RefreshesDeduplicated',
  ReuseRevocations: 'ReuseRevocations',
  /** Calls through the API proxy, with dimension `Api` (the API's name in the configuration). */
  ApiCalls: 'ApiCalls',
  /** The API's answers by status class (1 on the one that applies, 0 on the others). */
  Api2xx: 'Api2xx',
  Api3xx: 'Api3xx',
  Api4xx: 'Api4xx',
  Api5xx: 'Api5xx',
  /** No answer from the API: unreachable, broken off, too large (502) or too slow (504). */
  ApiFailures: 'ApiFailures',
  /** How long the API took to answer, in ms. */
  ApiLatency: 'ApiLatency',
  /** The broker's own time per proxied call (everything but the API's answer), in ms. */
  ApiProxyLatency: 'ApiProxyLatency',
  /** Logout tokens a provider sent that passed every check (back-channel logout). */
  BackchannelLogouts: 'BackchannelLogouts',
  /** Sessions those logouts ended. */
  BackchannelSessionsEnded: 'BackchannelSessionsEnded',
  /** Logout tokens refused (a failed check or a replay). */
  BackchannelLogoutsRefused: 'BackchannelLogoutsRefused',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];
