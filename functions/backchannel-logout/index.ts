/** `POST /backchannel-logout/{provider}`: a provider ends a user's sessions (OIDC Back-Channel Logout 1.0). */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { defaultRuntime } from '../../lib/runtime.js';
import { secretsManagerFetcher } from '../../lib/secrets/secrets-manager.js';
import { tableFromEnv } from '../../lib/store/dynamo-client.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, naming every bad field.
const runtime = defaultRuntime({ table: tableFromEnv, fetchSecret: secretsManagerFetcher });
// The key ring too, during init: sessions are found by keyed hashes made with it. This function
// reads no client secret and no signing key; its role may read the key ring only.
await runtime.cipher();
export const handler = lambdaHandler(() => runtime, routes);
