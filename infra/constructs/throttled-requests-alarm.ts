/**
 * An alarm on throttled requests (`429`). API Gateway HTTP APIs publish `4xx` but no `429` metric,
 * and a `4xx` alarm would fire on every bad login link; so a metric filter counts the access log
 * lines whose `status` is `429` (`ApiThrottled`, with the API's id as its `ApiId` dimension, so two
 * stacks in one account count apart), and the alarm watches that count.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { METRICS_NAMESPACE } from '../../lib/metrics-names.js';

/** The metric the filter writes. */
export const THROTTLED_METRIC = 'ApiThrottled';

export interface ThrottledRequestsAlarmProps {
  /** The API's access log group (JSON lines with `status` and `apiId`, infra/constructs/broker-api.ts). */
  readonly accessLogs: logs.ILogGroup;
  /** The HTTP API's id: the metric's `ApiId` dimension. */
  readonly apiId: string;
  /**
   * Throttled answers in 5 minutes that raise the alarm.
   *
   * @default 50
   */
  readonly threshold?: number;
  /**
   * Where the alarm (and its return to OK) is sent.
   *
   * @default - no action
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * The metric namespace.
   *
   * @default METRICS_NAMESPACE (lib/metrics-names.ts)
   */
  readonly namespace?: string;
}

export class ThrottledRequestsAlarm extends Construct {
  readonly metric: cloudwatch.Metric;
  readonly alarm: cloudwatch.Alarm;

  constructor(scope: Construct, id: string, props: ThrottledRequestsAlarmProps) {
    super(scope, id);
    const namespace = props.namespace ?? METRICS_NAMESPACE;
    new logs.MetricFilter(this, 'Filter', {
      logGroup: props.accessLogs,
      filterPattern: logs.FilterPattern.stringValue('$.status', '=', '429'),
      metricNamespace: namespace,
      metricName: THROTTLED_METRIC,
      metricValue: '1',
      dimensions: { ApiId: '$.apiId' },
    });
    this.metric = new cloudwatch.Metric({
      namespace,
      metricName: THROTTLED_METRIC,
      dimensionsMap: { ApiId: props.apiId },
      period: Duration.minutes(5),
      statistic: cloudwatch.Stats.SUM,
    });
    this.alarm = new cloudwatch.Alarm(this, 'Alarm', {
      metric: this.metric,
      threshold: props.threshold ?? 50,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      alarmDescription: 'The API answered 429 (throttled): a route\'s class is at its limit (docs/deploy.md, "Throttles"). Find the route and the clients in the access log (status 429); raise that class\'s limit (routeThrottles) if the traffic is real.',
    });
    if (props.alarmTopic) {
      this.alarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
      this.alarm.addOkAction(new actions.SnsAction(props.alarmTopic));
    }
  }
}
