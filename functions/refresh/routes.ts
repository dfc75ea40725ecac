import { jwksRoute } from '../../lib/routes/jwks.js';
import { tokenRoute } from '../../lib/routes/token.js';
import { refreshRoute, sessionRoute } from '../../lib/routes/web.js';
import type { FunctionRoutes } from '../handler.js';

export const routes = { 'POST /token': tokenRoute, 'POST /refresh': refreshRoute, 'GET /session': sessionRoute, 'GET /jwks': jwksRoute } satisfies FunctionRoutes<'refresh'>;
