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
  /** Logout tokens a provider sent that passed every check (back-channel logout). */
  BackchannelLogouts: 'BackchannelLogouts',
  /** Sessions those logouts ended. */
  BackchannelSessionsEnded: 'BackchannelSessionsEnded',
  /** Logout tokens refused (a failed check or a replay). */
  BackchannelLogoutsRefused: 'BackchannelLogoutsRefused',
} as const;

export type MetricName = (typeof METRIC)[keyof typeof METRIC];
