/**
 * The broker's own CloudWatch metrics as the alarms and the dashboard read them: the names of
 * `lib/metrics-names.ts` (the list the code emits), under `Service=<stack name>` (the functions'
 * `METRICS_SERVICE`), so a staging stack's failures never reach prod's alarms.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { METRICS_NAMESPACE, PROVIDER_DIMENSION, REFRESH_SOURCE_DIMENSION, SERVICE_DIMENSION, type MetricName, type RefreshSource } from '../../lib/metrics-names.js';

export const METRIC_PERIOD = Duration.minutes(5);

/** The operations the broker performs on its table: the throttle alarm and widget sum them. */
export const TABLE_OPERATIONS: readonly dynamodb.Operation[] = [
  dynamodb.Operation.GET_ITEM, dynamodb.Operation.PUT_ITEM, dynamodb.Operation.UPDATE_ITEM, dynamodb.Operation.DELETE_ITEM, dynamodb.Operation.QUERY,
];

export class BrokerMetrics {
  /** @param service the `Service` dimension's value: the stack name. */
  constructor(readonly service: string) {}

  /** A metric under `Service` alone (every provider, source or API together). */
  metric(name: MetricName, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: name,
      statistic: cloudwatch.Stats.SUM,
      period: METRIC_PERIOD,
      ...options,
      dimensionsMap: { [SERVICE_DIMENSION.name]: this.service, ...options.dimensionsMap },
    });
  }

  /** An upstream metric of one provider (`Provider=<name in the configuration>`). */
  provider(name: 'UpstreamRequests' | 'UpstreamFailures' | 'UpstreamLatency', provider: string, options: cloudwatch.MetricOptions = {}): cloudwatch.Metric {
    return this.metric(name, { label: provider, ...options, dimensionsMap: { [PROVIDER_DIMENSION]: provider } });
  }

  /** Refreshes served from one source (`Source=stored|upstream|grace|deduplicated`). */
  refreshes(source: RefreshSource): cloudwatch.Metric {
    return this.metric('Refreshes', { label: source, dimensionsMap: { [REFRESH_SOURCE_DIMENSION]: source } });
  }
}
