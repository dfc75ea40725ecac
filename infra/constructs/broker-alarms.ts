/**
 * The alarms an operator acts on (docs/deploy.md, "Alarms"): function errors and throttles, API
 * 5xx, DynamoDB throttles, and the rate of failed calls to identity providers, from the metric
 * the broker emits (`lib/metrics-names.ts`).
 */
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import type { FunctionName } from '../../functions/manifest.js';
import { METRIC } from '../../lib/metrics-names.js';
import { METRIC_PERIOD as PERIOD, TABLE_OPERATIONS, type BrokerMetrics } from './broker-metrics.js';

export interface BrokerAlarmsProps {
  readonly functions: Readonly<Record<FunctionName, lambda.IFunction>>;
  readonly api: apigwv2.IHttpApi;
  readonly table: dynamodb.ITable;
  /** The broker's metrics, under this stack's `Service` dimension. */
  readonly metrics: BrokerMetrics;
  /**
   * Every alarm's name is `<prefix>-<name>` (`OAuthBroker-api-5xx`): readable in the console and
   * in notifications, and distinct per stack.
   */
  readonly alarmNamePrefix: string;
  /**
   * Where alarms (and their return to OK) are sent.
   *
   * @default - no action: the alarms show in the CloudWatch console only
   */
  readonly alarmTopic?: sns.ITopic;
  /**
   * 5xx answers from the API in 5 minutes that raise the alarm.
   *
   * @default 5
   */
  readonly api5xxThreshold?: number;
  /**
   * Percentage of failed upstream calls, over 5 minutes, that raises the alarm (in 2 of 3 periods).
   *
   * @default 10
   */
  readonly upstreamFailureRatePercent?: number;
  /**
   * Failed logins in 5 minutes that raise `login-failures`.
   *
   * @default 3
   */
  readonly loginFailuresThreshold?: number;
  /**
   * Fewer upstream calls than this in 5 minutes never raise the failure-rate alarm (one failure
   * in two calls is noise, not an outage).
   *
   * @default 10
   */
  readonly upstreamMinimumRequests?: number;
}

export class BrokerAlarms extends Construct {
  /** Every alarm, by a stable name (`<function>-errors`, `api-5xx`, ...); its `alarmName` is `<prefix>-<name>`. */
  readonly alarms: ReadonlyMap<string, cloudwatch.Alarm>;

  constructor(scope: Construct, id: string, props: BrokerAlarmsProps) {
    super(scope, id);
    const alarms = new Map<string, cloudwatch.Alarm>();
    const add = (name: string, metric: cloudwatch.IMetric, options: { threshold: number; description: string; evaluationPeriods?: number; datapointsToAlarm?: number }) => {
      const alarm = new cloudwatch.Alarm(this, name, {
        alarmName: `${props.alarmNamePrefix}-${name}`,
        metric,
        threshold: options.threshold,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        evaluationPeriods: options.evaluationPeriods ?? 1,
        datapointsToAlarm: options.datapointsToAlarm ?? options.evaluationPeriods ?? 1,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: options.description,
      });
      if (props.alarmTopic) {
        alarm.addAlarmAction(new actions.SnsAction(props.alarmTopic));
        alarm.addOkAction(new actions.SnsAction(props.alarmTopic));
      }
      alarms.set(name, alarm);
    };

    for (const [name, fn] of Object.entries(props.functions) as [FunctionName, lambda.IFunction][]) {
      add(`${name}-errors`, fn.metricErrors({ period: PERIOD, statistic: cloudwatch.Stats.SUM }), {
        threshold: 1,
        description: `oauth broker ${name}: the function failed (crash, timeout, or a configuration it refused at cold start). Requests the broker answers with an error do not count.`,
      });
      add(`${name}-throttles`, fn.metricThrottles({ period: PERIOD, statistic: cloudwatch.Stats.SUM }), {
        threshold: 1,
        description: `oauth broker ${name}: Lambda refused invocations (account or function concurrency exhausted).`,
      });
    }

    add('api-5xx', props.api.metricServerError({ period: PERIOD, statistic: cloudwatch.Stats.SUM }), {
      threshold: props.api5xxThreshold ?? 5,
      description: 'oauth broker API: 5xx answers (broker errors, an unavailable provider, or Lambda failures).',
    });

    add('table-throttles', props.table.metricThrottledRequestsForOperations({
      operations: [...TABLE_OPERATIONS],
      period: PERIOD,
    }), {
      threshold: 1,
      description: 'oauth broker table: DynamoDB throttled requests (on-demand table above its previous peak, or an account limit).',
    });

    const broker = (metricName: (typeof METRIC)[keyof typeof METRIC]) => props.metrics.metric(metricName);
    const minimum = props.upstreamMinimumRequests ?? 10;
    add('upstream-failure-rate', new cloudwatch.MathExpression({
      expression: `IF(FILL(requests, 0) >= ${minimum}, 100 * FILL(failures, 0) / FILL(requests, 0), 0)`,
      usingMetrics: { failures: broker(METRIC.UpstreamFailures), requests: broker(METRIC.UpstreamRequests) },
      label: 'Upstream failure rate (%)',
      period: PERIOD,
    }), {
      threshold: props.upstreamFailureRatePercent ?? 10,
      evaluationPeriods: 3,
      datapointsToAlarm: 2,
      description: 'oauth broker: calls to identity providers fail (network errors, timeouts, 5xx). Logins and refreshes through the failing provider fail too; check the provider status first.',
    });

    add('login-failures', broker(METRIC.LoginsFailed), {
      threshold: props.loginFailuresThreshold ?? 3,
      description: 'oauth broker: logins failed after the provider sent the user back (the code exchange, the ID token check, a client secret that cannot be read, storage). The log line login.error or request.rejected names the cause; users cancelling at the provider do not count.',
    });

    this.alarms = alarms;
  }
}
