/**
 * A session item that no longer parses (corrupt, or written by a version this one cannot read) is
 * storage trouble for a refresh (503, the item kept: a rollout may yet read it), but never keeps a
 * user from logging out: `POST /logout` (handle or cookie) and `GET /end-session` delete it on the
 * proof they carry, checked by DynamoDB in the delete's condition (lib/broker/logout.ts,
 * `endSessionFor`). A wrong proof deletes nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sessionKey } from '../../lib/store/sessions.js';
import { browserHeaders, form, go, nativeLogin, redeem, refreshNative, startHarness, webLogin, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(() => h.close());

/** Breaks the stored session's schema (a client type no version writes), as corruption would. */
async function corrupt(sid: string): Promise<void> {
  await h.runtime.table.call('UpdateItem', {
    TableName: h.runtime.table.name, Key: { pk: { S: sessionKey(sid) } },
    UpdateExpression: 'SET clientType = :x', ExpressionAttributeValues: { ':x': { S: 'not-a-client-type' } },
  });
}

const stored = async (sid: string) => (await h.runtime.table.call('GetItem', { TableName: h.runtime.table.name, Key: { pk: { S: sessionKey(sid) } }, ConsistentRead: true })).Item;

const unreadableLines = () => h.logs.map((l) => JSON.parse(l)).filter((l) => l.event === 'session.unreadable' && l.step === 'logout');

async function nativeSession(scope?: string): Promise<{ sid: string; handle: string; idToken?: string }> {
  const tokens = await (await redeem(h, await nativeLogin(h, scope ? { extra: { scope } } : {}))).json();
  const handle = tokens.refresh_token as string;
  return { sid: handle.split('.')[0]!, handle, idToken: tokens.id_token };
}

describe('a session item that no longer parses', () => {
  it('answers a refresh 503 and keeps the item; a logout by another client deletes nothing; by its own, deletes it', async () => {
    const { sid, handle } = await nativeSession();
    await corrupt(sid);
    const refresh = await refreshNative(h, handle);
    expect(refresh.status).toBe(503);
    expect((await refresh.json()).error).toBe('temporarily_unavailable');
    expect(await stored(sid)).toBeDefined();

    const before = unreadableLines().length;
    // The broker's own handle, presented by another client: the delete's condition refuses it.
    const wrong = await fetch(`${h.url}/logout`, form({ refresh_token: handle, client_id: 'other' }));
    expect(wrong.status).toBe(200); // RFC 7009 §2.2: a token that is not the client's is answered alike
    expect(await stored(sid)).toBeDefined();
    expect(unreadableLines().slice(before).map((l) => l.ended)).toEqual([false]);

    const res = await fetch(`${h.url}/logout`, form({ refresh_token: handle, client_id: 'app' }));
    expect(res.status).toBe(200);
    expect(await stored(sid)).toBeUndefined();
    const lines = unreadableLines().slice(before);
    expect(lines.map((l) => l.ended)).toEqual([false, true]);
    expect(lines[1]).toMatchObject({ level: 'warn', error: 'UnreadableSessionError', cause: expect.stringContaining('clientType') });
    expect(lines.every((l) => !JSON.stringify(l).includes(handle))).toBe(true);
  });

  it('is deleted by a web logout with its cookie', async () => {
    const { jar } = await webLogin(h);
    const sid = jar.get('broker-session')!.split('.')[0]!;
    await corrupt(sid);
    const res = await go(jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders });
    expect(res.status).toBeLessThan(300);
    expect(await stored(sid)).toBeUndefined();
  });

  it('is deleted by GET /end-session with the broker ID token of its client', async () => {
    const { sid, idToken } = await nativeSession('openid');
    await corrupt(sid);
    const res = await fetch(`${h.url}/end-session?${new URLSearchParams({ id_token_hint: idToken! })}`, { redirect: 'manual' });
    expect(res.status).toBeLessThan(400);
    expect(await stored(sid)).toBeUndefined();
  });
});
