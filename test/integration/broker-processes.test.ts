/**
 * The process helper of the chaos test: broker processes (the local runner) on one dynalite behind
 * the fault proxy, sharing one key ring, killed with SIGKILL and restarted.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDynalite, type LocalDynamo } from '../../local/dynamo.js';
import { startOidcProvider, type RunningProvider } from '../../local/oidc-provider.js';
import { startFaultProxy, type FaultProxy } from '../support/dynamo-fault-proxy.js';
import { freePort, nativeLogin, NATIVE_REDIRECT, pkce, redeem, refreshNative, type Harness } from '../support/harness.js';
import { startBrokerProcess, writeBrokerConfig, type BrokerProcess } from '../support/processes.js';

let dynamo: LocalDynamo;
let proxy: FaultProxy;
let op: RunningProvider;
let b1: BrokerProcess;
let b2: BrokerProcess;
let publicUrl: string;
const started: BrokerProcess[] = [];
const byName = new Map<string, BrokerProcess>();

/** The harness's HTTP helpers need only the broker's URL. */
const at = (url: string) => ({ url }) as Harness;

beforeAll(async () => {
  dynamo = await startDynalite();
  // crash-before/after through the proxy: kill the process that sent the call, then drop its connection.
  proxy = await startFaultProxy({ target: dynamo.endpoint, crash: async (call) => void (await byName.get(call.process)?.kill()) });
  const port = await freePort();
  publicUrl = `http://127.0.0.1:${port}`;
  const secret = randomBytes(16).toString('hex');
  op = await startOidcProvider({ host: '127.0.0.2', clientId: 'broker', clientSecret: secret, clientAuth: 'client_secret_basic', redirectUris: [`${publicUrl}/callback`] });
  const config = writeBrokerConfig({
    publicUrl,
    providers: { op: { issuer: op.issuer, clientId: 'broker', clientSecret: { value: secret }, scopes: ['openid', 'offline_access'], authorizationParams: { prompt: 'consent' } } },
    clients: { app: { type: 'native', redirectUris: [NATIVE_REDIRECT], providers: ['op'] } },
  });
  const table = `procs-${randomBytes(4).toString('hex')}`;
  // Both at once: the helper creates the table first, so their starts do not race on it.
  [b1, b2] = await Promise.all([
    startBrokerProcess({ name: 'b1', config, port, table, dynamoEndpoint: proxy.endpointFor('b1') }),
    startBrokerProcess({ name: 'b2', config, table, dynamoEndpoint: proxy.endpointFor('b2') }),
  ]);
  started.push(b1, b2);
  byName.set('b1', b1).set('b2', b2);
}, 120_000); // two cold tsx starts beside the rest of the suite
afterAll(async () => {
  await Promise.all(started.map((b) => b.kill()));
  await op?.close();
  await proxy?.close();
  await dynamo?.close();
});

const metadata = (b: BrokerProcess) => fetch(`${b.url}/.well-known/oauth-authorization-server`).then((r) => r.json() as Promise<{ issuer: string }>);

describe('broker processes for the chaos test', () => {
  it('start on their own ports, answer discovery, and reach DynamoDB through the proxy under their names', async () => {
    expect(b1.url).toBe(publicUrl);
    expect(b2.url).not.toBe(b1.url);
    expect((await metadata(b1)).issuer).toBe(publicUrl);
    expect((await metadata(b2)).issuer).toBe(publicUrl);
    const describers = new Set(proxy.calls.filter((c) => c.op === 'DescribeTable').map((c) => c.process));
    expect(describers).toEqual(new Set(['b1', 'b2']));
    // One configured key ring, not one generated per process.
    expect(b1.output() + b2.output()).not.toContain('keys.generated');
  });

  it('share sessions: logged in at b1, redeemed at b2, refreshed at b1', async () => {
    const login = await nativeLogin(at(b1.url));
    expect(login.code).toBeTruthy();
    const redeemed = await redeem(at(b2.url), login);
    expect(redeemed.status).toBe(200);
    const tokens = (await redeemed.json()) as { refresh_token: string; access_token: string };
    const refreshed = await refreshNative(at(b1.url), tokens.refresh_token);
    expect(refreshed.status).toBe(200);
    expect(((await refreshed.json()) as { access_token: string }).access_token).toBe(tokens.access_token);
    expect(proxy.calls.some((c) => c.process === 'b2' && c.op === 'UpdateItem')).toBe(true);
  });

  it('die on SIGKILL at once, and a restart on the same port serves the same sessions', async () => {
    const login = await nativeLogin(at(b1.url));
    const tokens = (await (await redeem(at(b1.url), login)).json()) as { refresh_token: string };

    const exit = await b1.kill();
    expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
    expect(b1.alive).toBe(false);
    await expect(metadata(b1)).rejects.toThrow();
    expect((await metadata(b2)).issuer).toBe(publicUrl);

    const again = await b1.restart();
    started.push(again);
    expect(again.url).toBe(b1.url);
    expect(again.pid).not.toBe(b1.pid);
    expect((await refreshNative(at(again.url), tokens.refresh_token)).status).toBe(200);
  }, 90_000); // a restart is a cold start

  it('die from the proxy\'s crash hook right after their write was applied', async () => {
    proxy.inject({ op: 'PutItem', process: 'b2', fault: 'crash-after' });
    const login = `${b2.url}/login?${new URLSearchParams({ client_id: 'app', redirect_uri: NATIVE_REDIRECT, state: 's', code_challenge: pkce().challenge, code_challenge_method: 'S256' })}`;
    await expect(fetch(login, { redirect: 'manual' })).rejects.toThrow();
    expect(await b2.exited).toEqual({ code: null, signal: 'SIGKILL' });
    expect(proxy.calls.find((c) => c.fault === 'crash-after')).toMatchObject({ process: 'b2', op: 'PutItem', reached: true, outcome: 'ok', delivered: false });
  });
});
