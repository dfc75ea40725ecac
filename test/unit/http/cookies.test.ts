import { describe, expect, it } from 'vitest';
import { clearCookie, parseCookieHeader, serializeCookie, sessionCookieName, txnCookieName } from '../../../lib/http/cookies.js';

describe('parseCookieHeader', () => {
  it('skips pairs without a name or an equals sign', () => {
    expect([...parseCookieHeader(['=orphan; novalue; ; a=1'])]).toEqual([['a', '1']]);
  });

  it('returns an empty map for no headers', () => {
    expect(parseCookieHeader([]).size).toBe(0);
    expect(parseCookieHeader(['']).size).toBe(0);
  });

  it('trims whitespace around names and values', () => {
    const map = parseCookieHeader(['  a = 1 ;b=2;   c=3  ']);
    expect(Object.fromEntries(map)).toEqual({ a: '1', b: '2', c: '3' });
  });

  it('lets the first cookie of a name win, across headers too', () => {
    const map = parseCookieHeader(['s=first; t=x; s=second', 's=third; u=y']);
    expect(Object.fromEntries(map)).toEqual({ s: 'first', t: 'x', u: 'y' });
  });

  it('keeps equals signs and empty values in a value', () => {
    const map = parseCookieHeader(['a=b=c; empty=']);
    expect(map.get('a')).toBe('b=c');
    expect(map.get('empty')).toBe('');
  });
});

describe('serializeCookie: rejections', () => {
  it.each(['', 'a b', 'a;b', 'a=b', 'a,b', 'é', 'a\r\nSet-Cookie: x'])('refuses the name %j', (name) => {
    expect(() => serializeCookie(name, 'v', { sameSite: 'Lax', secure: true })).toThrow(TypeError);
  });

  it.each(['a b', 'a;b', 'a=b', '"quoted"', 'a,b', 'a\nb', 'a+b/c'])('refuses the value %j', (value) => {
    expect(() => serializeCookie('n', value, { sameSite: 'Lax', secure: true })).toThrow(TypeError);
  });
});

describe('serializeCookie', () => {
  it('sets Path=/, HttpOnly, SameSite and Secure', () => {
    expect(serializeCookie('__Host-s', 'abc-_.~123', { sameSite: 'Strict', secure: true })).toBe(
      '__Host-s=abc-_.~123; Path=/; HttpOnly; SameSite=Strict; Secure',
    );
  });

  it('omits Secure on an insecure Lax or Strict cookie', () => {
    expect(serializeCookie('s', 'v', { sameSite: 'Lax', secure: false })).toBe('s=v; Path=/; HttpOnly; SameSite=Lax');
  });

  it('always sets Secure with SameSite=None', () => {
    expect(serializeCookie('s', 'v', { sameSite: 'None', secure: false })).toBe('s=v; Path=/; HttpOnly; SameSite=None; Secure');
  });

  it('sets Max-Age when given, including 0', () => {
    expect(serializeCookie('s', 'v', { sameSite: 'Lax', secure: true, maxAge: 600 })).toBe('s=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=600');
    expect(clearCookie('s', { sameSite: 'Lax', secure: true })).toBe('s=; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=0');
  });

  it('round-trips through parseCookieHeader', () => {
    const header = serializeCookie('n', 'AbC_-9', { sameSite: 'Lax', secure: true }).split(';')[0]!;
    expect(parseCookieHeader([header]).get('n')).toBe('AbC_-9');
  });
});

describe('cookie names', () => {
  it('prefixes the session cookie with __Host- when secure', () => {
    expect(sessionCookieName(true)).toBe('__Host-broker-session');
    expect(sessionCookieName(false)).toBe('broker-session');
  });

  it('names the transaction cookie after the first 16 characters of the state hash', () => {
    expect(txnCookieName(true, 'abcdefghijklmnopqrstuvwxyz')).toBe('__Host-broker-txn-abcdefghijklmnop');
    expect(txnCookieName(false, 'abcdefghijklmnopqrstuvwxyz')).toBe('broker-txn-abcdefghijklmnop');
  });
});
