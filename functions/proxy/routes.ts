import { proxyRoute } from '../../lib/routes/proxy.js';
import type { FunctionRoutes } from '../handler.js';

/** Every method below `/api/`; the CORS preflight of those paths is answered before any route. */
export const routes = { 'ANY /api/{proxy+}': proxyRoute } satisfies FunctionRoutes<'proxy'>;
