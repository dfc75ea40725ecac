/**
 * CloudWatch metric names the broker emits (Embedded Metric Format in its log lines) and the CDK
 * stack alarms on: one list, shared by both.
 */
export const METRICS_NAMESPACE = 'OAuthBroker';
export const SERVICE_DIMENSION = { name: 'Service', value: 'broker' } as const;

export const METRIC = {
  /** Every request to a provider (token, revocation, discovery, downstream login). */
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
