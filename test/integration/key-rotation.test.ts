import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKeyRing } from '../../lib/crypto/key-ring.js';
import { createTokenCipher } from '../../lib/crypto/token-cipher.js';
import { createRuntime } from '../../lib/runtime.js';
import { createLogger } from '../../lib/log.js';
import { startBrokerServer } from '../../local/http-adapter.js';
import { browserHeaders, go, nativeLogin, redeem, refreshNative, startHarness, webLogin, type Harness } from '../support/harness.js';
import { randomBytes } from 'node:crypto';

const key = () => randomBytes(32).toString('base64url');
const k1 = key();
const k2 = key();

let h: Harness;
beforeAll(async () => {
  process.env['TEST_KEY_RING'] = JSON.stringify({ current: 'k1', keys: { k1 } });
  h = await startHarness({ configure: (doc) => (doc.tokenEncryptionKeys = { env: 'TEST_KEY_RING' }) });
});
afterAll(() => h.close());

/** Another broker instance on the same table, with a different key ring: a deployment after rotation. */
async function withRing(ring: object) {
  const runtime = createRuntime({ config: h.config, table: h.runtime.table, log: createLogger({ sink: (l) => h.logs.push(l) }) });
  const cipher = createTokenCipher(parseKeyRing(JSON.stringify(ring)));
  return startBrokerServer({ ...runtime, cipher: async () => cipher }, { port: 0 });
}

describe('token-encryption key rotation', () => {
  it('keeps sessions readable while their key is listed, and ends them cleanly once it is removed', async () => {
    const native = await (await redeem(h, await nativeLogin(h))).json();
    const web = await webLogin(h);

    // Step 1 and 2 of a rotation: add k2 and make it current; k1 still decrypts.
    const rotated = await withRing({ current: 'k2', keys: { k1, k2 } });
    const r1 = await fetch(`${rotated.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: native.refresh_token, client_id: 'app' }) });
    expect(r1.status).toBe(200);
    const next = await r1.json();
    await rotated.close();

    // Step 3: k1 retired. Sessions still sealed with k1 end with invalid_grant, never a crash.
    const retired = await withRing({ current: 'k2', keys: { k2 } });
    const webRes = await go(web.jar, `${retired.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(webRes.status).toBe(401);
    expect((await webRes.json()).error).toBe('invalid_grant');
    const nativeRes = await fetch(`${retired.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: next.refresh_token, client_id: 'app' }) });
    expect(nativeRes.status).toBe(400);
    expect((await nativeRes.json()).error).toBe('invalid_grant');
    await retired.close();
    // The session is gone for everyone.
    expect((await refreshNative(h, next.refresh_token)).status).toBe(400);
    expect(h.logs.some((l) => JSON.parse(l).event === 'session.unreadable')).toBe(true);
  });
});

describe('key rotation across containers', () => {
  it('an old container meeting a ciphertext of a key it does not know reads the ring again, and ends nothing', async () => {
    process.env['TEST_KEY_RING_2'] = JSON.stringify({ current: 'k1', keys: { k1 } });
    const old = await startHarness({ configure: (doc) => (doc.tokenEncryptionKeys = { env: 'TEST_KEY_RING_2' }) });
    try {
      const tokens = await (await redeem(old, await nativeLogin(old))).json();
      // A container deployed after the rotation seals with k2; its refresh goes upstream, so the
      // stored access token and handle are k2 ciphertexts.
      const newRing = { current: 'k2', keys: { k1, k2 } };
      process.env['TEST_KEY_RING_2'] = JSON.stringify(newRing);
      const runtime = createRuntime({ config: old.config, table: old.runtime.table, log: createLogger({ sink: () => {} }), now: () => Math.floor(Date.now() / 1000) + 290 });
      const cipher = createTokenCipher(parseKeyRing(JSON.stringify(newRing)));
      const newer = await startBrokerServer({ ...runtime, cipher: async () => cipher }, { port: 0 });
      const res1 = await fetch(`${newer.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'app' }) });
      expect(res1.headers.get('x-broker-token-source')).toBe('upstream');
      const sealed = await res1.json();
      await newer.close();
      // Back on the old container, which still holds {current: k1}: it reads the ring again.
      const res2 = await refreshNative(old, sealed.refresh_token);
      expect(res2.status).toBe(200);
      expect((await res2.json()).access_token).toBe(sealed.access_token);
      expect(old.logs.some((l) => JSON.parse(l).event === 'keys.reloaded')).toBe(true);
    } finally {
      await old.close();
    }
  });
});
