/**
 * Shared by the client-library tests (test/integration/clients/): a broker with a native client
 * `lib` as an app developer registers it, and a "browser" that does what the system browser does
 * in a native login or logout: follows the broker's redirects, signs in (or confirms the logout)
 * at the embedded provider, and hands the final redirect to the app, i.e. to the library.
 */
import { go, jar, loginAtProvider, startHarness, WEB_ORIGIN, type Harness, type Jar } from './harness.js';

export const LIB_CLIENT = 'lib';
/** A loopback redirect URI: RFC 8252 §7.3, any port matches (desktop apps, AppAuth-JS). */
export const LIB_LOOPBACK_REDIRECT = 'http://127.0.0.1/cb';
/** A private-use scheme redirect URI (mobile apps). */
export const LIB_SCHEME_REDIRECT = 'com.example.lib:/oauth2redirect';
/**
 * The client's post-logout URI. The provider must know it too (it sends the browser there after
 * its own end-session step), and oidc-provider takes only web URIs there, hence loopback.
 */
export const LIB_LOGGED_OUT = 'http://127.0.0.1:5999/lib-logged-out';
export const LIB_SCOPE = 'openid profile email offline_access';

/**
 * A broker whose stored access tokens are always due (`minAccessTokenSeconds` 299 against the
 * provider's 120 s tokens): every code exchange and every refresh goes upstream, so each ID token
 * the libraries check follows a real provider refresh.
 */
export function startClientHarness(): Promise<Harness> {
  return startHarness({
    op: { postLogoutRedirectUris: [`${WEB_ORIGIN}/bye`, LIB_LOGGED_OUT], accessTokenSeconds: 120 },
    configure: (doc) => {
      doc.ttl = { minAccessTokenSeconds: 299 };
      doc.clients[LIB_CLIENT] = {
        type: 'native', redirectUris: [LIB_LOOPBACK_REDIRECT, LIB_SCHEME_REDIRECT], providers: ['op'], postLogoutRedirectUri: LIB_LOGGED_OUT,
      };
      doc.clients['lib-es256'] = { ...doc.clients[LIB_CLIENT], idTokenSigningAlg: 'ES256' };
    },
  });
}

export interface Browser {
  readonly jar: Jar;
  /** Opens an authorization URL and signs in; resolves the redirect the app receives. */
  authorize(url: string | URL, redirectPrefix: string): Promise<string>;
  /** Opens an end-session URL and confirms at the provider; resolves where the browser lands. */
  endSession(url: string | URL, landing: string): Promise<string>;
}

export function browser(h: Harness): Browser {
  const j = jar();
  return {
    jar: j,
    async authorize(url, redirectPrefix) {
      const start = await go(j, String(url));
      if (start.status !== 302) throw new Error(`/login answered ${start.status}: ${await start.text()}`);
      const location = start.headers.get('location')!;
      if (location.startsWith(redirectPrefix)) return location; // an error straight back to the app
      const callback = await loginAtProvider(j, location, `${h.url}/callback`);
      const cb = await go(j, callback);
      return cb.headers.get('location') ?? '';
    },
    async endSession(url, landing) {
      let res = await go(j, String(url));
      let next = res.headers.get('location');
      if (res.status !== 302 || !next) throw new Error(`/end-session answered ${res.status}: ${await res.text()}`);
      for (let hop = 0; hop < 5 && !next.startsWith(landing); hop++) {
        res = await go(j, next);
        if (res.status >= 300 && res.status < 400) {
          next = new URL(res.headers.get('location')!, next).href;
          continue;
        }
        // oidc-provider's "Do you want to sign out?" page: submit its form with logout=yes.
        const html = await res.text();
        const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
        if (!action) throw new Error(`the provider answered ${res.status} at ${next}`);
        const fields = new URLSearchParams({ logout: 'yes' });
        for (const m of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g)) fields.set(m[1]!, m[2]!);
        const target: string = new URL(action.replace(/&amp;/g, '&'), next).href;
        res = await go(j, target, { method: 'POST', body: fields.toString(), headers: { 'content-type': 'application/x-www-form-urlencoded' } });
        next = new URL(res.headers.get('location')!, target).href;
      }
      return next;
    },
  };
}
