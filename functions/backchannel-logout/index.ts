/** `POST /backchannel-logout/{provider}`: a provider ends a user's sessions (OIDC Back-Channel Logout 1.0). */
import { secretsManagerFetcher } from '../../lib/secrets/secrets-manager.js';
import { tableFromEnv } from '../../lib/store/dynamo-client.js';
import { brokerHandler } from '../handler.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, and what functions/manifest.ts says
// this function reads (key ring, signing keys) is read during init.
export const handler = await brokerHandler('backchannel-logout', routes, { table: tableFromEnv, fetchSecret: secretsManagerFetcher });
