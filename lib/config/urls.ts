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
  const reg = parseUrl(registered);
  const req = parseUrl(requested);
  if (!reg || !req || reg.protocol !== 'http:' || req.protocol !== 'http:') return false;
  if (nativeRedirectKind(reg) !== 'loopback' || reg.hostname !== req.hostname) return false;
  // Compare everything but the port, on the raw strings to stay character-exact elsewhere.
  const strip = (raw: string, u: URL) => raw.replace(`${u.hostname}${u.port ? ':' + u.port : ''}`, u.hostname);
  return strip(registered, reg) === strip(requested, req) && (req.port === '' || /^\d+$/.test(req.port));
}
