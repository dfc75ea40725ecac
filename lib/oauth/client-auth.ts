/**
 * Client authentication at the provider's token and revocation endpoints (RFC 6749 §2.3.1):
 * `client_secret_basic` form-urlencodes id and secret before base64, `client_secret_post` puts
 * them in the body, `none` sends only `client_id`. Bodies are `form` or `json` per provider.
 */
import type { Provider } from '../config/parse.js';

/** RFC 6749 Appendix B: application/x-www-form-urlencoded, with %20 for spaces. */
function formEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export function basicAuthorization(clientId: string, clientSecret: string): string {
  return `Basic ${Buffer.from(`${formEncode(clientId)}:${formEncode(clientSecret)}`).toString('base64')}`;
}

export interface EncodedRequest {
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** Builds the headers and body of a client-authenticated request to the provider. */
export function encodeClientRequest(provider: Provider, secret: string | undefined, fields: Record<string, string>): EncodedRequest {
  const headers: Record<string, string> = { accept: 'application/json' };
  const all: Record<string, string> = { ...fields };
  switch (provider.clientAuth) {
    case 'client_secret_basic':
      if (secret === undefined) throw new TypeError('client_secret_basic without a secret');
      headers['authorization'] = basicAuthorization(provider.clientId, secret);
      break;
    case 'client_secret_post':
      if (secret === undefined) throw new TypeError('client_secret_post without a secret');
      all['client_id'] = provider.clientId;
      all['client_secret'] = secret;
      break;
    case 'none':
      all['client_id'] = provider.clientId;
      break;
  }
  if (provider.tokenRequestFormat === 'json') {
    headers['content-type'] = 'application/json';
    return { headers, body: JSON.stringify(all) };
  }
  headers['content-type'] = 'application/x-www-form-urlencoded';
  return { headers, body: new URLSearchParams(all).toString() };
}
