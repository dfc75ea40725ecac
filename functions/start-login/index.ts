/** `GET /login`: start a login at the provider. */
import { tableFromEnv } from '../../lib/store/dynamo-client.js';
import { brokerHandler } from '../handler.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, and what functions/manifest.ts says
// this function reads (key ring, signing keys) is read during init.
export const handler = await brokerHandler('start-login', routes, { table: tableFromEnv });
