/**
 * The operator's CloudWatch dashboard and the saved Logs Insights query that follows one request
 * (docs/deploy.md, "Dashboard"). The broker's own widgets read the metric names the code emits
 * (`lib/metrics-names.ts`, through `BrokerMetrics`, as the alarms do); the rest are the standard
 * metrics of API Gateway, Lambda and DynamoDB, and two Logs Insights widgets for what has no
 * metric: `429` answers (in the access log) and cold-start init durations (in Lambda's `REPORT`
 * lines).
 */
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { FunctionName } from '../../functions/manifest.js';
import { METRIC, REFRESH_SOURCES } from '../../lib/metrics-names.js';
import { METRIC_PERIOD, TABLE_OPERATIONS, type BrokerMetrics } from './broker-metrics.js';

/** Logs Insights over the access log: `429` answers (API Gateway's HTTP APIs have no metric for them). */
export const THROTTLED_QUERY = ['filter status = "429"', 'stats count(*) as throttled by bin(5m), routeKey'];

/** Logs Insights over the function logs: cold starts and their init duration (not a CloudWatch metric). */
export const INIT_DURATION_QUERY = [
  'filter @type = "REPORT" and ispresent(@initDuration)',
  'stats count(*) as coldStarts, avg(@initDuration) as avgInitMs, max(@initDuration) as maxInitMs by @log',
];

/**
 * The saved query: every line of one request, in the access log (`requestId`) and the function
 * logs (`apigw_request_id`: the same API Gateway request id, which the broker logs on every line).
 * Replace REQUEST_ID with the id an app or a user reports (`apigw-requestid` response header).
 */
export const FOLLOW_REQUEST_QUERY = new logs.QueryString({
  fields: ['@timestamp', '@log', 'routeKey', 'status', 'event', 'level', 'error', 'code', 'message', 'ms'],
  filterStatements: ['requestId = "REQUEST_ID" or apigw_request_id = "REQUEST_ID"'],
  sort: '@timestamp asc',
});

export interface BrokerDashboardProps {
  /** The dashboard's name, unique in the account and region (the stack name). */
  readonly dashboardName: string;
  readonly metrics: BrokerMetrics;
  /** The providers of the configuration: one line each in the upstream widgets. */
  readonly providers: readonly string[];
  readonly functions: Readonly<Record<FunctionName, lambda.IFunction>>;
  /** Each function's log group, for the init-duration widget and the saved query. */
  readonly functionLogGroups: readonly logs.ILogGroup[];
  readonly api: apigwv2.IHttpApi;
  readonly accessLogs: logs.ILogGroup;
  readonly table: dynamodb.ITable;
  /** Shown in an alarm status widget at the top. */
  readonly alarms?: readonly cloudwatch.IAlarm[];
}

export class BrokerDashboard extends Construct {
  readonly dashboard: cloudwatch.Dashboard;
  readonly followRequestQuery: logs.QueryDefinition;

  constructor(scope: Construct, id: string, props: BrokerDashboardProps) {
    super(scope, id);
    const m = props.metrics;
    const graph = (title: string, left: cloudwatch.IMetric[], options: Partial<cloudwatch.GraphWidgetProps> = {}) =>
      new cloudwatch.GraphWidget({ title, left, width: 8, height: 6, period: METRIC_PERIOD, ...options });
    const functions = Object.entries(props.functions) as [FunctionName, lambda.IFunction][];

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      dashboardName: props.dashboardName,
    });
    if (props.alarms?.length) {
      this.dashboard.addWidgets(new cloudwatch.AlarmStatusWidget({ title: 'Alarms', alarms: [...props.alarms], width: 24, height: 3 }));
    }
    this.dashboard.addWidgets(
      graph('Logins', [m.metric(METRIC.LoginsStarted, { label: 'started' }), m.metric(METRIC.LoginsCompleted, { label: 'completed' }), m.metric(METRIC.LoginsFailed, { label: 'failed' })]),
      graph('Refreshes by source', REFRESH_SOURCES.map((source) => m.refreshes(source)), { stacked: true }),
      graph('Refresh token reuse: sessions revoked', [m.metric(METRIC.ReuseRevocations, { label: 'revoked on reuse' })]),
    );
    this.dashboard.addWidgets(
      graph('Upstream latency per provider (p90, ms)', props.providers.map((p) => m.provider('UpstreamLatency', p, { statistic: cloudwatch.Stats.p(90) }))),
      graph('Upstream failures per provider', props.providers.map((p) => m.provider('UpstreamFailures', p))),
      graph('Upstream requests per provider', props.providers.map((p) => m.provider('UpstreamRequests', p))),
    );
    this.dashboard.addWidgets(
      graph('API answers', [
        props.api.metricCount({ period: METRIC_PERIOD, label: 'requests' }),
        props.api.metricClientError({ period: METRIC_PERIOD, label: '4xx' }),
        props.api.metricServerError({ period: METRIC_PERIOD, label: '5xx' }),
      ]),
      new cloudwatch.LogQueryWidget({
        title: 'API 429 (throttled) by route, from the access log',
        logGroupNames: [props.accessLogs.logGroupName],
        queryLines: THROTTLED_QUERY,
        view: cloudwatch.LogQueryVisualizationType.BAR,
        width: 8,
        height: 6,
      }),
      graph('API latency (p90, ms)', [
        props.api.metricLatency({ period: METRIC_PERIOD, statistic: cloudwatch.Stats.p(90), label: 'total' }),
        props.api.metricIntegrationLatency({ period: METRIC_PERIOD, statistic: cloudwatch.Stats.p(90), label: 'integration' }),
      ]),
    );
    this.dashboard.addWidgets(
      graph('Lambda duration per function (p90, ms)', functions.map(([name, fn]) => fn.metricDuration({ period: METRIC_PERIOD, statistic: cloudwatch.Stats.p(90), label: name }))),
      graph('Lambda errors and throttles', functions.flatMap(([name, fn]) => [
        fn.metricErrors({ period: METRIC_PERIOD, label: `${name} errors` }),
        fn.metricThrottles({ period: METRIC_PERIOD, label: `${name} throttles` }),
      ])),
      new cloudwatch.LogQueryWidget({
        title: 'Cold starts: init duration per function (ms), from REPORT lines',
        logGroupNames: props.functionLogGroups.map((g) => g.logGroupName),
        queryLines: INIT_DURATION_QUERY,
        view: cloudwatch.LogQueryVisualizationType.TABLE,
        width: 8,
        height: 6,
      }),
    );
    this.dashboard.addWidgets(
      graph('DynamoDB throttled requests', [props.table.metricThrottledRequestsForOperations({ operations: [...TABLE_OPERATIONS], period: METRIC_PERIOD, label: 'throttled' })]),
      graph('DynamoDB consumed capacity', [
        props.table.metricConsumedReadCapacityUnits({ period: METRIC_PERIOD, label: 'read units' }),
        props.table.metricConsumedWriteCapacityUnits({ period: METRIC_PERIOD, label: 'write units' }),
      ]),
      graph('Back-channel logout', [
        m.metric(METRIC.BackchannelLogouts, { label: 'logouts' }),
        m.metric(METRIC.BackchannelSessionsEnded, { label: 'sessions ended' }),
        m.metric(METRIC.BackchannelLogoutsRefused, { label: 'refused' }),
      ]),
    );

    this.followRequestQuery = new logs.QueryDefinition(this, 'FollowRequest', {
      queryDefinitionName: `${props.dashboardName}/follow-one-request`,
      queryString: FOLLOW_REQUEST_QUERY,
      logGroups: [props.accessLogs, ...props.functionLogGroups],
    });
  }
}
