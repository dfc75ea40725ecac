/**
 * `storage.ciphertexts: "compact"` turned on in a deployment whose sessions were written as JWE,
 * and off again: every session goes on either way, because both forms are always read; values
 * written with it on are `kid~iv.ciphertext.tag`, and the session item shrinks by their headers.
 */
import { randomBytes } from 'node:crypto';
import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Config } from '../../lib/config/parse.js';
import { createLogger } from '../../lib/log.js';
import { createRuntime, type Runtime } from '../../lib/runtime.js';
import { startBrokerServer, type BrokerServer } from '../../local/http-adapter.js';
import { localDynamoClient } from '../../local/dynamo.js';
import { itemSize, withCompactCiphertexts, type Item } from '../../bench/items.js';
import { fieldContext } from '../../lib/broker/session-tokens.js';
import { browserHeaders, go, nativeLogin, redeem, refreshNative, startHarness, webLogin, type Harness } from '../support/harness.js';

const ENCRYPTED = ['accessToken', 'refreshToken', 'idToken', 'identity', 'handleEnc'] as const;

let h: Harness;
let compact: BrokerServer;
let compactRuntime: Runtime;
beforeAll(async () => {
  process.env['TEST_COMPACT_KEY_RING'] = JSON.stringify({ current: 'k20261130', keys: { k20261130: randomBytes(32).toString('base64url') } });
  h = await startHarness({ configure: (doc) => (doc.tokenEncryptionKeys = { env: 'TEST_COMPACT_KEY_RING' }) });
  expect(h.config.storage.ciphertexts).toBe('jwe');
  // The same deployment with the setting turned on: same table, same key ring (read from its
  // secret reference, as a container does), a clock 290 s on, so that its refreshes go upstream.
  const config: Config = { ...h.config, storage: { ciphertexts: 'compact' } };
  compactRuntime = createRuntime({ config, table: h.runtime.table, log: createLogger({ sink: (l) => h.logs.push(l) }), now: () => Math.floor(Date.now() / 1000) + 290 });
  compact = await startBrokerServer(compactRuntime, { port: 0 });
});
afterAll(async () => {
  await compact.close();
  await h.close();
});

const item = async (sid: string): Promise<Item> =>
  (await localDynamoClient(h.dynamoEndpoint).send(new GetItemCommand({ TableName: h.runtime.table.name, Key: { pk: { S: `session#${sid}` } }, ConsistentRead: true }))).Item as Item;
const sidOf = (handle: string) => handle.split('.')[0]!;
const formsOf = (stored: Item) => Object.fromEntries(ENCRYPTED.filter((name) => stored[name]?.S).map((name) => [name, stored[name]!.S!.startsWith('k20261130~') ? 'compact' : stored[name]!.S!.startsWith('eyJ') ? 'jwe' : 'neither']));

describe('compact ciphertexts (storage.ciphertexts)', () => {
  it('turned on: a native session written as JWE refreshes, its new values are compact and its item smaller; turned off again, it is still read', async () => {
    const first = (await (await redeem(h, await nativeLogin(h))).json()) as { refresh_token: string };
    const before = await item(sidOf(first.refresh_token));
    expect(Object.values(formsOf(before)).every((form) => form === 'jwe')).toBe(true);

    // On the compact container, the stored access token is due: an upstream refresh rewrites every value.
    const res = await refreshNative({ url: compact.url } as Harness, first.refresh_token);
    expect(res.status).toBe(200);
    expect(res.headers.get('x-broker-token-source')).toBe('upstream');
    const second = (await res.json()) as { refresh_token: string; access_token: string };
    const after = await item(sidOf(first.refresh_token));
    // The identity is the login's, written once: it stays as the login wrote it.
    expect(formsOf(after)).toEqual({ accessToken: 'compact', refreshToken: 'compact', idToken: 'compact', identity: 'jwe', handleEnc: 'compact' });
    // Four headers fewer, 55 bytes each with this key id (the new tokens' own lengths may differ a little).
    expect(itemSize(before) - itemSize(after)).toBeGreaterThanOrEqual(4 * 55 - 20);

    // Back on a container with the setting off (a rollback of the setting): compact values are read.
    const back = await refreshNative(h, second.refresh_token);
    expect(back.status).toBe(200);
    expect(back.headers.get('x-broker-token-source')).toBe('stored');
    expect(((await back.json()) as { access_token: string }).access_token).toBe(second.access_token);
    expect(h.logs.some((l) => JSON.parse(l).event === 'session.unreadable')).toBe(false);
  });

  it('turned on: a web session written as JWE refreshes on either container', async () => {
    const web = await webLogin(h);
    const onCompact = await go(web.jar, `${compact.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(onCompact.status).toBe(200);
    const { access_token: token } = (await onCompact.json()) as { access_token: string };
    const onJwe = await go(web.jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(onJwe.status).toBe(200);
    expect(((await onJwe.json()) as { access_token: string }).access_token).toBe(token);
  });

  it("is what the bench's re-encoding of a JWE item makes (bench/items.ts): every value reads back the same, nothing else changes", async () => {
    const { refresh_token: handle } = (await (await redeem(h, await nativeLogin(h))).json()) as { refresh_token: string };
    const sid = sidOf(handle);
    const before = await item(sid);
    const reencoded = withCompactCiphertexts(before);
    expect(formsOf(reencoded)).toEqual({ accessToken: 'compact', refreshToken: 'compact', idToken: 'compact', identity: 'compact', handleEnc: 'compact' });
    const cipher = await compactRuntime.cipher();
    for (const [name, value] of Object.entries(before)) {
      if (!(ENCRYPTED as readonly string[]).includes(name)) expect(reencoded[name]).toEqual(value);
      else {
        const context = fieldContext(sid, name === 'handleEnc' ? 'handle' : name);
        expect(await cipher.decrypt(reencoded[name]!.S!, context)).toBe(await cipher.decrypt(value.S!, context));
      }
    }
    expect(itemSize(before) - itemSize(reencoded)).toBe(5 * 55);
  });
});
