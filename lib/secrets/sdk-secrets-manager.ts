/**
 * Secrets Manager through the AWS SDK, made on the first read, for tools on an operator's machine
 * (the CLI, the local runner): credentials wherever the SDK finds them (a profile, SSO), not only
 * from the environment as Lambda's are. Never imported by a function.
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { secretsManagerFetcher } from './secrets-manager.js';
import type { SecretFetcher } from './secrets.js';

export function sdkSecretsManagerFetcher(): SecretFetcher {
  let client: SecretsManagerClient | undefined;
  return secretsManagerFetcher({
    call: async <T>(_operation: string, input: object) => {
      client ??= new SecretsManagerClient({});
      return (await client.send(new GetSecretValueCommand(input as { SecretId: string }))) as T;
    },
  });
}
