/** The discovery document (OpenID Connect Discovery 1.0 and RFC 8414): no table, no secrets, no AWS SDK. */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { defaultRuntime } from '../../lib/runtime.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, naming every bad field.
const runtime = defaultRuntime();
export const handler = lambdaHandler(() => runtime, routes);
