/** `POST /token`: the native apps' token endpoint (RFC 6749 §3.2, OAuth 2.1 semantics). */
import { readHandle } from '../broker/credentials.js';
import { required, single } from '../broker/params.js';
import { redeemCode } from '../broker/redeem.js';
import { refreshSession, type RefreshOutcome } from '../broker/refresh.js';
import { BrokerError, InvalidClientError, InvalidGrantError } from '../errors.js';
import { json } from '../http/respond.js';
import { oidcAnswer } from '../oidc/id-token-issuer.js';
import { formBody, route } from './common.js';

export const tokenRoute = route({ errors: 'native', cors: 'origins' }, async (rt, req) => {
  const form = formBody(req);
  const grantType = required(form, 'grant_type');
  // RFC 6749 §2.3, §5.2: the broker's clients are public and authenticate with nothing; one that
  // tries (HTTP Basic, and no client_id in the body) is answered invalid_client, with a challenge.
  if (single(form, 'client_id') === undefined && req.headers['authorization'] !== undefined) {
    throw new InvalidClientError('the broker\'s clients send "client_id" in the body and authenticate with nothing');
  }
  const clientId = required(form, 'client_id');
  const client = Object.hasOwn(rt.config.clients, clientId) ? rt.config.clients[clientId] : undefined;
  if (!client) throw new InvalidClientError('unknown "client_id"');
  if (client.type !== 'native') throw new BrokerError('unauthorized_client', 400, 'web clients use the session cookie, not /token');
  let outcome: RefreshOutcome;
  if (grantType === 'authorization_code') {
    outcome = await redeemCode(rt, {
      code: required(form, 'code'),
      codeVerifier: required(form, 'code_verifier'),
      clientId,
      redirectUri: required(form, 'redirect_uri'),
    });
  } else if (grantType === 'refresh_token') {
    const credential = readHandle(required(form, 'refresh_token'));
    if (!credential) throw new InvalidGrantError('unknown refresh token');
    outcome = await refreshSession(rt, { kind: 'handle', credential, clientId });
  } else {
    throw new BrokerError('unsupported_grant_type', 400, '"grant_type" must be authorization_code or refresh_token');
  }
  const { grant } = outcome;
  // The broker's own ID token and the app's scope; the app's nonce only in the code exchange's answer.
  const oidc = await oidcAnswer(rt, outcome.session, { codeExchange: grantType === 'authorization_code' });
  return json(200, {
    access_token: grant.accessToken,
    token_type: 'Bearer',
    expires_in: grant.expiresIn,
    refresh_token: outcome.handle,
    refresh_expires_in: grant.sessionExpiresIn,
    ...oidc,
    ...(grant.scope !== undefined ? { provider_scope: grant.scope } : {}),
    ...grant.extras,
  }, { 'x-broker-token-source': outcome.source });
});
