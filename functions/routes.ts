/** Which function serves which route: the one table the CDK stack and the local runner share. */
export const FUNCTION_ROUTES = {
  'start-login': ['GET /login'],
  callback: ['GET /callback', 'POST /callback'],
  refresh: ['POST /token', 'OPTIONS /token', 'POST /refresh', 'OPTIONS /refresh', 'GET /session', 'OPTIONS /session', 'GET /jwks'],
  logout: ['POST /logout', 'OPTIONS /logout', 'GET /end-session'],
  metadata: ['GET /.well-known/openid-configuration', 'GET /.well-known/oauth-authorization-server'],
  /** The API proxy: every method below `/api/` (API Gateway's greedy `{proxy+}`), CORS preflights included. */
  proxy: ['ANY /api/{proxy+}'],
  'backchannel-logout': ['POST /backchannel-logout/{provider}'],
} as const satisfies Record<string, readonly string[]>;

export type FunctionName = keyof typeof FUNCTION_ROUTES;
export const FUNCTION_NAMES = Object.keys(FUNCTION_ROUTES) as FunctionName[];
