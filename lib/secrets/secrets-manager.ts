/**
 * The Secrets Manager adapter: one `GetSecretValue` per read, and `BatchGetSecretValue` for the
 * secrets a cold start reads at once; string secrets only, through the small AWS JSON client
 * (awsJson1_1), with the function role's credentials from the environment.
 */
import { createAwsJsonClient, credentialsFromEnv, endpointFor, regionFromEnv, type AwsJsonClient } from '../aws/json-client.js';
import { SecretError, type SecretFetcher } from './secrets.js';

/** Secrets Manager in this function's region (`AWS_REGION`; `AWS_ENDPOINT_URL_SECRETS_MANAGER` to point elsewhere). */
export function secretsManagerFromEnv(env: NodeJS.ProcessEnv = process.env): AwsJsonClient {
  const region = regionFromEnv(env);
  return createAwsJsonClient({
    endpoint: endpointFor('secretsmanager', 'SECRETS_MANAGER', region, env),
    region,
    service: 'secretsmanager',
    targetPrefix: 'secretsmanager',
    jsonVersion: '1.1',
    credentials: credentialsFromEnv(env),
    // Reads happen during init and every 15 minutes: bounded, so a hung connection fails the
    // read (and the cold start, or the request) instead of the function's timeout.
    connectionTimeoutMs: 1_000,
    requestTimeoutMs: 3_000,
  });
}

/** `BatchGetSecretValue` takes at most this many ids per call. */
export const BATCH_LIMIT = 20;

interface SecretValueEntry {
  readonly ARN?: unknown;
  readonly Name?: unknown;
  readonly SecretString?: unknown;
}

/**
 * Whether a `BatchGetSecretValue` entry is the secret asked for as `id`: its name, its ARN, or its
 * ARN without the six random characters Secrets Manager appends (a partial ARN).
 */
function isAnswerTo(id: string, entry: SecretValueEntry): boolean {
  if (id === entry.Name || id === entry.ARN) return true;
  return id.startsWith('arn:') && typeof entry.ARN === 'string' && entry.ARN.length === id.length + 7 && entry.ARN.startsWith(`${id}-`);
}

/** Reads secrets with `client`, by default Secrets Manager from the environment, made on the first read. */
export function secretsManagerFetcher(client?: Pick<AwsJsonClient, 'call'>): SecretFetcher {
  let reader = client;
  const one = async (secretId: string): Promise<string> => {
    let out: { SecretString?: unknown };
    try {
      reader ??= secretsManagerFromEnv();
      out = await reader.call<{ SecretString?: unknown }>('GetSecretValue', { SecretId: secretId });
    } catch (cause) {
      const name = cause instanceof Error ? cause.name : 'Error';
      throw new SecretError(`reading secret "${secretId}" failed (${name})`, { cause });
    }
    if (typeof out.SecretString !== 'string') throw new SecretError(`secret "${secretId}" has no SecretString`);
    return out.SecretString;
  };
  // The answer's `Errors` (a secret denied or missing) are left to each id's own read, which
  // names them; only values that are strings and answer an id asked for are taken.
  const many = async (secretIds: readonly string[]): Promise<ReadonlyMap<string, string>> => {
    const found = new Map<string, string>();
    const chunks: string[][] = [];
    for (let i = 0; i < secretIds.length; i += BATCH_LIMIT) chunks.push(secretIds.slice(i, i + BATCH_LIMIT));
    try {
      reader ??= secretsManagerFromEnv();
      const client = reader;
      await Promise.all(chunks.map(async (chunk) => {
        const out = await client.call<{ SecretValues?: unknown }>('BatchGetSecretValue', { SecretIdList: chunk });
        const entries = Array.isArray(out.SecretValues) ? (out.SecretValues as SecretValueEntry[]) : [];
        for (const entry of entries) {
          if (typeof entry !== 'object' || entry === null || typeof entry.SecretString !== 'string') continue;
          const id = chunk.find((asked) => isAnswerTo(asked, entry));
          if (id !== undefined) found.set(id, entry.SecretString);
        }
      }));
    } catch (cause) {
      const name = cause instanceof Error ? cause.name : 'Error';
      throw new SecretError(`reading ${secretIds.length} secrets at once failed (${name})`, { cause });
    }
    return found;
  };
  return Object.assign(one, { many });
}
