/** `POST /token` (native), `POST /refresh` and `GET /session` (web), `GET /jwks`. */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { ID_TOKEN_ALGS } from '../../lib/oidc/signing-key-ring.js';
import { defaultRuntime } from '../../lib/runtime.js';
import { secretsManagerFetcher } from '../../lib/secrets/secrets-manager.js';
import { tableFromEnv } from '../../lib/store/dynamo-client.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, naming every bad field.
const runtime = defaultRuntime({ table: tableFromEnv, fetchSecret: secretsManagerFetcher });
// The key ring and the ID-token signing keys too, during init: a missing or malformed ring fails
// the start, not a request. Both reads at once: Secrets Manager's answer time, not the second
// connection's handshake, is what a sequential second read would add. The current private keys
// are imported once for the container.
const [, signing] = await Promise.all([runtime.cipher(), runtime.signing.get()]);
await Promise.all(ID_TOKEN_ALGS.map((alg) => signing.signingKey(alg)));
export const handler = lambdaHandler(() => runtime, routes);
