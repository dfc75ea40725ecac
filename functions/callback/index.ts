/** `GET|POST /callback`: the provider's answer; creates the session. */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { callbackRoute } from '../../lib/routes/callback.js';
import { defaultRuntime } from '../../lib/runtime.js';

defaultRuntime();
export const handler = lambdaHandler(defaultRuntime, { 'GET /callback': callbackRoute, 'POST /callback': callbackRoute });
