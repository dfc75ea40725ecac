/**
 * The two writes that decide who keeps a handed-out rotation when a downstream login (XProtect's
 * VMS token) fails under it, on real DynamoDB semantics (dynalite): `rollBackRotation` takes the
 * rotation back only while nobody has stored a renewed downstream token since, and
 * `storeDownstream` stores a renewal only while the handle its answer carries is still the
 * session's current or previous one. A retry by the SDK of either, its first answer lost, leaves
 * the item as the first attempt did: the rollback's condition then fails and it does nothing
 * more; the store's still holds and it writes the same values. (The race itself, end to end:
 * test/providers/xprotect.test.ts.)
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSession, getSession, rollBackRotation, storeDownstream } from '../../lib/store/sessions.js';
import { createTable, type Table } from '../../lib/store/table.js';
import { ensureTable, localDynamoClient, localTableClient, startDynalite, type LocalDynamo } from '../../local/dynamo.js';
import { DynamoFaults } from '../support/dynamo-faults.js';

let dynamo: LocalDynamo;
let table: Table;
const NOW = 1_800_000_000;
const AT_EXPIRES = NOW + 3000;
const EXPIRED = NOW - 10;

beforeAll(async () => {
  dynamo = await startDynalite();
  const name = `rotation-${randomBytes(4).toString('hex')}`;
  await ensureTable(localDynamoClient(dynamo.endpoint), name);
  table = createTable(name, localTableClient(dynamo.endpoint));
});
afterAll(() => dynamo.close());

/** A native session whose rotation h0 → h1 was handed out, its VMS token expired. */
async function rotated(): Promise<string> {
  const sid = randomBytes(16).toString('base64url');
  await createSession(table, {
    sid, provider: 'xprotect', clientId: 'app', clientType: 'native', createdAt: NOW - 100, maxExpiresAt: NOW + 86_400, hardExpiresAt: NOW + 86_400,
    idleExpiresAt: NOW + 3600, expiresAt: NOW + 3600, accessToken: 'at', refreshToken: 'rt', atExpiresAt: AT_EXPIRES, cookieHash: `unused-${sid}`,
    handleHash: 'h1', handleGen: 2, handleEnc: 'enc-h1', prevHandleHash: 'h0', rotatedAt: NOW - 1, extras: 'vms-old', extrasExpiresAt: EXPIRED, extrasLifetime: 120,
  });
  return sid;
}

const restore = { hash: 'h0', generation: 1, enc: 'enc-h0' };
const renewal = { extras: 'vms-new', extrasExpiresAt: NOW + 120, extrasLifetime: 120 };

describe('rollBackRotation', () => {
  it('takes the rotation back while the downstream token is the one the request saw', async () => {
    const sid = await rotated();
    expect(await rollBackRotation(table, sid, 'h1', restore, EXPIRED)).toBeUndefined();
    const s = (await getSession(table, sid))!;
    expect([s.handleHash, s.handleGen, s.handleEnc, s.prevHandleHash, s.rotatedAt]).toEqual(['h0', 1, 'enc-h0', undefined, undefined]);
  });

  it('leaves the rotation standing, and resolves the record, once another request stored a renewed downstream token', async () => {
    const sid = await rotated();
    expect((await storeDownstream(table, sid, AT_EXPIRES, renewal, 'h1')).ok).toBe(true);
    const standing = await rollBackRotation(table, sid, 'h1', restore, EXPIRED);
    expect(standing).toMatchObject({ handleHash: 'h1', prevHandleHash: 'h0', extras: 'vms-new', extrasExpiresAt: NOW + 120 });
    expect((await getSession(table, sid))!.handleHash).toBe('h1');
  });

  it('a rollback whose answer was lost and that the SDK retried: taken back, nothing to hand out', async () => {
    const sid = await rotated();
    const faults = new DynamoFaults();
    faults.inject({ op: 'UpdateItem', nth: 1, fault: 'lost-answer' });
    expect(await rollBackRotation(createTable(table.name, faults.container(dynamo.endpoint).table), sid, 'h1', restore, EXPIRED)).toBeUndefined();
    expect(faults.calls.filter((c) => c.op === 'UpdateItem').length).toBeGreaterThanOrEqual(2);
    expect((await getSession(table, sid))!.handleHash).toBe('h0');
  });
});

describe('storeDownstream with the handle the answer carries', () => {
  it('stores while that handle is the current one, or the previous one', async () => {
    const sid = await rotated();
    expect((await storeDownstream(table, sid, AT_EXPIRES, renewal, 'h1')).ok).toBe(true);
    expect((await storeDownstream(table, sid, AT_EXPIRES, { ...renewal, extras: 'vms-newer' }, 'h0')).ok).toBe(true);
    expect((await getSession(table, sid))!.extras).toBe('vms-newer');
  });

  it('refuses once the rotation to that handle was taken back, and leaves the item as the rollback left it', async () => {
    const sid = await rotated();
    await rollBackRotation(table, sid, 'h1', restore, EXPIRED);
    const result = await storeDownstream(table, sid, AT_EXPIRES, renewal, 'h1');
    expect(result.ok).toBe(false);
    expect(!result.ok && result.current).toMatchObject({ handleHash: 'h0', extras: 'vms-old' });
  });

  it('refuses a renewal made with an access token an upstream refresh has replaced', async () => {
    const sid = await rotated();
    expect((await storeDownstream(table, sid, AT_EXPIRES - 1, renewal, 'h1')).ok).toBe(false);
  });

  it('a renewal whose answer was lost and that the SDK retried: stored', async () => {
    const sid = await rotated();
    const faults = new DynamoFaults();
    faults.inject({ op: 'UpdateItem', nth: 1, fault: 'lost-answer' });
    const result = await storeDownstream(createTable(table.name, faults.container(dynamo.endpoint).table), sid, AT_EXPIRES, renewal, 'h1');
    expect(result.ok).toBe(true);
    expect((await getSession(table, sid))!.extras).toBe('vms-new');
  });
});
