import { callbackRoute } from '../../lib/routes/callback.js';
import type { FunctionRoutes } from '../handler.js';

export const routes = { 'GET /callback': callbackRoute, 'POST /callback': callbackRoute } satisfies FunctionRoutes<'callback'>;
