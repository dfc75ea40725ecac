/** Cookie parsing and the two cookies the broker sets (RFC 6265, RFC 6265bis prefixes). */

export function parseCookieHeader(headers: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (const header of headers) {
    for (const pair of header.split(';')) {
      const i = pair.indexOf('=');
      if (i <= 0) continue;
      const name = pair.slice(0, i).trim();
      const value = pair.slice(i + 1).trim();
      // The first cookie of a name wins: browsers send the most specific path first.
      if (name && !out.has(name)) out.set(name, value);
    }
  }
  return out;
}

export interface CookieOptions {
  readonly maxAge?: number;
  readonly sameSite: 'Strict' | 'Lax' | 'None';
  readonly secure: boolean;
}

export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new TypeError(`invalid cookie name ${name}`);
  if (!/^[A-Za-z0-9._~-]*$/.test(value)) throw new TypeError('cookie values are base64url');
  const parts = [`${name}=${value}`, 'Path=/', 'HttpOnly', `SameSite=${options.sameSite}`];
  if (options.secure || options.sameSite === 'None') parts.push('Secure');
  if (options.maxAge !== undefined) parts.push(`Max-Age=${options.maxAge}`);
  return parts.join('; ');
}

export function clearCookie(name: string, options: Omit<CookieOptions, 'maxAge'>): string {
  return serializeCookie(name, '', { ...options, maxAge: 0 });
}

/** The web session cookie: `__Host-` prefixed and Secure on https, plain on a loopback http run. */
export function sessionCookieName(secure: boolean): string {
  return secure ? '__Host-broker-session' : 'broker-session';
}

/**
 * The transaction cookie of one login, named after its state so logins in several tabs of one
 * browser do not overwrite each other.
 */
export function txnCookieName(secure: boolean, stateHash: string): string {
  return `${secure ? '__Host-' : ''}broker-txn-${stateHash.slice(0, 16)}`;
}

/**
 * Is `name` exactly what `txnCookieName` makes in this mode? A cookie name comes from the
 * request: anything else (an odd name a sibling subdomain planted with `Domain=`, which the
 * `__Host-` prefix rules out on https) is not one of the broker's, and is never echoed back.
 */
export function isTxnCookieName(name: string, secure: boolean): boolean {
  return (secure ? /^__Host-broker-txn-[A-Za-z0-9_-]{16}$/ : /^broker-txn-[A-Za-z0-9_-]{16}$/).test(name);
}
