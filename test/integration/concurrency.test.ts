import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browserHeaders, countGrants, form, go, nativeLogin, redeem, refreshNative, secondInstance, startHarness, webLogin, type Harness } from '../support/harness.js';

let h: Harness;
let other: { url: string; close(): Promise<void> };
let grants: Record<string, number>;
beforeAll(async () => {
  h = await startHarness({ configure: (doc) => (doc.ttl = { minAccessTokenSeconds: 30 }) });
  other = await secondInstance(h);
  grants = countGrants(h);
});
afterAll(async () => {
  await other.close();
  await h.close();
});

const refreshes = () => grants['refresh_token'] ?? 0;

describe('concurrent refreshes of one session', () => {
  it('native: racing refreshes with one handle, on two instances, make one upstream call and all get the same new handle', async () => {
    const tokens = await (await redeem(h, await nativeLogin(h))).json();
    const before = refreshes();
    h.clockOffset = 290;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      fetch(`${i % 2 ? other.url : h.url}/token`, form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'app' }))));
    const bodies = await Promise.all(results.map((r) => r.json()));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(refreshes() - before).toBe(1);
    expect(new Set(bodies.map((b) => b.refresh_token)).size).toBe(1);
    expect(new Set(bodies.map((b) => b.access_token)).size).toBe(1);
    expect(bodies[0].access_token).not.toBe(tokens.access_token);
    // The session survives: the shared new handle refreshes again.
    const next = await refreshNative(h, bodies[0].refresh_token);
    h.clockOffset = 0;
    expect(next.status).toBe(200);
  });

  it('web: racing tabs make one upstream call and all get a valid token', async () => {
    const { jar } = await webLogin(h);
    const before = refreshes();
    h.clockOffset = 290;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) =>
      go(jar, `${i % 2 ? other.url : h.url}/refresh`, { method: 'POST', headers: browserHeaders })));
    h.clockOffset = 0;
    const bodies = await Promise.all(results.map((r) => r.json()));
    expect(results.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(refreshes() - before).toBe(1);
    expect(new Set(bodies.map((b) => b.access_token)).size).toBe(1);
  });

  it('keeps the session when the provider is unreachable (503), and refreshes once it is back', async () => {
    const tokens = await (await redeem(h, await nativeLogin(h))).json();
    const address = h.op.server.address() as { port: number; address: string };
    await new Promise<void>((r) => {
      h.op.server.close(() => r());
      h.op.server.closeAllConnections();
    });
    h.clockOffset = 290;
    try {
      const down = await refreshNative(h, tokens.refresh_token);
      expect(down.status).toBe(503);
      expect((await down.json()).error).toBe('temporarily_unavailable');
    } finally {
      await new Promise<void>((r) => h.op.server.listen(address.port, address.address, () => r()));
    }
    // The handle the app still holds works: the failed attempt's rotation was rolled back.
    const up = await refreshNative(h, tokens.refresh_token);
    h.clockOffset = 0;
    expect(up.status).toBe(200);
    expect(up.headers.get('x-broker-token-source')).toBe('upstream');
  });
});
