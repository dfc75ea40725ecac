import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSession } from '../../lib/store/sessions.js';
import { form, nativeLogin, redeem, refreshNative, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

const refresh = async (handle: string) => {
  const res = await refreshNative(h, handle);
  return { status: res.status, body: await res.json() };
};

describe('refresh handle reuse detection (RFC 9700 §4.14.2)', () => {
  it('regression: a thief who rotates twice is still caught when the app presents its old handle', async () => {
    const h1 = (await (await redeem(h, await nativeLogin(h))).json()).refresh_token as string;
    expect(h1.split('.')).toHaveLength(4);
    // The thief, holding a copy of h1, refreshes twice: h1 -> h2 -> h3.
    const h2 = (await refresh(h1)).body.refresh_token;
    const h3 = (await refresh(h2)).body.refresh_token;
    expect(h3).not.toBe(h2);
    // Past the grace window the victim presents h1: an old handle of this session, so theft.
    h.clockOffset = 31;
    const victim = await refresh(h1);
    h.clockOffset = 0;
    expect(victim.status).toBe(400);
    expect(victim.body.error).toBe('invalid_grant');
    // The whole session is revoked: the thief's h3 is dead too.
    expect((await refresh(h3)).status).toBe(400);
    expect(h.logs.some((l) => JSON.parse(l).event === 'session.revoked_reuse')).toBe(true);
  });

  it('an old handle presented at once, within the second its successor\'s successor was handed out, is still theft', async () => {
    const h1 = (await (await redeem(h, await nativeLogin(h))).json()).refresh_token as string;
    const h2 = (await refresh(h1)).body.refresh_token;
    const h3 = (await refresh(h2)).body.refresh_token;
    expect((await refresh(h1)).status).toBe(400);
    expect((await refresh(h3)).body.error).toBe('invalid_grant');
  });

  it('a request with an older handle that arrived before the app refreshed past it (answered late) is refused, and the session left alone', async () => {
    const h1 = (await (await redeem(h, await nativeLogin(h))).json()).refresh_token as string;
    const h2 = (await refresh(h1)).body.refresh_token;
    const h3 = (await refresh(h2)).body.refresh_token;
    // Its arrival, as the runtime's clock tells it, is seconds before h3 was handed out (a
    // duplicate the app sent beside its retry, reaching its turn only now).
    h.clockOffset = -5;
    const late = await refresh(h1);
    h.clockOffset = 0;
    expect(late.status).toBe(400);
    expect(late.body).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/superseded/) });
    const next = await refresh(h3);
    expect(next.status).toBe(200);
  });

  it('a logout with an old handle (the thief rotated twice) ends the session too, and a forged one ends nothing', async () => {
    const h1 = (await (await redeem(h, await nativeLogin(h))).json()).refresh_token as string;
    const h2 = (await refresh(h1)).body.refresh_token;
    const h3 = (await refresh(h2)).body.refresh_token;
    const [sid, , , kid] = h1.split('.');
    // A forged old handle of the same session: answered like any unknown token, nothing ended.
    const forged = await fetch(`${h.url}/logout`, form({ refresh_token: `${sid}.1.${'x'.repeat(43)}.${kid}`, client_id: 'app' }));
    expect(forged.status).toBe(200);
    expect((await refresh(h3)).status).toBe(200);
    // The victim logs out with h1, in the RFC 7009 form: the thief's copy ends with it.
    const out = await fetch(`${h.url}/logout`, form({ token: h1, token_type_hint: 'refresh_token', client_id: 'app' }));
    expect(out.status).toBe(200);
    expect(await getSession(h.runtime.table, sid!)).toBeUndefined();
    expect((await refresh(h3)).status).toBe(400);
    expect(h.logs.some((l) => JSON.parse(l).event === 'session.revoked_reuse')).toBe(true);
  });

  it('a forged handle (a live session id, any generation, a made-up mac) is refused without ending the session', async () => {
    const h1 = (await (await redeem(h, await nativeLogin(h))).json()).refresh_token as string;
    const [sid, , , kid] = h1.split('.');
    for (const gen of [1, 2, 99]) {
      const forged = `${sid}.${gen}.${'x'.repeat(43)}.${kid}`;
      const res = await refresh(forged);
      expect(res.status).toBe(400);
      expect(res.body.error).toBe('invalid_grant');
    }
    // The real handle still works.
    expect((await refresh(h1)).status).toBe(200);
  });

  it('a handle of another generation cannot be made from a real one: the mac covers the generation', async () => {
    const h1 = (await (await redeem(h, await nativeLogin(h))).json()).refresh_token as string;
    const [sid, , mac, kid] = h1.split('.');
    const res = await refresh(`${sid}.2.${mac}.${kid}`);
    expect(res.status).toBe(400);
    expect((await refresh(h1)).status).toBe(200);
  });

  it('an upstream refresh past the code\'s replay window drops the code\'s fields; a replay then is refused and ends nothing', async () => {
    const login = await nativeLogin(h);
    const h1 = (await (await redeem(h, login)).json()).refresh_token as string;
    const sid = h1.split('.')[0]!;
    // Inside the window the code's fields stay, so a replay can still be judged (and revoke).
    expect((await getSession(h.runtime.table, sid))?.codeHash).toBeDefined();
    // 250 s on: past the code's expiry and its 60 s of tracked replays, and the 300 s access token is due.
    h.clockOffset = 250;
    try {
      const refreshed = await refreshNative(h, h1);
      expect(refreshed.status).toBe(200);
      expect(refreshed.headers.get('x-broker-token-source')).toBe('upstream');
      const h2 = ((await refreshed.json()) as { refresh_token: string }).refresh_token;
      const s = await getSession(h.runtime.table, sid);
      expect([s?.codeHash, s?.codeChallenge, s?.codeRedirectUri, s?.codeExpiresAt, s?.codeUsedAt]).toEqual([undefined, undefined, undefined, undefined, undefined]);
      const replay = await redeem(h, login);
      expect(replay.status).toBe(400);
      expect((await replay.json()).error).toBe('invalid_grant');
      expect((await refresh(h2)).status).toBe(200);
    } finally {
      h.clockOffset = 0;
    }
  });
});
