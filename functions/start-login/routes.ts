import { loginRoute } from '../../lib/routes/login.js';

export const routes = { 'GET /login': loginRoute };
