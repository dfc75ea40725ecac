/**
 * Regressions from review: interleavings of a slow upstream refresh with other requests.
 * A second broker instance (another container) sees every provider answer 400 ms late.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WAIT_MS } from '../../lib/broker/refresh.js';
import { sha256 } from '../../lib/crypto/random.js';
import { createLogger } from '../../lib/log.js';
import { createRuntime } from '../../lib/runtime.js';
import { getSession, sessionKey } from '../../lib/store/sessions.js';
import { startBrokerServer, type BrokerServer } from '../../local/http-adapter.js';
import { browserHeaders, countGrants, form, go, nativeLogin, redeem, refreshNative, startHarness, webLogin, type Harness } from '../support/harness.js';

let h: Harness;
let slow: BrokerServer;
let grants: Record<string, number>;
let skew = 0;
let revocationRequests = 0;
beforeAll(async () => {
  h = await startHarness({ configure: (doc) => (doc.ttl = { minAccessTokenSeconds: 30 }) });
  grants = countGrants(h);
  h.op.server.prependListener('request', (req) => {
    if (req.method === 'POST' && req.url?.startsWith('/token/revocation')) revocationRequests++;
  });
  // The provider has done its work (a rotated refresh token exists) before the broker hears of it.
  const slowFetch: typeof fetch = async (input, init) => {
    const res = await fetch(input, init);
    await new Promise((r) => setTimeout(r, 400));
    return res;
  };
  const runtime = createRuntime({
    config: h.config, table: h.runtime.table, http: { fetch: slowFetch },
    log: createLogger({ sink: (l) => h.logs.push(l) }),
    now: () => Math.floor(Date.now() / 1000) + h.clockOffset + skew,
  });
  slow = await startBrokerServer({ ...runtime, cipher: h.runtime.cipher, signing: h.runtime.signing }, { port: 0 });
  // Warm the slow container's discovery cache, so its next provider call is the token call.
  await fetch(`${slow.url}/login?client_id=web`, { redirect: 'manual' });
});
afterAll(async () => {
  await slow.close();
  await h.close();
});

const refreshes = () => grants['refresh_token'] ?? 0;

describe('refresh races (regressions)', () => {
  it('a logout during an upstream refresh wins: the refresh hands out nothing and its new refresh token is revoked', async () => {
    const tokens = await (await redeem(h, await nativeLogin(h))).json();
    h.clockOffset = 290;
    const inFlight = fetch(`${slow.url}/token`, form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'app' }));
    await new Promise((r) => setTimeout(r, 150));
    const before = revocationRequests;
    const out = await fetch(`${h.url}/logout`, form({ refresh_token: tokens.refresh_token, client_id: 'app' }));
    expect(out.status).toBe(200);
    const res = await inFlight;
    h.clockOffset = 0;
    expect(res.status).toBe(400);
    expect((await res.json()).error).toBe('invalid_grant');
    // The logout revoked the old refresh token; the refresh that lost its session revoked the
    // one it had just obtained (oidc-provider may already have dropped the grant: still sent).
    expect(revocationRequests - before).toBe(2);
    expect(h.logs.some((l) => /"event":"refresh.lease_lost".*"outcome":"session_ended"/.test(l))).toBe(true);
  });

  it('the same handle sent to two containers: the app goes on with the first answer at once, and the other request, still waiting, gets what the app\'s newest request got, never a revocation', async () => {
    const tokens = await (await redeem(h, await nativeLogin(h))).json();
    h.clockOffset = 290;
    const logsBefore = h.logs.length;
    // A takes the lease on the slow container; B, the same handle on another, waits for it.
    const a = fetch(`${slow.url}/token`, form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'app' }));
    await new Promise((r) => setTimeout(r, 100));
    const b = fetch(`${h.url}/token`, form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'app' }));
    const first = await a;
    expect(first.status).toBe(200);
    // The app refreshes with the handle it got, at once: served from the token just stored.
    const secondHandle = (await first.json()).refresh_token as string;
    const next = await fetch(`${h.url}/token`, form({ grant_type: 'refresh_token', refresh_token: secondHandle, client_id: 'app' }));
    expect(next.status).toBe(200);
    const newest = (await next.json()).refresh_token;
    // B reads the item once more: its handle is two generations old now (or, if B read between
    // A's write and the app's next refresh, the previous one within the grace window), which is
    // not a thief's; like a racing tab it is answered with the current handle.
    const late = await b;
    expect(late.status).toBe(200);
    expect([secondHandle, newest]).toContain((await late.json()).refresh_token);
    h.clockOffset = 0;
    expect((await fetch(`${h.url}/token`, form({ grant_type: 'refresh_token', refresh_token: newest, client_id: 'app' }))).status).toBe(200);
    expect(h.logs.slice(logsBefore).some((l) => /session\.revoked_reuse/.test(l))).toBe(false);
  });

  it('a superseded request that outwaits its wait is refused (invalid_grant), not told to try again: a retry with its handle would be theft', async () => {
    const h0 = (await (await redeem(h, await nativeLogin(h))).json()).refresh_token as string;
    const sid = h0.split('.')[0]!;
    const table = h.runtime.table;
    const now = () => Math.floor(Date.now() / 1000) + h.clockOffset;
    // Another request's lease, as its write leaves the item: a real lease rotating to `hash`, pending.
    const rotateUnderLease = (hash: string, generation: number, owner: string) => table.call('UpdateItem', {
      TableName: table.name, Key: { pk: { S: sessionKey(sid) } },
      UpdateExpression: 'SET prevHandleHash = handleHash, handleHash = :h, handleGen = :g, rotatedAt = :n, leaseOwner = :o, leaseUntil = :u, leaseAtExp = atExpiresAt, leaseFreshBound = :fb, leaseRotates = :one',
      ExpressionAttributeValues: { ':h': { S: hash }, ':g': { N: String(generation) }, ':n': { N: String(now()) }, ':o': { S: owner }, ':u': { N: String(now() + 13) }, ':fb': { N: String(now() + 30) }, ':one': { N: '1' } },
    });
    h.clockOffset = 290;
    const g = (await getSession(table, sid))!.handleGen!;
    // Lease X rotates h0 -> h1; this request with h0 sees its handle valid (previous, pending) and waits.
    await rotateUnderLease(sha256('h1'), g + 1, 'X');
    const started = Date.now();
    const waiting = refreshNative(h, h0);
    await new Promise((r) => setTimeout(r, 5000));
    // X is done; the app at once refreshes h1 under lease Y, which outlasts the wait.
    await rotateUnderLease(sha256('h2'), g + 2, 'Y');
    const res = await waiting;
    h.clockOffset = 0;
    expect(Date.now() - started).toBeGreaterThan(WAIT_MS - 1000);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/superseded/) });
    expect(await getSession(table, sid)).toBeDefined();
  }, 30_000);

  it('a racer whose clock lags cannot void the lease: one upstream call, every tab served', async () => {
    const { jar } = await webLogin(h);
    h.clockOffset = 290;
    const before = refreshes();
    // Tab A takes the lease on the slow container; tab B's container clock is 100 s behind, so
    // it believes the stored token is still fresh; tab C comes after with a right clock.
    const a = go(jar, `${slow.url}/refresh`, { method: 'POST', headers: browserHeaders });
    await new Promise((r) => setTimeout(r, 100));
    h.clockOffset = 190;
    const b = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    h.clockOffset = 290;
    const c = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    const results = [await a, b, c];
    h.clockOffset = 0;
    expect(results.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(refreshes() - before).toBe(1);
    // B sees A's lease as active by its own clock too, so it waits for A's write; C comes after
    // that write and is served the stored token A wrote.
    expect(results.map((r) => r.headers.get('x-broker-token-source'))).toEqual(['upstream', 'deduplicated', 'stored']);
    const bodies = await Promise.all(results.map((r) => r.json()));
    expect(bodies[2].access_token).toBe(bodies[0].access_token);
  });
});
