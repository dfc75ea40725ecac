/** `GET /login`: start a login at the provider. */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { defaultRuntime } from '../../lib/runtime.js';
import { routes } from './routes.js';

// At module scope: a bad configuration fails the cold start, naming every bad field.
defaultRuntime();
export const handler = lambdaHandler(defaultRuntime, routes);
