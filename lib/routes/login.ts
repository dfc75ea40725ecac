/** `GET /login`. */
import { startLogin } from '../broker/start-login.js';
import { errorResponse, redirect } from '../http/respond.js';
import { logFailure, type Route } from './common.js';

export const loginRoute: Route = async (rt, req) => {
  try {
    const result = await startLogin(rt, req.query);
    return result.kind === 'provider' ? redirect(result.location, { cookies: [result.cookie] }) : redirect(result.location);
  } catch (err) {
    logFailure(rt, err);
    return errorResponse(err);
  }
};
