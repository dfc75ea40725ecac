/** `/api/{api}/{path}`, any method: the API proxy for web apps (CONTRACT.md v2). No signing keys: it mints no ID token. */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { defaultRuntime } from '../../lib/runtime.js';
import { secretsManagerFetcher } from '../../lib/secrets/secrets-manager.js';
import { tableFromEnv } from '../../lib/store/dynamo-client.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, naming every bad field.
const runtime = defaultRuntime({ table: tableFromEnv, fetchSecret: secretsManagerFetcher });
// The key ring too, during init: a missing or malformed ring fails the start, not a request.
await runtime.cipher();
export const handler = lambdaHandler(() => runtime, routes);
