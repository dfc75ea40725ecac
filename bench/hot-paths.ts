/**
 * The hot paths side by side: the broker as it ships (bundles behind the local adapter) and the
 * floor (bench/procs/floor.ts), each in its own process, against one dynalite and one
 * oidc-provider, each in a process of its own that times every request it answers. Samples
 * alternate broker and floor, one request at a time, so both see the same machine at the same
 * moment; each sample is split into time inside DynamoDB (dynalite's own clock, summed over the
 * sample's calls), time inside the provider's token endpoint, and the rest: the server's own time
 * (its CPU, plus loopback hops, which both pay alike).
 *
 * Paths: a refresh served from the stored token (1 UpdateItem), an upstream refresh (2 UpdateItems
 * and the provider's refresh grant; the bench marks the stored token stale before each sample, as
 * time would), a native code redemption with `openid` (1 UpdateItem and an RS256 ID token), and
 * (v2) a proxied API call of a web session in proxy mode with a fresh token (1 consistent GetItem
 * and the API's answer; the API is a bare server in its own process, bench/procs/api.ts, whose
 * time is in the "provider" column of that path).
 */
import { createHash, generateKeyPairSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import path from 'node:path';
import type { AttributeValue } from '@aws-sdk/client-dynamodb';
import { GetItemCommand, PutItemCommand, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import { generateKeyRingText } from '../lib/crypto/key-ring.js';
import { generateSigningGenerationSync } from '../lib/oidc/signing-key-ring.js';
import { ensureTable, localDynamoClient } from '../local/dynamo.js';
import { browserHeaders, freePort, go, jar, loginAtProvider, nativeLogin, NATIVE_REDIRECT, pkce, WEB_ORIGIN, WEB_REDIRECT, webLogin, type Harness, type NativeLogin } from '../test/support/harness.js';
import { floorKey, seal, type FloorSettings } from './floor-kit.js';
import { startChild, type Child } from './procs/child.js';
import { itemSize, withCompactCiphertexts, type Item } from './items.js';
import { median, percentile, round, sum } from './stats.js';

const here = import.meta.dirname;
const PATHS = ['stored refresh', 'upstream refresh', 'code redemption', 'proxied API call'] as const;
export type HotPath = (typeof PATHS)[number];
type Server = 'broker' | 'floor';

export interface Sample {
  readonly total: number;
  readonly dynamo: number;
  readonly dynamoCalls: number;
  readonly provider: number;
  readonly own: number;
}

export interface HotPathResult {
  readonly samples: Record<HotPath, Record<Server, Sample[]>>;
  /** CPU milliseconds of each server process per request, over the sampled requests. */
  readonly cpu: Record<HotPath, Record<Server, number>>;
  /** Bytes of log lines the broker wrote per request. */
  readonly logBytes: Record<HotPath, number>;
  /** The broker's items, as stored after each step (DynamoDB's size rules: bench/items.ts). */
  readonly items: Record<string, number>;
  /** The same items as `storage.ciphertexts: "compact"` writes them (bench/items.ts, `withCompactCiphertexts`). */
  readonly compactItems: Record<string, number>;
  /** A native login at the broker (`/login`, then `/callback` once the provider is done): per login. */
  readonly login: { cpu: number; logBytes: number; dynamoCalls: number; providerCalls: number };
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One form POST over a keep-alive connection: status, headers and body, and the wall time. */
function post(url: string, fields: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; ms: number }> {
  const body = new URLSearchParams(fields).toString();
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** One GET over the same keep-alive agent, with the given headers. */
function get(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = http.request(url, { method: 'GET', agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end();
  });
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

export async function hotPaths(samples: number): Promise<HotPathResult> {
  const dynamo = await startChild(path.join(here, 'procs/dynalite.ts'));
  const endpoint = String(dynamo.ready['endpoint']);
  const ddb = localDynamoClient(endpoint);
  await ensureTable(ddb, 'broker');
  await ensureTable(ddb, 'floor');

  const brokerPort = await freePort();
  const brokerUrl = `http://127.0.0.1:${brokerPort}`;
  const secret = randomBytes(12).toString('hex');
  const provider = await startChild(path.join(here, 'procs/provider.ts'), {
    BENCH_PROVIDER: JSON.stringify({ host: '127.0.0.2', clientId: 'broker', clientSecret: secret, clientAuth: 'client_secret_basic', redirectUris: [`${brokerUrl}/callback`], accessTokenSeconds: 300 }),
  });
  const issuer = String(provider.ready['issuer']);
  const api = await startChild(path.join(here, 'procs/api.ts'));
  const apiUrl = `${String(api.ready['url'])}/v1`;
  const config = {
    publicUrl: brokerUrl,
    providers: { op: { issuer, clientId: 'broker', clientSecret: { value: secret }, clientAuth: 'client_secret_basic', scopes: ['openid', 'profile', 'offline_access'], authorizationParams: { prompt: 'consent' } } },
    apis: { echo: { url: apiUrl, provider: 'op' } },
    clients: {
      app: { type: 'native', redirectUris: [NATIVE_REDIRECT], providers: ['op'] },
      web: { type: 'web', redirectUris: [WEB_REDIRECT], allowedOrigins: [WEB_ORIGIN], providers: ['op'], apis: ['echo'], tokenDelivery: 'proxy' },
    },
    tokenEncryptionKeys: { value: generateKeyRingText() },
    signingKeys: { value: JSON.stringify({ current: 's1', keys: generateSigningGenerationSync('s1') }) },
  };
  const broker = await startChild(path.join(here, 'procs/broker.ts'), {
    BROKER_CONFIG_JSON: JSON.stringify(config), DYNAMODB_ENDPOINT: endpoint, DYNAMODB_TABLE: 'broker', PORT: String(brokerPort), LOG_LEVEL: 'info',
  });
  const floorSettings: FloorSettings = {
    endpoint, table: 'floor', tokenEndpoint: `${issuer}/token`, jwksUri: `${issuer}/jwks`, issuer, clientId: 'broker', clientSecret: secret,
    selfIssuer: 'http://floor.example', key: randomBytes(32).toString('base64url'),
    signingKey: generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    idleSeconds: 1_209_600, minAccessTokenSeconds: 60, apiUrl,
  };
  const floor = await startChild(path.join(here, 'procs/floor.ts'), { BENCH_FLOOR: JSON.stringify(floorSettings) });
  const floorUrl = String(floor.ready['url']);
  const floorKeyBytes = Buffer.from(floorSettings.key, 'base64url');
  const children = [floor, broker, api, provider, dynamo];

  /** The broker's items as stored, by the step after which each was read. */
  const stored: Record<string, Item> = {};
  const items: Record<string, number> = {};
  const compactItems: Record<string, number> = {};
  const getItem = async (table: string, pk: string): Promise<Item> => (await ddb.send(new GetItemCommand({ TableName: table, Key: { pk: { S: pk } }, ConsistentRead: true }))).Item as Item;
  const markStale = (table: string, pk: string) => ddb.send(new UpdateItemCommand({
    TableName: table, Key: { pk: { S: pk } }, UpdateExpression: 'SET atExpiresAt = :t', ExpressionAttributeValues: { ':t': { N: String(Math.floor(Date.now() / 1000) + 5) } },
  }));
  const h = { url: brokerUrl } as Harness;

  /** Provider tokens for the floor, by a code flow of the bench's own (the provider redirects to the broker's URL, never reached). */
  const providerTokens = async () => {
    const j = jar();
    const { verifier, challenge } = pkce();
    const authorize = `${issuer}/auth?${new URLSearchParams({ client_id: 'broker', response_type: 'code', redirect_uri: `${brokerUrl}/callback`, scope: 'openid profile offline_access', prompt: 'consent', state: 's', nonce: 'n', code_challenge: challenge, code_challenge_method: 'S256' })}`;
    const cb = new URL(await loginAtProvider(j, authorize, `${brokerUrl}/callback`));
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`broker:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: cb.searchParams.get('code')!, redirect_uri: `${brokerUrl}/callback`, code_verifier: verifier }),
    });
    return (await res.json()) as { access_token: string; refresh_token: string; id_token: string; expires_in: number };
  };
  /** A floor session, seeded as the floor's own login would have left it; with `withCode`, unredeemed. */
  const seedFloor = async (withCode = false) => {
    const tokens = await providerTokens();
    const sid = randomBytes(16).toString('base64url');
    const pk = floorKey(sid);
    const now = Math.floor(Date.now() / 1000);
    const handle = `${sid}.${randomBytes(32).toString('base64url')}`;
    const code = `${sid}.${randomBytes(32).toString('base64url')}`;
    const { verifier } = pkce();
    const sub = JSON.parse(Buffer.from(tokens.id_token.split('.')[1]!, 'base64url').toString('utf8')).sub as string;
    const item: Record<string, AttributeValue> = {
      pk: { S: pk }, clientId: { S: 'app' }, sub: { S: sub },
      hardExpiresAt: { N: String(now + 86_400) }, idleExpiresAt: { N: String(now + 1_209_600) }, atExpiresAt: { N: String(now + tokens.expires_in) },
      accessToken: { S: seal(floorKeyBytes, tokens.access_token, `${pk}#accessToken`) },
      refreshToken: { S: seal(floorKeyBytes, tokens.refresh_token, `${pk}#refreshToken`) },
      idToken: { S: seal(floorKeyBytes, tokens.id_token, `${pk}#idToken`) },
      identity: { S: seal(floorKeyBytes, JSON.stringify({ sub, auth_time: now, nonce: 'n', name: 'Alice Example' }), `${pk}#identity`) },
      ...(withCode
        ? { codeHash: { S: sha256(code) }, codeExpiresAt: { N: String(now + 60) }, codeRedirectUri: { S: NATIVE_REDIRECT }, codeChallenge: { S: sha256(verifier) } }
        : { handleHash: { S: sha256(handle) } }),
    };
    await ddb.send(new PutItemCommand({ TableName: 'floor', Item: item }));
    return { sid, handle, code, verifier };
  };

  // The API's time counts as the provider's: the other party the request waits on.
  const take = async () => {
    const [d, p, a] = await Promise.all(['take', 'take', 'take'].map((k, i) => [dynamo, provider, api][i]!.ask<{ timings: { ms: number }[] }>(k)));
    return { dynamo: d!.timings.map((t) => t.ms), provider: [...p!.timings, ...a!.timings].map((t) => t.ms) };
  };
  const timed = async (send: () => Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string; ms: number }>, expect: (r: { status: number; headers: http.IncomingHttpHeaders; body: string }) => void): Promise<[Sample, string]> => {
    await take();
    const res = await send();
    const t = await take();
    expect(res);
    const dynamoMs = sum(t.dynamo);
    const providerMs = sum(t.provider);
    return [{ total: res.ms, dynamo: dynamoMs, dynamoCalls: t.dynamo.length, provider: providerMs, own: res.ms - dynamoMs - providerMs }, res.body];
  };
  const ok = (source?: string) => (r: { status: number; headers: http.IncomingHttpHeaders; body: string }) => {
    if (r.status !== 200) throw new Error(`answered ${r.status}: ${r.body}`);
    if (source && r.headers['x-broker-token-source'] !== undefined && r.headers['x-broker-token-source'] !== source) throw new Error(`served from ${String(r.headers['x-broker-token-source'])}, not ${source}`);
  };

  const result: HotPathResult = {
    samples: Object.fromEntries(PATHS.map((p) => [p, { broker: [], floor: [] }])) as unknown as HotPathResult['samples'],
    cpu: Object.fromEntries(PATHS.map((p) => [p, { broker: 0, floor: 0 }])) as unknown as HotPathResult['cpu'],
    logBytes: Object.fromEntries(PATHS.map((p) => [p, 0])) as Record<HotPath, number>,
    items,
    compactItems,
    login: { cpu: 0, logBytes: 0, dynamoCalls: 0, providerCalls: 0 },
  };
  const cpuOf = async (c: Child) => {
    const u = await c.ask<{ user: number; system: number }>('cpu');
    return (u.user + u.system) / 1000;
  };

  try {
    // Sessions: the broker's through its own login; the floor's seeded.
    const login = await nativeLogin(h);
    const sidOf = (value: string) => value.split('.')[0]!;
    stored['session, native, before redemption'] = await getItem('broker', `session#${sidOf(login.code)}`);
    const redeemed = await post(`${brokerUrl}/token`, { grant_type: 'authorization_code', code: login.code, code_verifier: login.verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT });
    let brokerHandle = (JSON.parse(redeemed.body) as { refresh_token: string }).refresh_token;
    const brokerPk = `session#${sidOf(brokerHandle)}`;
    stored['session, native, after redemption'] = await getItem('broker', brokerPk);
    const seeded = await seedFloor();
    let floorHandle = seeded.handle;

    const refreshBroker = async (source: string) => {
      const [sample, body] = await timed(() => post(`${brokerUrl}/token`, { grant_type: 'refresh_token', refresh_token: brokerHandle, client_id: 'app' }), ok(source));
      brokerHandle = (JSON.parse(body) as { refresh_token: string }).refresh_token;
      return sample;
    };
    const refreshFloor = async () => {
      const [sample, body] = await timed(() => post(`${floorUrl}/token`, { grant_type: 'refresh_token', refresh_token: floorHandle, client_id: 'app' }), ok());
      floorHandle = (JSON.parse(body) as { refresh_token: string }).refresh_token;
      return sample;
    };
    /** Unrecorded pairs before a path's samples: `BENCH_WARMUP` when set, else `fallback`. */
    const warmups = (fallback: number) => Number(process.env['BENCH_WARMUP'] ?? fallback);
    /** Runs `n` pairs (the order alternating), after `warmup` unrecorded ones; records CPU and log bytes per request. */
    const pairs = async (pathName: HotPath, n: number, warmup: number, one: (server: Server) => Promise<Sample>) => {
      for (let i = 0; i < warmup; i++) {
        await one('broker');
        await one('floor');
      }
      const [b0, f0, logs0] = [await cpuOf(broker), await cpuOf(floor), broker.stdoutBytes()];
      for (let i = 0; i < n; i++) {
        for (const server of (i % 2 ? ['floor', 'broker'] : ['broker', 'floor']) as Server[]) result.samples[pathName][server].push(await one(server));
      }
      await new Promise((r) => setTimeout(r, 100)); // the last log lines through the pipe
      result.cpu[pathName] = { broker: ((await cpuOf(broker)) - b0) / n, floor: ((await cpuOf(floor)) - f0) / n };
      result.logBytes[pathName] = (broker.stdoutBytes() - logs0) / n;
    };

    await pairs('stored refresh', samples, warmups(100), (server) => (server === 'broker' ? refreshBroker('stored') : refreshFloor()));
    const afterStored = await getItem('broker', brokerPk);
    stored['session, native, after a stored refresh'] = afterStored;

    await pairs('upstream refresh', samples, warmups(60), async (server) => {
      await markStale(server, server === 'broker' ? brokerPk : floorKey(seeded.sid));
      return server === 'broker' ? refreshBroker('upstream') : refreshFloor();
    });
    const refreshed = await getItem('broker', brokerPk);
    stored['session, native, after an upstream refresh'] = refreshed;
    // What sessions carry from their first upstream refresh past the code's replay window on
    // (the lease holder drops the code's fields then; this bench runs inside that window).
    const steady = (item: Item): Item => Object.fromEntries(Object.entries(item).filter(([name]) => !name.startsWith('code')));
    stored['steady session (no code fields), after a stored refresh'] = steady(afterStored);
    stored['steady session (no code fields), after an upstream refresh'] = steady(refreshed);

    // Code redemptions, in batches (codes live 60 s): the logins first, then the timed redemptions.
    const redeemAt = async (url: string, code: string, verifier: string) =>
      (await timed(() => post(`${url}/token`, { grant_type: 'authorization_code', code, code_verifier: verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT }), ok('stored')))[0];
    const warm = 5;
    let cpu = { broker: 0, floor: 0 };
    let logs = 0;
    for (let done = -warm; done < samples;) {
      const size = done < 0 ? warm : Math.min(10, samples - done);
      const logins: NativeLogin[] = [];
      const floorCodes: { code: string; verifier: string }[] = [];
      for (let k = 0; k < size; k++) {
        // The broker's share of a login: its CPU, its log lines and its calls, while the provider's pages are walked.
        await take();
        const [c0, l0] = [await cpuOf(broker), broker.stdoutBytes()];
        logins.push(await nativeLogin(h, { extra: { scope: 'openid profile', nonce: 'n' } }));
        await new Promise((r) => setTimeout(r, 20));
        const t = await take();
        if (done >= 0) {
          const n = samples;
          result.login.cpu += ((await cpuOf(broker)) - c0) / n;
          result.login.logBytes += (broker.stdoutBytes() - l0) / n;
          result.login.dynamoCalls += t.dynamo.length / n;
          result.login.providerCalls += t.provider.length / n;
        }
        floorCodes.push(await seedFloor(true));
      }
      // Let the provider and dynalite settle after the logins before the timed redemptions.
      await new Promise((r) => setTimeout(r, 200));
      if (done < 0) stored['session, native with openid, before redemption'] = await getItem('broker', `session#${sidOf(logins[0]!.code)}`);
      const before = { broker: await cpuOf(broker), floor: await cpuOf(floor), logs: broker.stdoutBytes() };
      for (let k = 0; k < size; k++) {
        for (const server of (k % 2 ? ['floor', 'broker'] : ['broker', 'floor']) as Server[]) {
          const sample = server === 'broker' ? await redeemAt(brokerUrl, logins[k]!.code, logins[k]!.verifier) : await redeemAt(floorUrl, floorCodes[k]!.code, floorCodes[k]!.verifier);
          if (done >= 0) result.samples['code redemption'][server].push(sample);
        }
      }
      await new Promise((r) => setTimeout(r, 100));
      if (done >= 0) {
        cpu = { broker: cpu.broker + (await cpuOf(broker)) - before.broker, floor: cpu.floor + (await cpuOf(floor)) - before.floor };
        logs += broker.stdoutBytes() - before.logs;
      } else {
        stored['session, native with openid, after redemption'] = await getItem('broker', `session#${sidOf(logins[0]!.code)}`);
      }
      done += size;
    }
    result.cpu['code redemption'] = { broker: cpu.broker / samples, floor: cpu.floor / samples };
    result.logBytes['code redemption'] = logs / samples;

    // (v2) Proxied API calls: a web session in proxy mode at the broker, one seeded at the floor,
    // the token fresh in both (the API answers 200 in both; the broker's idle expiry moves at most
    // every 300 s, so a call is one consistent GetItem).
    const web = await webLogin(h);
    const brokerCookie = `broker-session=${web.jar.get('broker-session')!}`;
    stored['session, web (proxy mode)'] = await getItem('broker', `session#${web.jar.get('broker-session')!.split('.')[0]!}`);
    const floorWeb = await (async () => {
      const tokens = await providerTokens();
      const sid = randomBytes(16).toString('base64url');
      const pk = floorKey(sid);
      const now = Math.floor(Date.now() / 1000);
      const cookie = `${sid}.${randomBytes(32).toString('base64url')}`;
      await ddb.send(new PutItemCommand({
        TableName: 'floor',
        Item: {
          pk: { S: pk }, clientId: { S: 'web' }, cookieHash: { S: sha256(cookie) },
          hardExpiresAt: { N: String(now + 86_400) }, idleExpiresAt: { N: String(now + 1_209_600) }, atExpiresAt: { N: String(now + tokens.expires_in) },
          accessToken: { S: seal(floorKeyBytes, tokens.access_token, `${pk}#accessToken`) },
          refreshToken: { S: seal(floorKeyBytes, tokens.refresh_token, `${pk}#refreshToken`) },
        },
      }));
      return `floor-session=${cookie}`;
    })();
    const apiHeaders = { ...browserHeaders, accept: 'application/json' };
    const proxiedOk = (r: { status: number; body: string }) => {
      if (r.status !== 200 || !(JSON.parse(r.body) as { bearer?: boolean }).bearer) throw new Error(`proxied call answered ${r.status}: ${r.body.slice(0, 200)}`);
    };
    await pairs('proxied API call', samples, warmups(100), async (server) => (await timed(
      () => get(`${server === 'broker' ? brokerUrl : floorUrl}/api/echo/things/1?x=1`, { ...apiHeaders, cookie: server === 'broker' ? brokerCookie : floorWeb }),
      proxiedOk,
    ))[0]);

    // A login in progress: the login item, keyed by the hash of the broker's state.
    const j = jar();
    const { challenge } = pkce();
    const start = await go(j, `${brokerUrl}/login?${new URLSearchParams({ client_id: 'app', redirect_uri: NATIVE_REDIRECT, state: 'app-state', code_challenge: challenge, code_challenge_method: 'S256' })}`);
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    stored['login in progress'] = await getItem('broker', `login#${sha256(state)}`);
    for (const [name, item] of Object.entries(stored)) {
      items[name] = itemSize(item);
      compactItems[name] = itemSize(withCompactCiphertexts(item));
    }
    return result;
  } finally {
    for (const c of children) await c.stop();
  }

}

/** The table of the hot paths: medians per server and path, and the ratio of own times. */
export function hotPathRows(r: HotPathResult): Record<string, string | number>[] {
  const rows: Record<string, string | number>[] = [];
  for (const p of PATHS) {
    for (const server of ['floor', 'broker'] as Server[]) {
      const s = r.samples[p][server];
      rows.push({
        path: p,
        server,
        'total ms p50': round(median(s.map((x) => x.total)), 2),
        'total ms p90': round(percentile(s.map((x) => x.total), 90), 2),
        'DynamoDB ms p50': round(median(s.map((x) => x.dynamo)), 2),
        'DynamoDB calls': median(s.map((x) => x.dynamoCalls)),
        'provider ms p50': round(median(s.map((x) => x.provider)), 2),
        'own ms p50': round(median(s.map((x) => x.own)), 2),
        'CPU ms/request': round(r.cpu[p][server], 2),
        'own broker/floor': server === 'broker' ? round(median(s.map((x) => x.own)) / median(r.samples[p].floor.map((x) => x.own)), 2) : '',
      });
    }
  }
  return rows;
}
