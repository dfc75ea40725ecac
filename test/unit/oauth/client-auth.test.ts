import { describe, expect, it } from 'vitest';
import { parseConfig, type Provider } from '../../../lib/config/parse.js';
import { basicAuthorization, encodeClientRequest } from '../../../lib/oauth/client-auth.js';
import { configDocWithProvider } from '../fixtures.js';

/** A provider `p` built from a configuration document, the way the broker builds it. */
function provider(overrides: Record<string, unknown>): Provider {
  const doc = configDocWithProvider({ clientId: 'my client:1', ...overrides });
  if (overrides['clientAuth'] === 'none') delete doc.providers['p']!['clientSecret'];
  return parseConfig(doc, { runtime: 'local' }).providers['p']!;
}

/** RFC 6749 Appendix B decoding of one value: `+` is a space, then percent-decoding. */
const formDecode = (s: string) => decodeURIComponent(s.replace(/\+/g, ' '));

function decodeBasic(header: string): string {
  expect(header).toMatch(/^Basic [A-Za-z0-9+/]+=*$/);
  return Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8');
}

const FIELDS = { grant_type: 'authorization_code', code: 'c o+d&e', redirect_uri: 'https://auth.example.com/callback' };

describe('basicAuthorization', () => {
  it('form-urlencodes id and secret before base64 (RFC 6749 §2.3.1)', () => {
    const secret = 'a:b%c+d e';
    const decoded = decodeBasic(basicAuthorization('my client:1', secret));
    expect(decoded).toBe('my%20client%3A1:a%3Ab%25c%2Bd%20e');
    expect(decoded).toBe(`${encodeURIComponent('my client:1')}:${encodeURIComponent(secret)}`);
    // Exactly one unencoded colon separates the two, and each half decodes back.
    const parts = decoded.split(':');
    expect(parts).toHaveLength(2);
    expect(formDecode(parts[0]!)).toBe('my client:1');
    expect(formDecode(parts[1]!)).toBe(secret);
  });

  it("also encodes the characters encodeURIComponent leaves alone (!'()*)", () => {
    expect(decodeBasic(basicAuthorization('id', "!'()*"))).toBe('id:%21%27%28%29%2A');
  });

  it('encodes non-ASCII as UTF-8 octets', () => {
    expect(decodeBasic(basicAuthorization('id', '£€'))).toBe('id:%C2%A3%E2%82%AC');
  });

  it('leaves unreserved characters as they are', () => {
    expect(decodeBasic(basicAuthorization('client-1_a.b~c', 'Secret-123_.~'))).toBe('client-1_a.b~c:Secret-123_.~');
  });
});

describe('encodeClientRequest: rejections', () => {
  it('refuses client_secret_basic without a secret', () => {
    expect(() => encodeClientRequest(provider({}), undefined, FIELDS)).toThrow(TypeError);
  });

  it('refuses client_secret_post without a secret', () => {
    expect(() => encodeClientRequest(provider({ clientAuth: 'client_secret_post' }), undefined, FIELDS)).toThrow(TypeError);
  });
});

describe('encodeClientRequest', () => {
  it('client_secret_basic (the default) puts credentials in the Authorization header only', () => {
    const p = provider({});
    expect(p.clientAuth).toBe('client_secret_basic');
    const { headers, body } = encodeClientRequest(p, 's e:cret', FIELDS);
    expect(headers).toEqual({
      accept: 'application/json',
      'content-type': 'application/x-www-form-urlencoded',
      authorization: basicAuthorization('my client:1', 's e:cret'),
    });
    expect(decodeBasic(headers['authorization']!)).toBe('my%20client%3A1:s%20e%3Acret');
    const form = new URLSearchParams(body);
    expect(Object.fromEntries(form)).toEqual(FIELDS);
    expect(form.has('client_id')).toBe(false);
    expect(form.has('client_secret')).toBe(false);
  });

  it('client_secret_post puts client_id and client_secret in the form body', () => {
    const { headers, body } = encodeClientRequest(provider({ clientAuth: 'client_secret_post' }), 's e:cret&x=1', FIELDS);
    expect(headers).toEqual({ accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' });
    expect(Object.fromEntries(new URLSearchParams(body))).toEqual({ ...FIELDS, client_id: 'my client:1', client_secret: 's e:cret&x=1' });
  });

  it('none sends client_id only', () => {
    const { headers, body } = encodeClientRequest(provider({ clientAuth: 'none' }), undefined, FIELDS);
    expect(headers['authorization']).toBeUndefined();
    expect(Object.fromEntries(new URLSearchParams(body))).toEqual({ ...FIELDS, client_id: 'my client:1' });
  });

  it('does not modify the fields passed in', () => {
    const fields = { ...FIELDS };
    encodeClientRequest(provider({ clientAuth: 'client_secret_post' }), 'secret', fields);
    expect(fields).toEqual(FIELDS);
  });

  describe('tokenRequestFormat json', () => {
    it('client_secret_post sends a JSON body with client_id and client_secret', () => {
      const p = provider({ clientAuth: 'client_secret_post', tokenRequestFormat: 'json' });
      const { headers, body } = encodeClientRequest(p, 'se"cret', FIELDS);
      expect(headers).toEqual({ accept: 'application/json', 'content-type': 'application/json' });
      expect(JSON.parse(body)).toEqual({ ...FIELDS, client_id: 'my client:1', client_secret: 'se"cret' });
    });

    it('client_secret_basic sends the header and a JSON body without credentials', () => {
      const { headers, body } = encodeClientRequest(provider({ tokenRequestFormat: 'json' }), 'secret', FIELDS);
      expect(headers['content-type']).toBe('application/json');
      expect(headers['authorization']).toBe(basicAuthorization('my client:1', 'secret'));
      expect(JSON.parse(body)).toEqual(FIELDS);
    });

    it('none sends a JSON body with client_id', () => {
      const { headers, body } = encodeClientRequest(provider({ clientAuth: 'none', tokenRequestFormat: 'json' }), undefined, FIELDS);
      expect(headers['authorization']).toBeUndefined();
      expect(JSON.parse(body)).toEqual({ ...FIELDS, client_id: 'my client:1' });
    });
  });
});
