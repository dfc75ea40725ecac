import { callbackRoute } from '../../lib/routes/callback.js';

export const routes = { 'GET /callback': callbackRoute, 'POST /callback': callbackRoute };
