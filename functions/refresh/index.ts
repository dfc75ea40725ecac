/** `POST /token` (native), `POST /refresh` and `GET /session` (web). */
import { lambdaHandler } from '../../lib/lambda/apigw.js';
import { tokenRoute } from '../../lib/routes/token.js';
import { refreshRoute, sessionRoute } from '../../lib/routes/web.js';
import { defaultRuntime } from '../../lib/runtime.js';

defaultRuntime();
export const handler = lambdaHandler(defaultRuntime, { 'POST /token': tokenRoute, 'POST /refresh': refreshRoute, 'GET /session': sessionRoute });
