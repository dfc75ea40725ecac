import { describe, expect, it } from 'vitest';
import { thrownBy } from '../../support/errors.js';
import { parseConfig } from '../../../lib/config/parse.js';
import { BrokerError } from '../../../lib/errors.js';
import { apiUrl, checkedPath, parseProxyPath } from '../../../lib/proxy/path.js';
import { minimalConfigDoc } from '../fixtures.js';

/** The status and code a path is refused with. */
function refusal(fn: () => unknown): { status: number; code: string } {
  const { status, code } = thrownBy(fn, BrokerError);
  return { status, code };
}

const api = (url: string) => {
  const doc = minimalConfigDoc();
  doc['apis'] = { a: { url, provider: 'p' } };
  return parseConfig(doc, { runtime: 'local' }).apis['a']!;
};

describe('parseProxyPath: refusals', () => {
  it.each([
    // as the local runner (and API Gateway REST APIs) deliver them, percent-encoded
    '/api/v/..', '/api/v/../x', '/api/v/a/../../x', '/api/v/./x', '/api/v/a/.', '/api/v/%2e%2e', '/api/v/%2E%2e/x', '/api/v/.%2E/x',
    '/api/v/%2e/x', '/api/v/%252e%252e/x', '/api/v/%25252e%25252E', '/api/v/a%2Fb', '/api/v/a%2fb', '/api/v/a%252fb', '/api/v/a%5Cb',
    '/api/v/a%5cb', '/api/v/a%255Cb', '/api/v/a%00b', '/api/v/a%0d%0aX-Injected:%201', '/api/v/%7F',
    // as HTTP APIs deliver them, percent-decoded
    '/api/v/a\\b', '/api/v/\\\\host/x', '/api/v/a\u0000b', '/api/v/a\nb', '/api/v/a\u007fb',
    // an empty first segment: a second host in disguise
    '/api/v//evil.example/x', '/api/v//', '/api/v/', '/api/v',
    // dot segments as servers behind an API may read them: Java's ;params, Windows' trailing dots
    // and spaces, full-width dots
    '/api/v/..;/admin', '/api/v/%2e%2e;/admin', '/api/v/..;x=1/admin', '/api/v/a/..;/..;/admin', '/api/v/%2e%2e%3b/x', '/api/v/.;/x',
    '/api/v/..%20/x', '/api/v/...', '/api/v/.. ./x', '/api/v/%ef%bc%8e%ef%bc%8e/x', '/api/v/\uff0e\uff0e/x',
  ])('%j: 400 invalid_request', (path) => {
    expect(refusal(() => parseProxyPath(path))).toEqual({ status: 400, code: 'invalid_request' });
  });

  it.each(['/api/', '/api//x', '/api/a.b/x', '/api/%61/x', `/api/${'a'.repeat(65)}/x`, '/other/v/x'])('%j: 404 (no API of that name)', (path) => {
    expect(refusal(() => parseProxyPath(path)).status).toBe(404);
  });
});

describe('parseProxyPath: what passes', () => {
  it('keeps percent-escapes as sent and encodes what cannot stand in a path', () => {
    expect(parseProxyPath('/api/videos/a/b/c.json')).toEqual({ api: 'videos', path: 'a/b/c.json' });
    expect(parseProxyPath('/api/videos/a%20b/caf%C3%A9')).toEqual({ api: 'videos', path: 'a%20b/caf%C3%A9' });
    // An HTTP API's decoded spelling of the same path is sent encoded again.
    expect(parseProxyPath('/api/videos/a b/café')).toEqual({ api: 'videos', path: 'a%20b/caf%C3%A9' });
    // Characters that would end the path or start a query or fragment, if decoded into it.
    expect(parseProxyPath('/api/videos/what?/#x"<>`{}|^')).toEqual({ api: 'videos', path: 'what%3F/%23x%22%3C%3E%60%7B%7D%7C%5E' });
    // A lone "%" is a literal percent sign.
    expect(parseProxyPath('/api/videos/100%/%zz')).toEqual({ api: 'videos', path: '100%25/%25zz' });
    // Dots inside a segment, sub-delims, ":" and "@" are fine; so are empty later segments.
    expect(parseProxyPath("/api/v/..a/a../.x/;p=1,2/:@!$&'()*+=~/x//y/")).toEqual({ api: 'v', path: "..a/a../.x/;p=1,2/:@!$&'()*+=~/x//y/" });
    expect(parseProxyPath('/api/v/😀')).toEqual({ api: 'v', path: '%F0%9F%98%80' });
  });

  it('checkedPath refuses an empty path', () => {
    expect(refusal(() => checkedPath('')).status).toBe(400);
  });
});

describe('apiUrl', () => {
  it('joins below the url, with or without a base path or a trailing slash', () => {
    expect(apiUrl(api('https://api.example.com/v1'), 'a/b', '').href).toBe('https://api.example.com/v1/a/b');
    expect(apiUrl(api('https://api.example.com/v1/'), 'a/b', '').href).toBe('https://api.example.com/v1/a/b');
    expect(apiUrl(api('https://api.example.com'), 'a', '').href).toBe('https://api.example.com/a');
    expect(apiUrl(api('http://127.0.0.1:8080/x/y'), 'z', '').href).toBe('http://127.0.0.1:8080/x/y/z');
  });

  it('passes the query as sent; a "#" in it cannot start a fragment', () => {
    expect(apiUrl(api('https://api.example.com/v1'), 'a', 'x=1&y=%2F&z=a+b&x=2').search).toBe('?x=1&y=%2F&z=a+b&x=2');
    const url = apiUrl(api('https://api.example.com/v1'), 'a', 'q=1#frag');
    expect(url.hash).toBe('');
    expect(url.search).toBe('?q=1%23frag');
  });

  it('stays on the API\'s host for every path the checks let through', () => {
    for (const path of ['..a', 'a..', 'http:', '@evil.example', 'x/@evil.example', '%40evil.example', ':443']) {
      const url = apiUrl(api('https://api.example.com/v1'), checkedPath(path), '');
      expect(url.origin).toBe('https://api.example.com');
      expect(url.pathname.startsWith('/v1/')).toBe(true);
    }
  });
});
