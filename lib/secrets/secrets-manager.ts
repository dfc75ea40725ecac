/**
 * The Secrets Manager adapter: one `GetSecretValue` per read, string secrets only, through the
 * small AWS JSON client (awsJson1_1), with the function role's credentials from the environment.
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

/** Reads secrets with `client`, by default Secrets Manager from the environment, made on the first read. */
export function secretsManagerFetcher(client?: Pick<AwsJsonClient, 'call'>): SecretFetcher {
  let reader = client;
  return async (secretId) => {
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
}
