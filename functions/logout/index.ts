/** `POST /logout`: end a session (web cookie or native handle; RFC 7009 revocation). */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { logoutRoute } from '../../lib/routes/logout.js';
import { defaultRuntime } from '../../lib/runtime.js';

defaultRuntime();
export const handler = lambdaHandler(defaultRuntime, { 'POST /logout': logoutRoute });
