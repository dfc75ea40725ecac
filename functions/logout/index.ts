/** `POST /logout`: end a session (web cookie or native handle; RFC 7009 revocation); `GET /end-session` (RP-initiated logout). */
import { secretsManagerFetcher } from '../../lib/secrets/secrets-manager.js';
import { dynamoFromEnv } from '../../lib/store/dynamo-client.js';
import { brokerHandler } from '../handler.js';

// At module scope: a bad configuration fails the cold start, and the secrets functions/manifest.ts
// says this function reads are read during init, while its routes (a chunk of their own) load.
export const handler = await brokerHandler('logout', () => import('./main.js'), { dynamo: dynamoFromEnv, fetchSecret: secretsManagerFetcher });
