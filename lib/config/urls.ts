/** URL rules shared by configuration checks and request handling. */

const LOOPBACK_HOSTS = new Set(['localhost', '[::1]']);

/** True for 127.0.0.0/8, [::1] and localhost. */
export function isLoopbackHost(hostname: string): boolean {
  if (LOOPBACK_HOSTS.has(hostname)) return true;
  const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(hostname);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

export function parseUrl(value: string): URL | undefined {
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/** `https:` anywhere, `http:` on loopback only. */
export function isSecureOrLoopback(url: URL): boolean {
  return url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname));
}

/**
 * The redirect URIs a native app may register (RFC 8252 §7): a private-use scheme in
 * reverse-DNS form, an https URI, or an http URI on the IP loopback literals.
 */
export function nativeRedirectKind(url: URL): 'private-use' | 'https' | 'loopback' | undefined {
  const scheme = url.protocol.slice(0, -1);
  if (scheme === 'https') return 'https';
  if (scheme === 'http') return url.hostname === '127.0.0.1' || url.hostname === '[::1]' ? 'loopback' : undefined;
  // RFC 8252 §7.1: a reverse domain name, so it has at least one dot.
  return /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$/.test(scheme) ? 'private-use' : undefined;
}

/**
 * Does `requested` match the registered `registered` URI? Character for character, except
 * that a registered loopback URI of a native client matches any port (RFC 8252 §7.3).
 */
export function redirectUriMatches(registered: string, requested: string, native: boolean): boolean {
  if (registered === requested) return true;
  if (!native) return false;
  // Compare everything but the port, on the raw strings, so the rest stays character-exact
  // (the URL parser would drop a default port such as :80 and normalise the path).
  const reg = LOOPBACK_REDIRECT.exec(registered);
  const req = LOOPBACK_REDIRECT.exec(requested);
  if (!reg || !req) return false;
  const port = req[2]?.slice(1);
  return reg[1] === req[1] && (reg[3] ?? '') === (req[3] ?? '') && (port === undefined || (/^\d{1,5}$/.test(port) && Number(port) <= 65535));
}

/** `http://127.0.0.1[:port][/rest]` or `http://[::1][:port][/rest]`: host, port, rest. */
const LOOPBACK_REDIRECT = /^http:\/\/(127\.0\.0\.1|\[::1\])(:\d*)?([/?][^#]*)?$/;
