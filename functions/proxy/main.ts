/** What functions/proxy/index.ts loads once its secret reads have started: its routes and the runtime. */
export { routes } from './routes.js';
export { serve } from '../serve.js';
