/** The discovery document (OpenID Connect Discovery 1.0 and RFC 8414): no table, no secrets, no AWS SDK. */
import { brokerHandler } from '../handler.js';
import * as main from './main.js';

// At module scope: a bad configuration fails the cold start. This function reads no secret, so
// nothing is on the wire during init for a chunk of its own to overlap: its routes are bundled
// in, one file (a dynamic import's chunks cost this cold start about 4 ms).
export const handler = await brokerHandler('metadata', async () => main, {});
