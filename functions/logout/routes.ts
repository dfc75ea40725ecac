import { endSessionRoute } from '../../lib/routes/end-session.js';
import { logoutRoute } from '../../lib/routes/logout.js';
import type { FunctionRoutes } from '../handler.js';

export const routes = { 'POST /logout': logoutRoute, 'GET /end-session': endSessionRoute, 'POST /end-session': endSessionRoute } satisfies FunctionRoutes<'logout'>;
