import { describe, expect, it } from 'vitest';
import { isLoopbackHost, isSecureOrLoopback, nativeRedirectKind, parseUrl, redirectUriMatches } from '../../../lib/config/urls.js';

describe('isLoopbackHost', () => {
  it.each([
    '127.0.0.256',
    '128.0.0.1',
    '0.0.0.0',
    '::1',
    'localhost.example.com',
    '127.0.0.1.nip.io',
    'example.com',
    '',
  ])('refuses %j', (host) => {
    expect(isLoopbackHost(host)).toBe(false);
  });

  it.each(['127.0.0.1', '127.255.255.255', '127.1.2.3', '[::1]', 'localhost'])('accepts %j', (host) => {
    expect(isLoopbackHost(host)).toBe(true);
  });
});

describe('parseUrl and isSecureOrLoopback', () => {
  it('returns undefined for a relative or invalid URL', () => {
    expect(parseUrl('/cb')).toBeUndefined();
    expect(parseUrl('http://[::1')).toBeUndefined();
  });

  it('refuses http off loopback and other schemes', () => {
    expect(isSecureOrLoopback(new URL('http://example.com/'))).toBe(false);
    expect(isSecureOrLoopback(new URL('ftp://127.0.0.1/'))).toBe(false);
  });

  it('accepts https anywhere and http on loopback', () => {
    expect(isSecureOrLoopback(new URL('https://example.com/'))).toBe(true);
    expect(isSecureOrLoopback(new URL('http://localhost:3000/'))).toBe(true);
    expect(isSecureOrLoopback(new URL('http://[::1]:3000/'))).toBe(true);
  });
});

describe('nativeRedirectKind', () => {
  it.each([
    'myapp:/cb',
    'http://localhost/cb',
    'http://example.com/cb',
    'http://127.0.0.2/cb',
    'com.example.:/cb',
    'ftp://127.0.0.1/cb',
  ])('refuses %s', (uri) => {
    expect(nativeRedirectKind(new URL(uri))).toBeUndefined();
  });

  it('classifies the allowed kinds', () => {
    expect(nativeRedirectKind(new URL('com.example.app:/cb'))).toBe('private-use');
    expect(nativeRedirectKind(new URL('com.example.app://cb'))).toBe('private-use');
    expect(nativeRedirectKind(new URL('https://app.example.com/cb'))).toBe('https');
    expect(nativeRedirectKind(new URL('http://127.0.0.1/cb'))).toBe('loopback');
    expect(nativeRedirectKind(new URL('http://[::1]:8080/cb'))).toBe('loopback');
  });
});

describe('redirectUriMatches', () => {
  const loopback = 'http://127.0.0.1/cb';

  describe('mismatches', () => {
    it('never relaxes the port for a web client', () => {
      expect(redirectUriMatches(loopback, 'http://127.0.0.1:51234/cb', false)).toBe(false);
      expect(redirectUriMatches('https://app.example.com/cb', 'https://app.example.com:8443/cb', false)).toBe(false);
    });

    it('never relaxes the port of a registered https URI, even for a native client', () => {
      expect(redirectUriMatches('https://app.example.com/cb', 'https://app.example.com:8443/cb', true)).toBe(false);
    });

    it('never relaxes a private-use scheme URI', () => {
      expect(redirectUriMatches('com.example.app:/cb', 'com.example.app:/cb2', true)).toBe(false);
    });

    it('does not relax a registered localhost URI', () => {
      expect(redirectUriMatches('http://localhost/cb', 'http://localhost:5/cb', true)).toBe(false);
    });

    it.each([
      ['a different path', 'http://127.0.0.1:51234/cb2'],
      ['userinfo', 'http://evil@127.0.0.1:5/cb'],
      ['another loopback address', 'http://127.0.0.2:5/cb'],
      ['another host', 'http://example.com:5/cb'],
      ['a trailing slash', 'http://127.0.0.1:5/cb/'],
      ['a query', 'http://127.0.0.1:5/cb?x=1'],
      ['a fragment', 'http://127.0.0.1:5/cb#x'],
      ['https instead of http', 'https://127.0.0.1:5/cb'],
      ['a non-canonical host spelling', 'http://127.1:5/cb'],
      ['an upper-case scheme', 'HTTP://127.0.0.1:5/cb'],
      ['an empty port', 'http://127.0.0.1:/cb'],
      ['a port out of range', 'http://127.0.0.1:65536/cb'],
      ['a relative URI', '/cb'],
    ])('a native loopback registration does not match %s', (_what, requested) => {
      expect(redirectUriMatches(loopback, requested, true)).toBe(false);
    });

    it('treats trailing slash differences as mismatches', () => {
      expect(redirectUriMatches('https://app.example.com/cb', 'https://app.example.com/cb/', false)).toBe(false);
      expect(redirectUriMatches('https://app.example.com/cb/', 'https://app.example.com/cb', false)).toBe(false);
      expect(redirectUriMatches('https://app.example.com', 'https://app.example.com/', false)).toBe(false);
    });

    it('compares character for character (case of path, encoding)', () => {
      expect(redirectUriMatches('https://app.example.com/cb', 'https://app.example.com/CB', false)).toBe(false);
      expect(redirectUriMatches('https://app.example.com/a b', 'https://app.example.com/a%20b', false)).toBe(false);
    });
  });

  describe('matches', () => {
    it('matches exactly equal URIs for either client type', () => {
      expect(redirectUriMatches('https://app.example.com/cb', 'https://app.example.com/cb', false)).toBe(true);
      expect(redirectUriMatches('com.example.app:/cb', 'com.example.app:/cb', true)).toBe(true);
      expect(redirectUriMatches(loopback, loopback, true)).toBe(true);
    });

    it('matches any port on a native loopback registration', () => {
      expect(redirectUriMatches(loopback, 'http://127.0.0.1:51234/cb', true)).toBe(true);
      expect(redirectUriMatches('http://127.0.0.1:8080/cb', 'http://127.0.0.1:51234/cb', true)).toBe(true);
      expect(redirectUriMatches('http://[::1]/cb', 'http://[::1]:51234/cb', true)).toBe(true);
    });
  });
});
