/** `GET /login`: start a login at the provider. */
import { dynamoFromEnv } from '../../lib/store/dynamo-client.js';
import { brokerHandler } from '../handler.js';
import * as main from './main.js';

// At module scope: a bad configuration fails the cold start. This function reads no secret, so
// nothing is on the wire during init for a chunk of its own to overlap: its routes are bundled
// in, one file (a dynamic import's chunks cost this cold start about 4 ms).
export const handler = await brokerHandler('start-login', async () => main, { dynamo: dynamoFromEnv });
