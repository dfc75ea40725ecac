/** `GET /callback` and `POST /callback` (response_mode=form_post, answered with 303). */
import { handleCallback } from '../broker/callback.js';
import { redirect } from '../http/respond.js';
import { formBody, route } from './common.js';

export const callbackRoute = route({ errors: 'redirect', cors: 'none' }, async (rt, req) => {
  const post = req.method === 'POST';
  const params = post ? formBody(req) : req.query;
  const result = await handleCallback(rt, params, req.cookies);
  return redirect(result.location, { status: post ? 303 : 302, cookies: result.cookies });
});
