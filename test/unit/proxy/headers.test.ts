import { describe, expect, it } from 'vitest';
import { EXPOSED_RESPONSE_HEADERS, REQUEST_HEADERS, RESPONSE_HEADERS, requestHeadersFor, responseHeadersFrom } from '../../../lib/proxy/headers.js';

describe('the allowlists', () => {
  it('are the contract\'s, exactly', () => {
    expect(REQUEST_HEADERS).toEqual(['accept', 'accept-language', 'content-type', 'content-language', 'if-match', 'if-none-match', 'if-modified-since', 'if-unmodified-since', 'range', 'x-request-id']);
    expect(RESPONSE_HEADERS).toEqual(['content-type', 'content-language', 'content-range', 'accept-ranges', 'cache-control', 'etag', 'last-modified', 'location', 'retry-after', 'www-authenticate', 'x-request-id']);
    expect(EXPOSED_RESPONSE_HEADERS).toEqual(['content-range', 'accept-ranges', 'etag', 'location', 'retry-after', 'www-authenticate', 'x-request-id']);
  });

  it('keep only allowlisted request headers: never cookies, Authorization or X-Broker-*', () => {
    expect(requestHeadersFor({
      accept: 'a', 'If-Match': '"x"', cookie: 'c=1', authorization: 'Bearer b', 'x-broker-csrf': '1', 'x-broker-other': 'o', origin: 'o', host: 'h', 'content-length': '1',
    })).toEqual({ accept: 'a', 'if-match': '"x"' });
  });

  it('drop the request headers the browser\'s Connection header names (RFC 9110 §7.6.1)', () => {
    expect(requestHeadersFor({ connection: 'x-request-id, Accept-Language', 'x-request-id': 'r1', 'accept-language': 'de', accept: 'a' })).toEqual({ accept: 'a' });
  });

  it('drop a response header that holds the access token the proxy sent (an API echoing it)', () => {
    expect(responseHeadersFrom({ 'www-authenticate': 'Bearer error="invalid_token", token="tok-123"', etag: '"e"', 'x-request-id': ['a', 'tok-123'] }, 'tok-123')).toEqual({ etag: '"e"' });
  });

  it('keep only allowlisted response headers: never Set-Cookie; repeated ones joined', () => {
    expect(responseHeadersFrom({
      'content-type': 'text/plain', 'set-cookie': ['a=1', 'b=2'], 'www-authenticate': ['Bearer', 'Basic'], 'access-control-allow-origin': '*', server: 's', 'content-length': '9', etag: undefined,
    })).toEqual({ 'content-type': 'text/plain', 'www-authenticate': 'Bearer, Basic' });
  });
});
