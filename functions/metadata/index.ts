/** The discovery document (OpenID Connect Discovery 1.0 and RFC 8414): no table, no secrets, no AWS SDK. */
import { brokerHandler } from '../handler.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, and what functions/manifest.ts says
// this function reads (key ring, signing keys) is read during init.
export const handler = await brokerHandler('metadata', routes, {});
