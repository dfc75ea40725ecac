/**
 * The one construct every broker handler is deployed with: it pins the runtime, architecture,
 * memory, timeout, log group and tracing, bundles the function with infra/bundle.ts (as
 * `npm run build` does for the benchmarks), and puts the validated configuration into the code
 * asset.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { AssetHashType, DockerImage, Duration } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledgeNag } from '../nag.js';
import { SECRET_IDS_ENV } from '../../functions/handler.js';
import { FUNCTIONS, type FunctionName } from '../../functions/manifest.js';
import { BUNDLED_CONFIG_FILE, bundleFunction, ESBUILD_OPTIONS, PREPARED_CONFIG_FILE, PROJECT_ROOT, writeConfigFiles } from '../bundle.js';
import { PREPARED_CONFIG_ENV } from '../../lib/config/parse.js';
import { FINAL_WRITE_MS, LEASE_SECONDS, UPSTREAM_BUDGET_MS, WAIT_MS } from '../../lib/broker/refresh.js';
import { PROXY_BUDGET_MS } from '../../lib/proxy/limits.js';

export { PROJECT_ROOT };

/** The newest Node.js runtime Lambda offers (and aws-cdk-lib knows): pinned, so every synth agrees. */
export const BROKER_RUNTIME = lambda.Runtime.NODEJS_24_X;

/**
 * 25 s: under API Gateway's 30 s integration limit, and long enough for the worst request, one that
 * waits out a concurrent refresh's whole lease (`WAIT_MS`) and then refreshes itself (the provider
 * budget and the final write). The lease's safety does not rest on this timeout: a lease holder
 * stops working `UPSTREAM_BUDGET_MS + FINAL_WRITE_MS` after taking it, before `LEASE_SECONDS`.
 */
export const FUNCTION_TIMEOUT = Duration.seconds(25);

/**
 * API Gateway's integration timeout, the longest it allows (29 s), set on every route: a function
 * must answer within it, or the app gets API Gateway's own `503` instead of the broker's JSON.
 */
export const INTEGRATION_TIMEOUT = Duration.seconds(29);

/**
 * The API proxy's timeout (functions/manifest.ts): 29 s, API Gateway's limit. The proxy ends all
 * its work (a wait for a concurrent refresh, an upstream refresh, the API call) `PROXY_BUDGET_MS`
 * (28 s) after it started, so it answers, a `504` included, before either gives up.
 */
export const PROXY_FUNCTION_TIMEOUT = Duration.seconds(FUNCTIONS.proxy.timeoutSeconds);

/**
 * 512 MB by default, chosen from measured duration × price (docs/design.md, "Cost model"):
 * Lambda gives CPU in proportion to memory, so CPU-bound work costs the same GB-seconds at any
 * size below 1,769 MB and waiting on DynamoDB or a provider costs in proportion. 256 MB would save
 * 0.5–5% of a request's cost and double the CPU time of every answer and cold start.
 */
export const DEFAULT_MEMORY_MB = 512;

export { BUNDLED_CONFIG_FILE, PREPARED_CONFIG_FILE } from '../bundle.js';

if (FUNCTION_TIMEOUT.toMilliseconds() <= WAIT_MS + UPSTREAM_BUDGET_MS + FINAL_WRITE_MS) {
  throw new TypeError(`the function timeout (${FUNCTION_TIMEOUT.toSeconds()} s) must leave room to wait out a lease and then refresh`);
}
for (const [name, spec] of Object.entries(FUNCTIONS) as [string, { timeoutSeconds?: number }][]) {
  const timeout = spec.timeoutSeconds === undefined ? FUNCTION_TIMEOUT : Duration.seconds(spec.timeoutSeconds);
  if (timeout.toMilliseconds() > INTEGRATION_TIMEOUT.toMilliseconds()) {
    throw new TypeError(`functions/manifest.ts: ${name} must time out before API Gateway does (29 s)`);
  }
}
if (PROXY_BUDGET_MS >= PROXY_FUNCTION_TIMEOUT.toMilliseconds() || PROXY_BUDGET_MS <= WAIT_MS + UPSTREAM_BUDGET_MS + FINAL_WRITE_MS) {
  throw new TypeError('the proxy\'s budget must end before its function times out, and leave room for an API call after a whole wait and refresh');
}
if (LEASE_SECONDS * 1000 <= UPSTREAM_BUDGET_MS + FINAL_WRITE_MS) {
  throw new TypeError(`the refresh lease (${LEASE_SECONDS} s) must outlast its holder's work`);
}

export interface BrokerFunctionProps {
  /** The handler: `functions/<name>/index.ts`. */
  readonly name: FunctionName;
  /** The validated configuration document (a file), copied into the code asset as `broker.config.json`. */
  readonly configFile: string;
  /**
   * The name of the session table, given to the handler as `DYNAMODB_TABLE`.
   *
   * @default - no `DYNAMODB_TABLE`: the handler uses no table
   */
  readonly tableName?: string;
  /**
   * The Secrets Manager ids the function reads at cold start (`secretsReadBy`, functions/manifest.ts),
   * given to it as `BROKER_SECRET_IDS`: it starts reading them before the rest of its code loads
   * (functions/handler.ts). With several it may call `BatchGetSecretValue`, which reads them in one
   * call. The grants to read each are the stack's.
   *
   * @default - none
   */
  readonly secretIds?: readonly string[];
  /**
   * The function's timeout.
   *
   * @default FUNCTION_TIMEOUT (25 s)
   */
  readonly timeout?: Duration;
  /**
   * Memory in MB (CPU grows with it).
   *
   * @default 512
   */
  readonly memorySize?: number;
  /**
   * How long the function's logs are kept.
   *
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Concurrent executions reserved for (and the most allowed to) this function: a flood on one
   * route cannot then take the account's concurrency from the others.
   *
   * @default - none: the function draws on the account's unreserved concurrency
   */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Log level of the broker's JSON logger (`LOG_LEVEL`).
   *
   * @default 'info'
   */
  readonly logLevel?: 'debug' | 'info' | 'warn' | 'error';
}

export class BrokerFunction extends Construct {
  readonly function: lambda.Function;
  /** The function's execution role: only its log group and X-Ray until a grant adds more. */
  readonly role: iam.Role;
  readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: BrokerFunctionProps) {
    super(scope, id);
    this.logGroup = new logs.LogGroup(this, 'Logs', { retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH });
    // An explicit role instead of AWSLambdaBasicExecutionRole: it may write to this log group only.
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `oauth broker ${props.name} function`,
    });
    this.logGroup.grantWrite(this.role);
    const secretIds = props.secretIds ?? [];
    const readsSeveralSecrets = secretIds.length > 1;
    if (readsSeveralSecrets) {
      // The cold start reads all the function's secrets in one call (functions/handler.ts).
      // BatchGetSecretValue has no resource-level permissions; it returns only the secrets the
      // role may also GetSecretValue, which the stack grants secret by secret.
      this.role.addToPolicy(new iam.PolicyStatement({ actions: ['secretsmanager:BatchGetSecretValue'], resources: ['*'] }));
    }
    acknowledgeNag(this.role, 'AwsSolutions-IAM5[Resource::*]',
      readsSeveralSecrets
        ? 'Two statements have Resource "*", as neither action has resource-level permissions: X-Ray (xray:PutTraceSegments, xray:PutTelemetryRecords), which active tracing adds, and secretsmanager:BatchGetSecretValue, which returns only the secrets the role may GetSecretValue (granted per secret). A test asserts no other statement of a broker function has a wildcard resource.'
        : 'Only the X-Ray statement (xray:PutTraceSegments, xray:PutTelemetryRecords) that active tracing adds has Resource "*": X-Ray has no resource-level permissions. A test asserts no other statement of a broker function has a wildcard resource.');

    const configFile = props.configFile;
    this.function = new lambda.Function(this, 'Function', {
      description: `oauth broker: ${props.name}`,
      runtime: BROKER_RUNTIME,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      // Bundled here with esbuild, never in Docker; the asset's hash is that of the bundle.
      code: lambda.Code.fromAsset(PROJECT_ROOT, {
        assetHashType: AssetHashType.OUTPUT,
        bundling: {
          // Never run: `tryBundle` bundles locally or throws.
          image: DockerImage.fromRegistry('never-used'),
          // CDK caches bundling by the options' JSON, where `tryBundle` does not show: all it
          // depends on must (the function, its configuration, the esbuild options), or every
          // function of the app would get the first one's bundle.
          environment: { BROKER_BUNDLE_INPUTS: bundleInputsHash(props.name, configFile) },
          local: {
            tryBundle(outputDir: string): boolean {
              bundleFunction(props.name, outputDir);
              writeConfigFiles(outputDir, readFileSync(configFile, 'utf8'));
              return true;
            },
          },
        },
      }),
      memorySize: props.memorySize ?? DEFAULT_MEMORY_MB,
      timeout: props.timeout ?? FUNCTION_TIMEOUT,
      ...(props.reservedConcurrentExecutions !== undefined ? { reservedConcurrentExecutions: props.reservedConcurrentExecutions } : {}),
      role: this.role,
      logGroup: this.logGroup,
      tracing: lambda.Tracing.ACTIVE,
      environment: {
        BROKER_CONFIG: BUNDLED_CONFIG_FILE, // relative to the task root, Lambda's working directory
        // The document parsed at synth: no cold start runs the validator (lib/config/prepared.ts).
        [PREPARED_CONFIG_ENV]: PREPARED_CONFIG_FILE,
        LOG_LEVEL: props.logLevel ?? 'info',
        // No NODE_OPTIONS=--enable-source-maps: Node then reads and parses the source map at
        // every cold start (measured ~10 ms of a full CPU, ~35 ms at 512 MB), and the broker logs
        // error names and messages, not stacks. The map ships beside the bundle, for reading a
        // crash's stack offline.
        ...(props.tableName !== undefined ? { DYNAMODB_TABLE: props.tableName } : {}),
        ...(secretIds.length > 0 ? { [SECRET_IDS_ENV]: secretIdsVariable(secretIds) } : {}),
      },
    });
  }
}

/**
 * The most of `BROKER_SECRET_IDS` a function's environment holds. Lambda allows 4 KB for all of a
 * function's variables (the configuration is a file in the asset for that reason); many providers
 * named by ARN would pass it.
 */
export const SECRET_IDS_MAX_BYTES = 1_024;

/**
 * `BROKER_SECRET_IDS` for `ids` (`secretsReadBy`: the key ring and the signing keys first, then
 * the client secrets): a JSON array of as many as fit in `SECRET_IDS_MAX_BYTES`. Those left out
 * are read once the configuration is parsed (functions/serve.ts), a call later in the cold start.
 */
export function secretIdsVariable(ids: readonly string[]): string {
  const kept: string[] = [];
  for (const id of ids) {
    if (Buffer.byteLength(JSON.stringify([...kept, id])) > SECRET_IDS_MAX_BYTES) break;
    kept.push(id);
  }
  return JSON.stringify(kept);
}

/** What a function's code asset is made from, as one hash: its name, its configuration file and the esbuild options. */
function bundleInputsHash(name: string, configFile: string): string {
  return createHash('sha256').update(JSON.stringify([name, ESBUILD_OPTIONS])).update(readFileSync(configFile)).digest('hex');
}
