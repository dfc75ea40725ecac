import { backchannelLogoutRoute } from '../../lib/routes/backchannel-logout.js';

export const routes = { 'POST /backchannel-logout/{provider}': backchannelLogoutRoute };
