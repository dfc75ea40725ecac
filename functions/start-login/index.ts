/** `GET /login`: start a login at the provider. */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { loginRoute } from '../../lib/routes/login.js';
import { defaultRuntime } from '../../lib/runtime.js';

defaultRuntime();
export const handler = lambdaHandler(defaultRuntime, { 'GET /login': loginRoute });
