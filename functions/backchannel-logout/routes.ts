import { backchannelLogoutRoute } from '../../lib/routes/backchannel-logout.js';
import type { FunctionRoutes } from '../handler.js';

export const routes = { 'POST /backchannel-logout/{provider}': backchannelLogoutRoute } satisfies FunctionRoutes<'backchannel-logout'>;
