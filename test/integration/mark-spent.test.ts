/**
 * `markAccessTokenSpent` (lib/store/sessions.ts) on real DynamoDB semantics (dynalite): it marks
 * only the token the request used, never one a refresh replaced, never under a real lease (it
 * would make the lease look unreal and let a second refresh run beside the holder's), at most
 * every so often per session, and it recognises its own write when the SDK retries it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  claimRefresh, completeRefresh, createSession, getSession, leaseState, markAccessTokenSpent, type LeaseTerms,
} from '../../lib/store/sessions.js';
import { createTable, type Table } from '../../lib/store/table.js';
import { ensureTable, localDynamoClient, localTableClient, startDynalite, type LocalDynamo } from '../../local/dynamo.js';
import { DynamoFaults } from '../support/dynamo-faults.js';

let dynamo: LocalDynamo;
let table: Table;
const NOW = 1_800_000_000;
const MIN = 60;

beforeAll(async () => {
  dynamo = await startDynalite();
  const client = localDynamoClient(dynamo.endpoint);
  const name = `spent-${randomBytes(4).toString('hex')}`;
  await ensureTable(client, name);
  table = createTable(name, localTableClient(dynamo.endpoint));
});
afterAll(() => dynamo.close());

async function session(atExpiresAt = NOW + 300): Promise<string> {
  const sid = randomBytes(16).toString('base64url');
  await createSession(table, {
    sid, provider: 'op', clientId: 'web', clientType: 'web', createdAt: NOW - 100, maxExpiresAt: NOW + 86_400, hardExpiresAt: NOW + 86_400,
    idleExpiresAt: NOW + 3600, expiresAt: NOW + 3600, accessToken: `ciphertext-${sid}`, refreshToken: 'rt', atExpiresAt, cookieHash: `cookie-${sid}`,
  });
  return sid;
}

const lease = (now: number, owner = randomBytes(6).toString('hex')): LeaseTerms => ({ now, fresh: now + MIN, until: now + 12, owner });
const cookie = (sid: string) => ({ kind: 'cookie' as const, hash: `cookie-${sid}` });

describe('markAccessTokenSpent', () => {
  it('marks the token the request used: the next claim takes a real lease and refreshes', async () => {
    const sid = await session();
    const result = await markAccessTokenSpent(table, sid, { atExpiresAt: NOW + 300, accessToken: `ciphertext-${sid}` }, NOW, 30);
    expect(result.ok).toBe(true);
    const s = (await getSession(table, sid))!;
    expect(s.atExpiresAt).toBe(NOW - 1);
    expect(s.spentMarkedAt).toBe(NOW);
    const claimed = await claimRefresh(table, sid, cookie(sid), lease(NOW + 1), NOW + 3600);
    expect(claimed.ok).toBe(true);
    expect(leaseState(claimed.ok ? claimed.session : s, NOW + 1)).toBe('active');
  });

  it('leaves a token a refresh has replaced alone', async () => {
    const sid = await session();
    expect(await markAccessTokenSpent(table, sid, { atExpiresAt: NOW + 300, accessToken: 'an older ciphertext' }, NOW, 30)).toEqual({ ok: false, reason: 'replaced' });
    expect(await markAccessTokenSpent(table, sid, { atExpiresAt: NOW + 200, accessToken: `ciphertext-${sid}` }, NOW, 30)).toEqual({ ok: false, reason: 'replaced' });
    expect((await getSession(table, sid))!.atExpiresAt).toBe(NOW + 300);
  });

  it('never touches a token under a real lease, active or abandoned: the holder\'s refresh stays the only one', async () => {
    // A container whose clock runs ahead found the token stale and took a real lease on it.
    const sid = await session(NOW + 50);
    const holder = lease(NOW);
    const claimed = await claimRefresh(table, sid, cookie(sid), holder, NOW + 3600);
    expect(claimed.ok && leaseState(claimed.session, NOW)).toBe('active');
    expect(await markAccessTokenSpent(table, sid, { atExpiresAt: NOW + 50, accessToken: `ciphertext-${sid}` }, NOW, 30)).toEqual({ ok: false, reason: 'refreshing' });
    let s = (await getSession(table, sid))!;
    expect(leaseState(s, NOW)).toBe('active');
    // Nobody else can claim it meanwhile: the lease is still real.
    expect((await claimRefresh(table, sid, cookie(sid), lease(NOW + 1), NOW + 3600)).ok).toBe(false);
    // Abandoned (run out): still not marked; the next claim takes it over and refreshes anyway.
    expect(await markAccessTokenSpent(table, sid, { atExpiresAt: NOW + 50, accessToken: `ciphertext-${sid}` }, NOW + 20, 30)).toEqual({ ok: false, reason: 'refreshing' });
    // The holder completes as if nothing happened.
    const done = await completeRefresh(table, sid, holder.owner, { accessToken: 'new', atExpiresAt: NOW + 600, hardExpiresAt: NOW + 86_400, expiresAt: NOW + 3600 }, undefined);
    expect(done.ok).toBe(true);
    s = (await getSession(table, sid))!;
    expect(s).toMatchObject({ accessToken: 'new', atExpiresAt: NOW + 600 });
    expect(leaseState(s, NOW)).toBe('none');
  });

  it('marks over the lease fields of a request that found the token fresh (an unreal lease), which stays unreal', async () => {
    const sid = await session();
    const claimed = await claimRefresh(table, sid, cookie(sid), lease(NOW), NOW + 3600);
    expect(claimed.ok && leaseState(claimed.session, NOW)).toBe('none');
    expect((await markAccessTokenSpent(table, sid, { atExpiresAt: NOW + 300, accessToken: `ciphertext-${sid}` }, NOW, 30)).ok).toBe(true);
    expect(leaseState((await getSession(table, sid))!, NOW)).toBe('none');
  });

  it('marks a session at most once per interval', async () => {
    const sid = await session();
    expect((await markAccessTokenSpent(table, sid, { atExpiresAt: NOW + 300, accessToken: `ciphertext-${sid}` }, NOW, 30)).ok).toBe(true);
    const refreshed = await claimRefresh(table, sid, cookie(sid), lease(NOW + 1), NOW + 3600);
    expect(refreshed.ok).toBe(true);
    await completeRefresh(table, sid, refreshed.ok ? refreshed.session.leaseOwner! : '', { accessToken: 'second', atExpiresAt: NOW + 301, hardExpiresAt: NOW + 86_400, expiresAt: NOW + 3600 }, undefined);
    const seen = { atExpiresAt: NOW + 301, accessToken: 'second' };
    expect(await markAccessTokenSpent(table, sid, seen, NOW + 10, 30)).toEqual({ ok: false, reason: 'recent' });
    expect((await getSession(table, sid))!.atExpiresAt).toBe(NOW + 301);
    expect((await markAccessTokenSpent(table, sid, seen, NOW + 30, 30)).ok).toBe(true);
  });

  it('reports a second request refused by the same token as marked, and no session as gone', async () => {
    const sid = await session();
    const seen = { atExpiresAt: NOW + 300, accessToken: `ciphertext-${sid}` };
    expect((await markAccessTokenSpent(table, sid, seen, NOW, 30)).ok).toBe(true);
    expect((await markAccessTokenSpent(table, sid, seen, NOW, 30)).ok).toBe(true);
    expect(await markAccessTokenSpent(table, 'A'.repeat(22), seen, NOW, 30)).toEqual({ ok: false, reason: 'gone' });
  });

  it('recognises its own write when the SDK retries it after a lost answer', async () => {
    const sid = await session();
    const faults = new DynamoFaults();
    const box = faults.container(dynamo.endpoint);
    const faulty = createTable(table.name, box.table);
    faults.inject({ op: 'UpdateItem', nth: 1, fault: 'lost-answer' });
    const result = await markAccessTokenSpent(faulty, sid, { atExpiresAt: NOW + 300, accessToken: `ciphertext-${sid}` }, NOW, 30);
    expect(result.ok).toBe(true);
    expect(faults.calls.filter((c) => c.op === 'UpdateItem').length).toBeGreaterThanOrEqual(2);
    expect((await getSession(table, sid))!.atExpiresAt).toBe(NOW - 1);
  });
});
