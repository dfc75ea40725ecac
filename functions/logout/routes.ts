import { logoutRoute } from '../../lib/routes/logout.js';

export const routes = { 'POST /logout': logoutRoute };
