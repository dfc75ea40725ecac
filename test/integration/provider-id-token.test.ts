/**
 * Regression (issue 9, contract v2): v1 handed apps the provider's ID token, which every
 * conforming client must refuse. It now leaves the broker only as `id_token_hint` on the way to
 * the provider's own end-session endpoint (the `/end-session` redirect and `POST /logout`'s
 * `end_session_url`), never in any other answer of any endpoint.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserHeaders, form, go, jar, loginAtProvider, NATIVE_REDIRECT, pkce, startHarness, WEB_ORIGIN, type Harness } from '../support/harness.js';

let h: Harness;
const providerIdTokens: string[] = [];
beforeAll(async () => {
  h = await startHarness({ configure: (doc) => (doc.ttl = { minAccessTokenSeconds: 30 }) });
  h.op.provider.on('grant.success', (...args: unknown[]) => {
    const idToken = (args[0] as { body?: { id_token?: string } }).body?.id_token;
    if (idToken) providerIdTokens.push(idToken);
  });
});
afterAll(() => h.close());

interface Seen { readonly what: string; readonly text: string }

describe('regression: the provider\'s ID token is never handed to an app', () => {
  it('appears in no answer of any endpoint, only as id_token_hint toward the provider\'s end-session endpoint', async () => {
    const seen: Seen[] = [];
    const hintsToProvider: string[] = [];
    const record = async (what: string, res: Response) => {
      const lines: string[] = [];
      res.headers.forEach((v, k) => lines.push(`${k}: ${v}`));
      const headers = lines.join('\n');
      seen.push({ what, text: `${res.status}\n${headers}\n${await res.clone().text()}` });
      return res;
    };

    // Native: login, code exchange, two refreshes (stored, then upstream), logout.
    const j = jar();
    const { verifier, challenge } = pkce();
    const start = await record('GET /login', await go(j, `${h.url}/login?${new URLSearchParams({ client_id: 'app', redirect_uri: NATIVE_REDIRECT, state: 's', code_challenge: challenge, code_challenge_method: 'S256', scope: 'openid profile', nonce: 'n' })}`));
    const callback = await record('GET /callback', await go(j, await loginAtProvider(j, start.headers.get('location')!, `${h.url}/callback`)));
    const code = new URL(callback.headers.get('location')!).searchParams.get('code')!;
    const tokens = await (await record('POST /token (code)', await fetch(`${h.url}/token`, form({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT })))).json();
    const r1 = await (await record('POST /token (refresh, stored)', await fetch(`${h.url}/token`, form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'app' })))).json();
    h.clockOffset = 290;
    const r2 = await (await record('POST /token (refresh, upstream)', await fetch(`${h.url}/token`, form({ grant_type: 'refresh_token', refresh_token: r1.refresh_token, client_id: 'app' })))).json();
    h.clockOffset = 0;
    const logout = await (await fetch(`${h.url}/logout`, form({ refresh_token: r2.refresh_token, client_id: 'app' }))).json();
    hintsToProvider.push(new URL(logout.end_session_url).searchParams.get('id_token_hint')!);

    // Web: login, /session, /refresh, /end-session.
    const w = jar();
    const ws = await record('GET /login (web)', await go(w, `${h.url}/login?client_id=web&state=w`));
    await record('GET /callback (web)', await go(w, await loginAtProvider(w, ws.headers.get('location')!, `${h.url}/callback`)));
    await record('GET /session', await go(w, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } }));
    const refreshed = await (await record('POST /refresh', await go(w, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders }))).json();
    const end = await go(w, `${h.url}/end-session?${new URLSearchParams({ id_token_hint: refreshed.id_token, post_logout_redirect_uri: `${WEB_ORIGIN}/bye`, state: 'x' })}`);
    expect(end.status).toBe(302);
    hintsToProvider.push(new URL(end.headers.get('location')!).searchParams.get('id_token_hint')!);

    // The public documents.
    for (const path of ['/.well-known/openid-configuration', '/.well-known/oauth-authorization-server', '/jwks']) {
      await record(`GET ${path}`, await fetch(`${h.url}${path}`));
    }

    expect(providerIdTokens.length).toBeGreaterThanOrEqual(3);
    for (const token of providerIdTokens) {
      const signature = token.split('.')[2]!;
      for (const s of seen) expect(s.text.includes(signature), `${s.what} holds a provider ID token`).toBe(false);
    }
    // The one way it travels: to the provider's own end-session endpoint, as the hint it needs.
    for (const hint of hintsToProvider) expect(providerIdTokens).toContain(hint);
  });
});
