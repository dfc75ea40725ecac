/** `POST /logout`: end a session (web cookie or native handle; RFC 7009 revocation); `GET /end-session` (RP-initiated logout). */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { defaultRuntime } from '../../lib/runtime.js';
import { secretsManagerFetcher } from '../../lib/secrets/secrets-manager.js';
import { tableFromEnv } from '../../lib/store/dynamo-client.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, naming every bad field.
const runtime = defaultRuntime({ table: tableFromEnv, fetchSecret: secretsManagerFetcher });
// The key ring and the ID-token signing keys (which check the hints of /end-session) too, during
// init: a missing or malformed ring fails the start, not a request. Both reads at once, as in refresh.
await Promise.all([runtime.cipher(), runtime.signing.get()]);
export const handler = lambdaHandler(() => runtime, routes);
