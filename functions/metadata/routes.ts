import { metadataRoute } from '../../lib/routes/metadata.js';
import type { FunctionRoutes } from '../handler.js';

export const routes = { 'GET /.well-known/openid-configuration': metadataRoute, 'GET /.well-known/oauth-authorization-server': metadataRoute } satisfies FunctionRoutes<'metadata'>;
