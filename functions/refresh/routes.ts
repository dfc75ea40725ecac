import { tokenRoute } from '../../lib/routes/token.js';
import { refreshRoute, sessionRoute } from '../../lib/routes/web.js';

export const routes = { 'POST /token': tokenRoute, 'POST /refresh': refreshRoute, 'GET /session': sessionRoute };
