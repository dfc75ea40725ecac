/**
 * (v2) Back-channel logout against oidc-provider with its backchannelLogout feature on: a real
 * end-session at the provider delivers a real logout token, and the broker ends exactly the
 * sessions it names, at once (handles, cookies, unredeemed codes).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSession } from '../../lib/store/sessions.js';
import { sessionKey } from '../../lib/store/sessions.js';
import {
  browserHeaders, endSessionAtProvider, go, jar, nativeLogin, redeem, refreshNative, startHarness, webLogin, WEB_ORIGIN,
  type Harness, type Jar, type NativeLogin,
} from '../support/harness.js';

const sidOf = (credential: string) => credential.split('.')[0]!;

async function nativeSession(h: Harness, options: Parameters<typeof nativeLogin>[1] = {}): Promise<{ login: NativeLogin; handle: string }> {
  const login = await nativeLogin(h, options);
  const res = await redeem(h, login);
  expect(res.status).toBe(200);
  return { login, handle: ((await res.json()) as { refresh_token: string }).refresh_token };
}

async function webRefresh(h: Harness, j: Jar): Promise<Response> {
  return go(j, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
}

async function webSession(h: Harness, j: Jar): Promise<Response> {
  return go(j, `${h.url}/session`, { headers: { origin: WEB_ORIGIN } });
}

const webCookie = (j: Jar) => j.get('broker-session')!;

describe('a logout at the provider (logout tokens with sid and sub)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ backchannel: {} });
  });
  afterAll(async () => h?.close());

  it('ends the native and web sessions of that provider session, and an unredeemed code; not the same user\'s other browser, not another user', async () => {
    const browserA = jar();
    const web = await webLogin(h, 'w', {}, { jar: browserA });
    expect(web.redirect.searchParams.get('state')).toBe('w');
    const native = await nativeSession(h, { jar: browserA });
    const unredeemed = await nativeLogin(h, { jar: browserA });
    expect(unredeemed.code).not.toBe('');
    const otherBrowser = await nativeSession(h);
    const bob = await nativeSession(h, { user: 'bob' });

    expect((await webRefresh(h, browserA)).status).toBe(200);
    const outcome = await endSessionAtProvider(h.op, browserA);
    expect(outcome).toEqual({ delivered: 1, failed: [] });

    // Ended at once: the cookie, the handle, the unredeemed code, and the items themselves.
    const refreshed = await webRefresh(h, browserA);
    expect(refreshed.status).toBe(401);
    expect(await refreshed.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await webSession(h, browserA)).status).toBe(401);
    const handle = await refreshNative(h, native.handle);
    expect(handle.status).toBe(400);
    expect(await handle.json()).toMatchObject({ error: 'invalid_grant' });
    const code = await redeem(h, unredeemed);
    expect(code.status).toBe(400);
    expect(await code.json()).toMatchObject({ error: 'invalid_grant' });
    expect(await getSession(h.runtime.table, sidOf(native.handle))).toBeUndefined();
    expect(await getSession(h.runtime.table, sidOf(unredeemed.code))).toBeUndefined();

    // The same user's session in another browser has another provider sid; bob is someone else.
    expect((await refreshNative(h, otherBrowser.handle)).status).toBe(200);
    expect((await refreshNative(h, bob.handle)).status).toBe(200);

    const line = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['event'] === 'backchannel.logout');
    expect(line).toMatchObject({ provider: 'op', by: 'sid+sub', ended: 3, BackchannelLogouts: 1, BackchannelSessionsEnded: 3 });
    // Nothing that identifies the user at the provider, and no token, in any log line.
    const text = h.logs.join('\n');
    expect(text).not.toMatch(/"sub":|"sid":|logout_token|eyJ/);
    expect(text).not.toContain(webCookie(browserA) ?? '\u0000');
  });

  it('stores the provider\'s sub and sid only as keyed hashes: no plaintext identifier in the session item', async () => {
    const { handle } = await nativeSession(h, { user: 'carol' });
    const item = await getSession(h.runtime.table, sidOf(handle));
    expect(item?.idpSubKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(item?.idpSidKey).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(JSON.stringify(item)).not.toContain('carol');
    expect(sessionKey(sidOf(handle))).toMatch(/^session#/);
  });
});

describe('a logout token with only sub (the provider\'s sessions not required)', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ backchannel: { sessionRequired: false }, secondProvider: { backchannel: {} } });
  });
  afterAll(async () => h?.close());

  it('ends every session of that user at that provider, in every browser, and none at another provider with the same sub', async () => {
    const browserA = jar();
    const first = await nativeSession(h, { jar: browserA });
    const otherBrowser = jar();
    await webLogin(h, 'w', {}, { jar: otherBrowser });
    const atOp2 = await nativeSession(h, { extra: { provider: 'op2' } });
    const webAtOp2 = jar();
    await webLogin(h, 'w2', { provider: 'op2' }, { jar: webAtOp2 });
    const bob = await nativeSession(h, { user: 'bob' });

    expect(await endSessionAtProvider(h.op, browserA)).toEqual({ delivered: 1, failed: [] });

    expect((await refreshNative(h, first.handle)).status).toBe(400);
    expect((await webRefresh(h, otherBrowser)).status).toBe(401);
    // alice at op2 is alice there too (same sub), but op2 said nothing.
    expect((await refreshNative(h, atOp2.handle)).status).toBe(200);
    expect((await webRefresh(h, webAtOp2)).status).toBe(200);
    expect((await refreshNative(h, bob.handle)).status).toBe(200);
    const line = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l['event'] === 'backchannel.logout');
    expect(line).toMatchObject({ provider: 'op', by: 'sub', ended: 2 });
  });

  it('op2 sends sid and sub: its logout ends that provider session only', async () => {
    const browser = jar();
    const a = await nativeSession(h, { jar: browser, extra: { provider: 'op2' } });
    const atOp = await nativeSession(h);
    expect(await endSessionAtProvider(h.op2!, browser)).toEqual({ delivered: 1, failed: [] });
    expect((await refreshNative(h, a.handle)).status).toBe(400);
    expect((await refreshNative(h, atOp.handle)).status).toBe(200);
  });
});
