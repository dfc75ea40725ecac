/**
 * Logout reads the session, revokes the provider's refresh token, then deletes the session
 * (lib/broker/logout.ts, `endHeldSession`). While the provider answers the revocation, the app may
 * still be refreshing with the same session: these tests hold the revocation at the provider and
 * refresh meanwhile, as an SPA that refreshes on load or the API proxy would.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getSession } from '../../lib/store/sessions.js';
import { form, nativeLogin, redeem, refreshNative, startHarness, type Harness } from '../support/harness.js';
import { aliveAtProvider, upstreamRefreshToken } from '../support/upstream.js';

let h: Harness;
let held: { arrived: () => void; release: Promise<void> } | undefined;
let revocations = 0;

beforeAll(async () => {
  h = await startHarness({ op: { accessTokenSeconds: 90 } });
  h.op.server.prependListener('request', (req) => {
    if (req.method === 'POST' && req.url?.startsWith('/token/revocation')) revocations++;
  });
  // Before the provider's first request: its middleware is composed then (local/oidc-provider.ts).
  const koa = h.op.provider as unknown as { use(mw: (ctx: { path: string }, next: () => Promise<void>) => Promise<void>): void };
  koa.use(async (ctx, next) => {
    if (ctx.path === '/token/revocation' && held) {
      const gate = held;
      held = undefined;
      gate.arrived();
      await gate.release;
    }
    await next();
  });
});
afterAll(() => h.close());

/** Holds the next revocation at the provider: `arrived` when it is there, `release()` lets it through. */
function holdNextRevocation(): { arrived: Promise<void>; release: () => void } {
  let arrived!: () => void;
  let release!: () => void;
  const arrival = new Promise<void>((r) => (arrived = r));
  held = { arrived, release: new Promise<void>((r) => (release = r)) };
  return { arrived: arrival, release };
}

async function session(): Promise<{ sid: string; handle: string }> {
  const res = await redeem(h, await nativeLogin(h));
  expect(res.status).toBe(200);
  const handle = (await res.json()).refresh_token as string;
  return { sid: handle.split('.')[0]!, handle };
}

const logoutWith = (handle: string) => fetch(`${h.url}/logout`, form({ refresh_token: handle, client_id: 'app' }));

describe('logout racing a refresh of the same session', () => {
  it('revokes the refresh token a refresh stored while the logout was revoking the one it had read', async () => {
    const { sid, handle } = await session();
    const first = await upstreamRefreshToken(h, sid);
    const before = revocations;
    const gate = holdNextRevocation();
    const logout = logoutWith(handle);
    await gate.arrived;
    // The stored access token is due: this refresh goes upstream and stores a new refresh token.
    h.clockOffset = 60;
    try {
      const refreshed = await refreshNative(h, handle);
      expect(refreshed.status, await refreshed.clone().text()).toBe(200);
    } finally {
      h.clockOffset = 0;
    }
    const second = await upstreamRefreshToken(h, sid);
    expect(second).not.toBe(first);
    gate.release();
    expect((await logout).status).toBe(200);
    expect(await getSession(h.runtime.table, sid)).toBeUndefined();
    // The token the logout read was revoked (the held request), and then the one stored meanwhile,
    // which the delete returned: a provider that revokes a token but not its family (RFC 7009
    // §2.1 lets it choose) would otherwise keep the new one alive. (oidc-provider revokes the whole
    // grant, so both are dead there either way.)
    expect(revocations - before).toBe(2);
    expect(await aliveAtProvider(h, first)).toBe(false);
    expect(await aliveAtProvider(h, second)).toBe(false);
  });

  it('ends the session although its handle rotated twice while the provider was revoking', async () => {
    const { sid, handle } = await session();
    const gate = holdNextRevocation();
    const logout = logoutWith(handle);
    await gate.arrived;
    const second = await refreshNative(h, handle);
    expect(second.status).toBe(200);
    const third = await refreshNative(h, (await second.json()).refresh_token);
    expect(third.status).toBe(200);
    const latest = (await third.json()).refresh_token as string;
    gate.release();
    expect((await logout).status).toBe(200);
    // The logout proved it held the session when it read it: the session is gone, whatever the
    // handle became meanwhile.
    expect(await getSession(h.runtime.table, sid)).toBeUndefined();
    const after = await refreshNative(h, latest);
    expect(after.status).toBe(400);
    expect((await after.json()).error).toBe('invalid_grant');
  });
});
