import { jwksRoute } from '../../lib/routes/jwks.js';
import { tokenRoute } from '../../lib/routes/token.js';
import { refreshRoute, sessionRoute } from '../../lib/routes/web.js';

/** `/jwks` is here, beside the signing: this function already holds the signing keys, read at init. */
export const routes = { 'POST /token': tokenRoute, 'POST /refresh': refreshRoute, 'GET /session': sessionRoute, 'GET /jwks': jwksRoute };
