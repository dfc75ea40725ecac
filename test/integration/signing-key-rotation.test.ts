/**
 * A rotation of the ID-token signing keys with the operator CLI (`signing-keys add`, `promote`,
 * `retire`) while apps refresh: not one ID token fails verification, whether the app fetches
 * `/jwks` when it meets a new `kid` or keeps the key set it fetched between the steps, and
 * whether the container that served it has read the new ring yet or not.
 *
 * "Time passing" between steps is simulated the way containers experience it: the ring is a
 * `{"env": ...}` secret here, and a container reads it again when its cache is cleared (in a
 * deployment: after 15 minutes, the step spacing the CLI prints).
 */
import { createLocalJWKSet, createRemoteJWKSet, decodeProtectedHeader, jwtVerify, type JWTVerifyGetKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, type Io } from '../../lib/cli/main.js';
import { createLogger } from '../../lib/log.js';
import { createRuntime } from '../../lib/runtime.js';
import { startBrokerServer, type BrokerServer } from '../../local/http-adapter.js';
import { nativeLogin, NATIVE_LOGGED_OUT, redeem, refreshNative, startHarness, type Harness } from '../support/harness.js';

const ENV = 'TEST_SIGNING_KEYS_ROTATION';
const files: Record<string, string> = {};
const io: Io = { out: () => {}, err: (t) => { throw new Error(t); }, read: (p) => files[p]!, write: (p, t) => void (files[p] = t) };
/** The operator runs the CLI and publishes the ring file to the secret. */
function operator(...argv: string[]): void {
  expect(run(['signing-keys', ...argv], io)).toBe(0);
  process.env[ENV] = files['ring.json'];
}

let h: Harness;
/** A second container that reads the ring when the test says so. */
let lagging: { url: string; server: BrokerServer; runtime: ReturnType<typeof createRuntime> };

beforeAll(async () => {
  const out: string[] = [];
  expect(run(['signing-keys', 'generate'], { ...io, out: (t) => out.push(t) })).toBe(0);
  files['ring.json'] = out[0]!;
  process.env[ENV] = files['ring.json'];
  h = await startHarness({ configure: (doc) => (doc.signingKeys = { env: ENV }) });
  const runtime = createRuntime({ config: h.config, table: h.runtime.table, log: createLogger({ sink: (l) => h.logs.push(l) }) });
  await runtime.signing.get();
  const shared = await h.runtime.cipher();
  const server = await startBrokerServer({ ...runtime, cipher: async () => shared }, { port: 0 });
  lagging = { url: server.url, server, runtime };
});
afterAll(async () => {
  await lagging.server.close();
  await h.close();
  delete process.env[ENV];
});

const kidOf = (jwt: string) => decodeProtectedHeader(jwt).kid!;

describe('signing key rotation with the operator CLI, while apps refresh', () => {
  it('add → promote → retire: every ID token verifies, for apps that refetch /jwks and apps that keep theirs', async () => {
    const failures: string[] = [];
    const apps: Record<string, () => Promise<JWTVerifyGetKey>> = {
      // Fetches /jwks again when it meets a kid it does not know (openid-client, oauth4webapi, jose).
      refetching: async () => createRemoteJWKSet(new URL(`${h.url}/jwks`), { cooldownDuration: 0 }),
    };
    let kept: JWTVerifyGetKey | undefined;
    const verify = async (idToken: string, step: string) => {
      for (const [name, jwks] of Object.entries({ ...apps, ...(kept ? { kept: async () => kept! } : {}) })) {
        try {
          await jwtVerify(idToken, await jwks(), { issuer: h.url, audience: 'app' });
        } catch (err) {
          failures.push(`${step} ${name}: ${(err as Error).message}`);
        }
      }
    };
    const refreshOn = async (url: string, handle: string) => {
      const res = await fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: handle, client_id: 'app' }) });
      expect(res.status).toBe(200);
      return (await res.json()) as { refresh_token: string; id_token: string };
    };

    const first = JSON.parse(files['ring.json']!).current as string;
    const login = await (await redeem(h, await nativeLogin(h, { extra: { scope: 'openid' } }))).json();
    expect(kidOf(login.id_token)).toBe(first);
    await verify(login.id_token, 'login');
    let handle: string = login.refresh_token;

    // 1. add: published at /jwks, signs nothing yet.
    operator('add', 'ring.json', 's-next');
    h.runtime.signing.clear();
    const published = await (await fetch(`${h.url}/jwks`)).json();
    expect(published.keys.map((k: { kid: string }) => k.kid)).toEqual([first, `${first}.es256`, 's-next', 's-next.es256']);
    let r = await refreshOn(h.url, handle);
    handle = r.refresh_token;
    expect(kidOf(r.id_token)).toBe(first);
    await verify(r.id_token, 'after add');
    // An app that fetched the key set during the wait, and keeps it through the next step.
    kept = createLocalJWKSet(published);

    // 2. promote: this container signs with the new key; the lagging one still with the old.
    operator('promote', 'ring.json', 's-next');
    h.runtime.signing.clear();
    r = await refreshOn(h.url, handle);
    handle = r.refresh_token;
    expect(kidOf(r.id_token)).toBe('s-next');
    await verify(r.id_token, 'after promote');
    r = await refreshOn(lagging.url, handle);
    handle = r.refresh_token;
    expect(kidOf(r.id_token)).toBe(first);
    await verify(r.id_token, 'after promote, lagging container');
    // A token signed by the previous key still verifies at /jwks.
    await verify(login.id_token, 'login token after promote');

    // 3. retire, once every container signs with the new key.
    lagging.runtime.signing.clear();
    operator('retire', 'ring.json', first);
    h.runtime.signing.clear();
    expect((await (await fetch(`${h.url}/jwks`)).json()).keys.map((k: { kid: string }) => k.kid)).toEqual(['s-next', 's-next.es256']);
    for (const url of [h.url, lagging.url]) {
      r = await refreshOn(url, handle);
      handle = r.refresh_token;
      expect(kidOf(r.id_token)).toBe('s-next');
      await verify(r.id_token, `after retire (${url === h.url ? 'first' : 'second'} container)`);
    }

    expect(failures).toEqual([]);
  });

  it('a container that has not read the ring since before a generation was added checks /end-session hints of it (it reads the ring once more)', async () => {
    const { refresh_token: handle, id_token: idToken } = await (await redeem(h, await nativeLogin(h, { extra: { scope: 'openid' } }))).json();
    const stale = createRuntime({ config: h.config, table: h.runtime.table, log: createLogger({ sink: (l) => h.logs.push(l) }) });
    await stale.signing.get();
    operator('add', 'ring.json', 's-third');
    operator('promote', 'ring.json', 's-third');
    h.runtime.signing.clear();
    const fresh = await (await refreshNative(h, handle)).json();
    expect(kidOf(fresh.id_token)).toBe('s-third');
    const shared = await h.runtime.cipher();
    const server = await startBrokerServer({ ...stale, cipher: async () => shared }, { port: 0 });
    try {
      const res = await fetch(`${server.url}/end-session?${new URLSearchParams({ id_token_hint: fresh.id_token, post_logout_redirect_uri: NATIVE_LOGGED_OUT })}`, { redirect: 'manual' });
      expect(res.status).toBe(302);
      expect(h.logs.some((l) => JSON.parse(l).event === 'signing_keys.reloaded')).toBe(true);
    } finally {
      await server.close();
    }
    expect(kidOf(idToken)).toBe('s-next');
  });
});
