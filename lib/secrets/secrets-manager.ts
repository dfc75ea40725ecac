/**
 * The Secrets Manager adapter: one `GetSecretValue` per read, and `BatchGetSecretValue` for the
 * secrets a cold start reads at once; string secrets only, through the small AWS JSON client
 * (awsJson1_1), with the function role's credentials from the environment.
 *
 * Part of what a function loads first (functions/handler.ts): it imports nothing of the broker but
 * the AWS client, and only types from lib/secrets/secrets.ts.
 */
import { createAwsJsonClient, credentialsFromEnv, endpointFor, regionFromEnv, type AwsJsonClient } from '../aws/json-client.js';
import type { EarlyReads, SecretFetcher } from './secrets.js';

/** A read from Secrets Manager that failed; named by its cause's class, never by the value. */
export class SecretReadError extends Error {
  override readonly name = 'SecretReadError';
}

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

/** How long a batch read may take, its retries included, before its ids are read one by one. */
export const BATCH_BUDGET_MS = 1_500;

/**
 * How long one `GetSecretValue` may take, its retries included. With the batch's budget before it,
 * the reads of a cold start end within 9 s, inside Lambda's 10 s init limit, even against a
 * Secrets Manager that never answers (three attempts of 3 s each, unbounded, would end past it).
 */
export const READ_BUDGET_MS = 7_500;

interface SecretValueEntry {
  readonly ARN?: unknown;
  readonly Name?: unknown;
  readonly SecretString?: unknown;
}

/**
 * Whether a `BatchGetSecretValue` entry may be the secret asked for as `id`: an ARN asked for is
 * the entry's ARN, or its ARN without the six random characters Secrets Manager appends (a partial
 * ARN); a name (never an ARN: a name cannot hold ":") is the entry's name.
 */
function mayAnswer(id: string, entry: SecretValueEntry): boolean {
  if (!id.startsWith('arn:')) return id === entry.Name;
  return typeof entry.ARN === 'string' && (entry.ARN === id || (entry.ARN.length === id.length + 7 && entry.ARN.startsWith(`${id}-`)));
}

/**
 * The values of an answer by the id asked for, taken only where the pairing is unambiguous: the
 * entry may answer that id alone, and the id no other entry. A secret of another account asked for
 * by ARN and one of this account asked for by the same name, or a partial ARN that fits two
 * secrets, are then left to `GetSecretValue`, which names exactly one secret; never is one
 * secret's value given to another's id.
 */
function answersById(ids: readonly string[], entries: readonly SecretValueEntry[]): Map<string, string> {
  const found = new Map<string, string>();
  const valued = entries.filter((e): e is SecretValueEntry & { SecretString: string } => typeof e === 'object' && e !== null && typeof e.SecretString === 'string');
  for (const id of ids) {
    const candidates = valued.filter((entry) => mayAnswer(id, entry));
    if (candidates.length !== 1) continue;
    const entry = candidates[0]!;
    if (ids.filter((other) => mayAnswer(other, entry)).length === 1) found.set(id, entry.SecretString);
  }
  return found;
}

/** A read that failed, named by its cause's class (its message may quote more than it should). */
function failed(what: string, cause: unknown): SecretReadError {
  return new SecretReadError(`${what} failed (${cause instanceof Error ? cause.name : 'Error'})`, { cause });
}

/** Reads secrets with `client`, by default Secrets Manager from the environment, made on the first read. */
export function secretsManagerFetcher(client?: Pick<AwsJsonClient, 'call'>): SecretFetcher {
  let reader = client;
  const one = async (secretId: string): Promise<string> => {
    let out: { SecretString?: unknown };
    try {
      reader ??= secretsManagerFromEnv();
      out = await reader.call<{ SecretString?: unknown }>('GetSecretValue', { SecretId: secretId }, { deadline: Date.now() + READ_BUDGET_MS });
    } catch (cause) {
      throw failed(`reading secret "${secretId}"`, cause);
    }
    if (typeof out.SecretString !== 'string') throw new SecretReadError(`secret "${secretId}" has no SecretString`);
    return out.SecretString;
  };
  // The answer's `Errors` (a secret denied or missing) are left to each id's own read, which
  // names them. One attempt bounded by `BATCH_BUDGET_MS`, retries included: what the batch does not
  // bring in time is read one by one, and the cold start must not wait twice.
  const many = async (secretIds: readonly string[]): Promise<ReadonlyMap<string, string>> => {
    const chunks: string[][] = [];
    for (let i = 0; i < secretIds.length; i += BATCH_LIMIT) chunks.push(secretIds.slice(i, i + BATCH_LIMIT));
    reader ??= secretsManagerFromEnv();
    const client = reader;
    const deadline = Date.now() + BATCH_BUDGET_MS;
    // Each chunk on its own: one that fails leaves its ids to their own reads, not the others'.
    const answers = await Promise.allSettled(chunks.map(async (chunk) => {
      const out = await client.call<{ SecretValues?: unknown }>('BatchGetSecretValue', { SecretIdList: chunk }, { deadline });
      return answersById(chunk, Array.isArray(out.SecretValues) ? (out.SecretValues as SecretValueEntry[]) : []);
    }));
    const rejected = answers.find((a): a is PromiseRejectedResult => a.status === 'rejected');
    if (rejected && answers.every((a) => a.status === 'rejected')) {
      throw failed(`reading ${secretIds.length} secrets at once`, rejected.reason);
    }
    return new Map(answers.flatMap((a) => (a.status === 'fulfilled' ? [...a.value] : [])));
  };
  return Object.assign(one, { many });
}

/**
 * Starts reading `ids` at once, the first thing a cold start does (functions/handler.ts): several
 * in one call where the fetcher has one, else each on its own. An id the call leaves out is left
 * out of `values` (the resolver reads it on its own, and names the error then); a failed call for
 * them all rejects `values`. An id read on its own is in `each`, its read's outcome final (the
 * resolver does not read it again). Every rejection is marked handled here, since its taker comes
 * later.
 */
export function readAtStart(fetchSecret: SecretFetcher, ids: readonly string[]): EarlyReads | undefined {
  if (ids.length === 0) return undefined;
  if (ids.length > 1 && fetchSecret.many) {
    const values = fetchSecret.many(ids);
    values.catch(() => undefined);
    return { ids, values };
  }
  const each = new Map(ids.map((id) => [id, fetchSecret(id)] as const));
  for (const read of each.values()) read.catch(() => undefined);
  const values = Promise.all([...each].map(([id, read]) => read.then((value): [string, string][] => [[id, value]], (): [string, string][] => []))).then((pairs) => new Map(pairs.flat()));
  return { ids, values, each };
}
