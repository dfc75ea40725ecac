import { loginRoute } from '../../lib/routes/login.js';
import type { FunctionRoutes } from '../handler.js';

export const routes = { 'GET /login': loginRoute, 'POST /login': loginRoute } satisfies FunctionRoutes<'start-login'>;
