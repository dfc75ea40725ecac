/**
 * Structured JSON log lines, one object a line. Callers pass only values that are safe to log:
 * never a secret, token, code, handle or cookie value. `errorFields` reduces an error to its
 * name, code and message, and BrokerError messages are written never to hold such values.
 */
import { BrokerError, UpstreamOAuthError } from './errors.js';
import { METRICS_NAMESPACE, SERVICE_DIMENSION, type MetricName } from './metrics-names.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFields = Record<string, string | number | boolean | null | undefined>;

export interface Logger {
  debug(event: string, fields?: LogFields): void;
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
  /**
   * An info line that is also a CloudWatch metric (Embedded Metric Format): `values` by metric
   * name, under the service dimension and, when given, one more dimension (with `aggregate`, under
   * the service dimension alone as well: one line, two series).
   */
  metric(event: string, values: Partial<Record<MetricName, number>>, fields?: LogFields, dimension?: MetricDimension): void;
}

export interface MetricDimension {
  readonly name: string;
  readonly value: string;
  /** Also emit the values under the service dimension alone (for alarms over every value). */
  readonly aggregate?: boolean;
}

const LEVELS: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogSink = (line: string) => void;

export interface LoggerOptions {
  readonly level?: LogLevel;
  readonly sink?: LogSink;
  readonly base?: LogFields;
  /**
   * The `Service` dimension of every metric (in AWS, the stack's name).
   *
   * @default SERVICE_DIMENSION.value ('broker')
   */
  readonly service?: string;
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** `Date.prototype.toISOString`'s form, from the UTC fields: its first call costs a process 0.2-0.4 ms. */
export const isoTime = (d: Date): string =>
  `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1, 2)}-${pad(d.getUTCDate(), 2)}T${pad(d.getUTCHours(), 2)}:${pad(d.getUTCMinutes(), 2)}:${pad(d.getUTCSeconds(), 2)}.${pad(d.getUTCMilliseconds(), 3)}Z`;

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = LEVELS[options.level ?? 'info'];
  const service = options.service || SERVICE_DIMENSION.value;
  const sink = options.sink ?? ((line: string) => process.stdout.write(line + '\n'));
  const base = options.base ?? {};
  const write = (level: LogLevel, event: string, fields?: LogFields) => {
    if (LEVELS[level] < min) return;
    sink(JSON.stringify({ level, time: isoTime(new Date()), event, ...base, ...fields }));
  };
  return {
    debug: (e, f) => write('debug', e, f),
    info: (e, f) => write('info', e, f),
    warn: (e, f) => write('warn', e, f),
    error: (e, f) => write('error', e, f),
    child: (fields) => createLogger({ ...options, base: { ...base, ...fields } }),
    metric: (event, values, fields, dimension) => {
      if (LEVELS.info < min) return;
      const names = Object.keys(values);
      const dims = dimension
        ? [...(dimension.aggregate ? [[SERVICE_DIMENSION.name]] : []), [SERVICE_DIMENSION.name, dimension.name]]
        : [[SERVICE_DIMENSION.name]];
      sink(JSON.stringify({
        level: 'info', time: isoTime(new Date()), event, ...base, ...fields,
        [SERVICE_DIMENSION.name]: service,
        ...(dimension ? { [dimension.name]: dimension.value } : {}),
        ...values,
        _aws: {
          Timestamp: Date.now(),
          CloudWatchMetrics: [{
            Namespace: METRICS_NAMESPACE,
            Dimensions: dims,
            Metrics: names.map((Name) => ({ Name, Unit: Name.endsWith('Latency') ? 'Milliseconds' : 'Count' })),
          }],
        },
      }));
    },
  };
}

/** Safe fields of an error: its class, OAuth code and message, and the provider's error code. */
export function errorFields(err: unknown): LogFields {
  if (err instanceof UpstreamOAuthError) {
    return { error: err.name, code: err.code, upstream_error: err.upstreamCode, upstream_status: err.upstreamStatus };
  }
  if (err instanceof BrokerError) {
    // A SyntaxError's message quotes the text it could not parse (a token, a config): name only.
    const cause = err.cause instanceof SyntaxError ? err.cause.name : err.cause instanceof Error ? `${err.cause.name}: ${err.cause.message}` : undefined;
    return { error: err.name, code: err.code, message: err.description, cause };
  }
  if (err instanceof Error) return { error: err.name, message: err.message };
  return { error: typeof err };
}
