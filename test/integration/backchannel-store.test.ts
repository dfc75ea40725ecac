/**
 * (v2) The store operations of back-channel logout against dynalite: the replay cache's one
 * conditional put and its own-write recognition, and the session index lookup and its guarded
 * delete (a stale or foreign index entry never ends another session).
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ABANDONED_AFTER_SECONDS, forgetLogoutToken, markLogoutTokenDone, rememberLogoutToken } from '../../lib/store/logout-tokens.js';
import { createSession, endMatchingSession, findMatchingSessions, getSession, type NewSession } from '../../lib/store/sessions.js';
import { createTable, type Table } from '../../lib/store/table.js';
import { ensureTable, localDynamoClient, localTableClient, startDynalite, type LocalDynamo } from '../../local/dynamo.js';

let dynamo: LocalDynamo;
let table: Table;
const NOW = 1_800_000_000;

beforeAll(async () => {
  dynamo = await startDynalite();
  const client = localDynamoClient(dynamo.endpoint);
  const name = `bcl-${randomBytes(4).toString('hex')}`;
  expect(await ensureTable(client, name)).toEqual({ missingIndexes: [] });
  table = createTable(name, localTableClient(dynamo.endpoint));
});
afterAll(async () => dynamo?.close());

const sid = () => randomBytes(16).toString('base64url');
function session(over: Partial<NewSession> = {}): NewSession {
  return {
    sid: sid(), provider: 'op', clientId: 'app', clientType: 'web', createdAt: NOW, maxExpiresAt: NOW + 1000, hardExpiresAt: NOW + 1000,
    idleExpiresAt: NOW + 1000, expiresAt: NOW + 1000, accessToken: 'enc', atExpiresAt: NOW + 300, cookieHash: randomBytes(32).toString('base64url'), ...over,
  };
}

describe('rememberLogoutToken', () => {
  it('first use, then a replay from another request; the same request\'s retried put is its own', async () => {
    const use = { provider: 'op', jti: 'j1', until: NOW + 300, now: NOW, owner: 'o1' };
    expect(await rememberLogoutToken(table, use)).toBe('first');
    expect(await rememberLogoutToken(table, use)).toBe('first'); // the SDK retrying the applied put
    // Until the first request has ended its sessions, another is told it is under way (503, retried later).
    expect(await rememberLogoutToken(table, { ...use, owner: 'o2' })).toBe('in-progress');
    await markLogoutTokenDone(table, use);
    expect(await rememberLogoutToken(table, { ...use, owner: 'o2' })).toBe('replayed');
    // The same jti from another provider is another token.
    expect(await rememberLogoutToken(table, { ...use, provider: 'op2', owner: 'o3' })).toBe('first');
  });

  it('a record past its time may be replaced (TTL deletes late); one not yet past may not', async () => {
    const use = { provider: 'op', jti: 'j2', until: NOW + 10, now: NOW, owner: 'o1' };
    expect(await rememberLogoutToken(table, use)).toBe('first');
    await markLogoutTokenDone(table, use);
    expect(await rememberLogoutToken(table, { ...use, now: NOW + 9, owner: 'o2' })).toBe('replayed');
    expect(await rememberLogoutToken(table, { ...use, now: NOW + 10, until: NOW + 400, owner: 'o3' })).toBe('first');
    // The owner of a record that ran out does not get it back as its own.
    expect(await rememberLogoutToken(table, { ...use, now: NOW + 500, until: NOW + 600, owner: 'o3' })).toBe('first');
  });

  it('forgetLogoutToken removes only this request\'s record', async () => {
    const use = { provider: 'op', jti: 'j3', until: NOW + 300, now: NOW, owner: 'o1' };
    await rememberLogoutToken(table, use);
    await forgetLogoutToken(table, { ...use, owner: 'someone-else' });
    expect(await rememberLogoutToken(table, { ...use, owner: 'o2' })).toBe('in-progress');
    await forgetLogoutToken(table, use);
    expect(await rememberLogoutToken(table, { ...use, owner: 'o4' })).toBe('first');
    await forgetLogoutToken(table, { ...use, jti: 'never-seen' });
  });

  it('a record its request abandoned (not done after 30 s: it died, or storage failed its clean-up) is taken over once, by one request', async () => {
    const use = { provider: 'op', jti: 'j4', until: NOW + 300, now: NOW, owner: 'o1' };
    expect(await rememberLogoutToken(table, use)).toBe('first');
    expect(await rememberLogoutToken(table, { ...use, now: NOW + ABANDONED_AFTER_SECONDS - 1, owner: 'o2' })).toBe('in-progress');
    const later = { ...use, now: NOW + ABANDONED_AFTER_SECONDS };
    expect(await rememberLogoutToken(table, { ...later, owner: 'o2' })).toBe('first');
    expect(await rememberLogoutToken(table, { ...later, owner: 'o2' })).toBe('first'); // its own take-over, retried
    expect(await rememberLogoutToken(table, { ...later, owner: 'o3' })).toBe('in-progress');
    // The request that died cannot mark it done any more; the one that took over can.
    await markLogoutTokenDone(table, use);
    expect(await rememberLogoutToken(table, { ...later, now: NOW + 100, owner: 'o4' })).toBe('first');
    await markLogoutTokenDone(table, { ...later, now: NOW + 100, owner: 'o4' });
    expect(await rememberLogoutToken(table, { ...later, now: NOW + 101, owner: 'o5' })).toBe('replayed');
  });
});

describe('findMatchingSessions and endMatchingSession', () => {
  it('find by sub or sid through the sparse indexes; sessions without keys are in neither', async () => {
    const a = session({ idpSubKey: 'U1', idpSidKey: 'S1' });
    const b = session({ idpSubKey: 'U1', idpSidKey: 'S2', clientType: 'native', cookieHash: undefined, codeHash: 'c'.repeat(43) });
    const c = session({ idpSubKey: 'U1' });
    const none = session();
    for (const s of [a, b, c, none]) await createSession(table, s);
    expect((await findMatchingSessions(table, { provider: 'op', subKey: 'U1' })).sort()).toEqual([a.sid, b.sid, c.sid].sort());
    expect(await findMatchingSessions(table, { provider: 'op', sidKey: 'S1' })).toEqual([a.sid]);
    expect(await findMatchingSessions(table, { provider: 'op', subKey: 'nobody' })).toEqual([]);
  });

  it('the delete re-checks provider and keys on the item: another provider, another sub, another sid end nothing', async () => {
    const s = session({ idpSubKey: 'U9', idpSidKey: 'S9' });
    await createSession(table, s);
    expect(await endMatchingSession(table, s.sid, { provider: 'op2', subKey: 'U9' })).toBe(false);
    expect(await endMatchingSession(table, s.sid, { provider: 'op', subKey: 'U8' })).toBe(false);
    expect(await endMatchingSession(table, s.sid, { provider: 'op', sidKey: 'S8' })).toBe(false);
    expect(await endMatchingSession(table, s.sid, { provider: 'op', sidKey: 'S9', subKey: 'U8' })).toBe(false);
    expect(await getSession(table, s.sid)).toBeDefined();
    expect(await endMatchingSession(table, s.sid, { provider: 'op', sidKey: 'S9', subKey: 'U9' })).toBe(true);
    expect(await getSession(table, s.sid)).toBeUndefined();
    // Gone already (a retried delete, a stale index entry): no error, nothing ended.
    expect(await endMatchingSession(table, s.sid, { provider: 'op', sidKey: 'S9', subKey: 'U9' })).toBe(false);
    expect(await findMatchingSessions(table, { provider: 'op', sidKey: 'S9' })).toEqual([]);
  });

  it('finds every session of a user with many', async () => {
    const many = Array.from({ length: 30 }, () => session({ idpSubKey: 'MANY' }));
    await Promise.all(many.map((s) => createSession(table, s)));
    expect((await findMatchingSessions(table, { provider: 'op', subKey: 'MANY' })).length).toBe(30);
  });
});
