/** The Secrets Manager adapter: one `GetSecretValue` per read, string secrets only. */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SecretError, type SecretFetcher } from './secrets.js';

export function secretsManagerFetcher(client: SecretsManagerClient = new SecretsManagerClient({})): SecretFetcher {
  return async (secretId) => {
    let out;
    try {
      out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
    } catch (cause) {
      const name = cause instanceof Error ? cause.name : 'Error';
      throw new SecretError(`reading secret "${secretId}" failed (${name})`, { cause });
    }
    if (typeof out.SecretString !== 'string') throw new SecretError(`secret "${secretId}" has no SecretString`);
    return out.SecretString;
  };
}
