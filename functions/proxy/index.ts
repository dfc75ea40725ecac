/** `/api/{api}/{path}`, any method: the API proxy for web apps (CONTRACT.md v2). No signing keys: it mints no ID token. */
import { secretsManagerFetcher } from '../../lib/secrets/secrets-manager.js';
import { tableFromEnv } from '../../lib/store/dynamo-client.js';
import { brokerHandler } from '../handler.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, and what functions/manifest.ts says
// this function reads (key ring, signing keys) is read during init.
export const handler = await brokerHandler('proxy', routes, { table: tableFromEnv, fetchSecret: secretsManagerFetcher });
