import { proxyRoute } from '../../lib/routes/proxy.js';

/** Every method below `/api/`; the CORS preflight of those paths is answered before any route. */
export const routes = { 'ANY /api/{proxy+}': proxyRoute };
