/** `POST /backchannel-logout/{provider}`: a provider ends a user's sessions (OIDC Back-Channel Logout 1.0). */
import { secretsManagerFetcher } from '../../lib/secrets/secrets-manager.js';
import { dynamoFromEnv } from '../../lib/store/dynamo-client.js';
import { brokerHandler } from '../handler.js';

// At module scope: a bad configuration fails the cold start, and the secrets functions/manifest.ts
// says this function reads are read during init, while its routes (a chunk of their own) load.
export const handler = await brokerHandler('backchannel-logout', () => import('./main.js'), { dynamo: dynamoFromEnv, fetchSecret: secretsManagerFetcher });
