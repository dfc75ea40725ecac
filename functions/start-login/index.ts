/** `GET /login`: start a login at the provider. */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { defaultRuntime } from '../../lib/runtime.js';
import { tableFromEnv } from '../../lib/store/dynamo-client.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, naming every bad field.
const runtime = defaultRuntime({ table: tableFromEnv });
export const handler = lambdaHandler(() => runtime, routes);
