import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldContext } from '../../lib/broker/session-tokens.js';
import { getSession } from '../../lib/store/sessions.js';
import { browserHeaders, form, go, nativeLogin, redeem, refreshNative, startHarness, webLogin, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configure: (doc) => (doc.ttl = { minAccessTokenSeconds: 30 }) });
});
afterAll(() => h.close());

describe('logs and responses hold no secret', () => {
  it('never writes a client secret, token, code, handle or cookie value, on success or failure', async () => {
    const secrets: string[] = [h.secret];
    const login = await nativeLogin(h, { extra: { scope: 'openid' } });
    secrets.push(login.code, login.verifier);
    const tokens = await (await redeem(h, login)).json();
    secrets.push(tokens.access_token, tokens.refresh_token, tokens.id_token);
    const sid = tokens.refresh_token.split('.')[0];
    const cipher = await h.runtime.cipher();
    const stored = await getSession(h.runtime.table, sid);
    const upstreamRefresh = await cipher.decrypt(stored!.refreshToken!, fieldContext(sid, 'refreshToken'));
    secrets.push(upstreamRefresh);

    h.clockOffset = 290;
    const refreshed = await (await refreshNative(h, tokens.refresh_token)).json();
    secrets.push(refreshed.access_token, refreshed.refresh_token);
    // Failures: a reused handle (revokes the session), a wrong verifier, garbage input.
    h.clockOffset = 400;
    const reuse = await refreshNative(h, tokens.refresh_token);
    expect(reuse.status).toBe(400);
    h.clockOffset = 0;
    await redeem(h, login, { code_verifier: 'x'.repeat(43) });
    await fetch(`${h.url}/token`, form({ grant_type: 'refresh_token', refresh_token: `${sid}.${'z'.repeat(43)}`, client_id: 'app' }));

    const web = await webLogin(h);
    const cookie = web.jar.get('broker-session')!;
    secrets.push(cookie);
    const webTokens = await (await go(web.jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders })).json();
    secrets.push(webTokens.access_token);
    await go(web.jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders });

    const all = h.logs.join('\n');
    expect(h.logs.length).toBeGreaterThan(5);
    for (const value of secrets) {
      expect(value.length).toBeGreaterThan(8);
      expect(all).not.toContain(value);
      // Nor any recognisable part of it.
      expect(all).not.toContain(value.slice(-24));
    }
    // The events an operator needs are there.
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l['event'])).toEqual(expect.arrayContaining(['login.started', 'login.completed', 'refresh.served', 'session.revoked_reuse']));
    // An upstream refresh is one served line, which says how long the provider took.
    expect(lines.some((l) => l['event'] === 'refresh.served' && l['Source'] === 'upstream' && typeof l['upstream_ms'] === 'number')).toBe(true);
  });
});
