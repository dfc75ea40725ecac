/**
 * `npm run bench`: what the broker costs, as medians and ratios (the machine is shared and
 * noisy, so no absolute threshold is asserted anywhere).
 *
 * 1. Cold start: each function's bundle imported (and initialised) in a fresh Node process,
 *    against `node -e 0` and against a hand-written floor that only reads the same secrets
 *    (bench/procs/cold-floor.ts), run by run (bench/cold-start.ts); bundle sizes (bench/bundles.ts).
 * 2. Round trips: DynamoDB calls per operation, counted at the table.
 * 3. Hot paths: the broker against a hand-written floor, side by side, each request split into
 *    DynamoDB, provider (or API) and own time: stored refresh, upstream refresh, code redemption,
 *    (v2) proxied API call (bench/hot-paths.ts); item sizes (bench/items.ts).
 *    (v2) The API proxy in process as well: a call through `/api/...` against the same call made
 *    straight to the API with the same token; DynamoDB calls per proxied call in each session
 *    state; the session item's read-vs-write cost per million calls.
 * 4. ID token signing: CPU time of one broker ID token, RS256 against ES256, with the private
 *    key imported once and kept (what the runtime does) against imported for every token.
 * 5. The cost per million operations from the model of docs/design.md (bench/cost.ts).
 *
 * `npm run bench -- --only=cold,hot`: just those parts (cold: cold start and bundles; trips: round
 * trips; hot: hot paths and item sizes; proxy: the in-process API proxy; sign: ID token signing;
 * cost: the cost per million, which needs hot). Without it, all of them.
 *
 * Environment: BENCH_RUNS (cold starts per function, default 15), BENCH_SM_LATENCY_MS (how long
 * the Secrets Manager stand-in takes to answer during cold starts, as a network would; default 0),
 * BENCH_SAMPLES (requests per hot path and server, default 200: at 60 an upstream refresh's ratio
 * moved by 0.1 from one run to the next on a shared machine), BENCH_SIGNS (signatures per batch,
 * default 200).
 */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importJWK, SignJWT, type JWK } from 'jose';
import { parseConfig } from '../lib/config/parse.js';
import { idTokenClaims, signIdToken } from '../lib/oidc/id-token-issuer.js';
import { identityOfLogin } from '../lib/oidc/session-identity.js';
import { generateSigningGenerationSync, keyIdOf, parseSigningKeyRing, type IdTokenAlg } from '../lib/oidc/signing-key-ring.js';
import { createSigningKeys } from '../lib/oidc/signing-keys.js';
import { type AttributeValue } from '@aws-sdk/client-dynamodb';
import { clearApiAccessHints } from '../lib/broker/api-access.js';
import { fieldContext } from '../lib/broker/session-tokens.js';
import { getSession, sessionKey } from '../lib/store/sessions.js';
import { startEchoApi } from '../test/support/echo-api.js';
import { FUNCTION_NAMES } from '../functions/manifest.js';
import { DEFAULT_MEMORY_MB } from '../infra/constructs/broker-function.js';
import { browserHeaders, go, loginAtProvider, nativeLogin, redeem, refreshNative, startHarness, webLogin, jar } from '../test/support/harness.js';
import { buildAll } from '../scripts/build.js';
import { bundleRows } from './bundles.js';
import { coldStarts } from './cold-start.js';
import { ASSUMPTIONS, costPerMillion, memoryRows, operations, PRICES } from './cost.js';
import { hotPathRows, hotPaths } from './hot-paths.js';
import { writeUnits } from './items.js';
import { median } from './stats.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

/** DynamoDB calls per operation, counted at the table (the broker in process, on the test harness). */
async function roundTrips() {
  const h = await startHarness({ configure: (doc) => (doc.ttl = { minAccessTokenSeconds: 30 }) });
  let calls = 0;
  const call = h.runtime.table.call;
  (h.runtime.table as { call: typeof call }).call = ((operation, input, options) => {
    calls++;
    return call(operation, input, options);
  }) as typeof call;
  const count = async <T>(fn: () => Promise<T>): Promise<[T, number]> => {
    const before = calls;
    const out = await fn();
    return [out, calls - before];
  };
  try {
    const j = jar();
    const [start, loginCalls] = await count(() => go(j, `${h.url}/login?client_id=web&state=s`));
    const cbUrl = await loginAtProvider(j, start.headers.get('location')!, `${h.url}/callback`);
    const [, callbackCalls] = await count(() => go(j, cbUrl));
    const [, webStoredCalls] = await count(() => go(j, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders }));

    const tokens = await (await redeem(h, await nativeLogin(h))).json();
    const [stored, storedCalls] = await count(() => refreshNative(h, tokens.refresh_token));
    h.clockOffset += 300;
    const [, upstreamCalls] = await count(async () => {
      const res = await refreshNative(h, (await stored.json()).refresh_token);
      if (res.headers.get('x-broker-token-source') !== 'upstream') throw new Error(`not an upstream refresh: ${res.status} ${await res.text()}`);
    });
    const web = await webLogin(h);
    const [, sessionCalls] = await count(() => go(web.jar, `${h.url}/session`));
    const [, logoutCalls] = await count(() => go(web.jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders }));
    // (v2) The code exchange of an openid login (ID token with the app's nonce), and /end-session.
    h.clockOffset = 0;
    const login = await nativeLogin(h, { extra: { scope: 'openid profile', nonce: 'n' } });
    const [codeRes, codeCalls] = await count(() => redeem(h, login));
    const { id_token: idToken } = await codeRes.json();
    const [, endSessionCalls] = await count(() => fetch(`${h.url}/end-session?id_token_hint=${idToken}`, { redirect: 'manual' }));
    const [, metadataCalls] = await count(async () => {
      await fetch(`${h.url}/.well-known/openid-configuration`);
      await fetch(`${h.url}/jwks`);
    });
    return {
      calls: [
        { operation: 'GET /login', dynamodb: loginCalls },
        { operation: 'GET /callback (web)', dynamodb: callbackCalls },
        { operation: 'POST /refresh, stored token', dynamodb: webStoredCalls },
        { operation: 'POST /token refresh, stored token', dynamodb: storedCalls },
        { operation: 'POST /token refresh, upstream', dynamodb: upstreamCalls },
        { operation: 'POST /token code exchange (openid, with ID token)', dynamodb: codeCalls },
        { operation: 'GET /session', dynamodb: sessionCalls },
        { operation: 'POST /logout (web)', dynamodb: logoutCalls },
        { operation: 'GET /end-session', dynamodb: endSessionCalls },
        { operation: 'GET discovery + /jwks', dynamodb: metadataCalls },
      ],
    };
  } finally {
    await h.close();
  }
}

/** Microseconds per ID token: the median of batches, each timed as a whole. */
async function signing(perBatch: number, batches: number) {
  const ring = parseSigningKeyRing(JSON.stringify({ current: 'g', keys: generateSigningGenerationSync('g') }));
  const config = parseConfig({
    publicUrl: 'https://auth.example.com',
    providers: { op: { issuer: 'https://op.example.com', clientId: 'c', clientSecret: { value: 's' } } },
    clients: { app: { type: 'native', redirectUris: ['com.example.app:/cb'], providers: ['op'] } },
  }, { runtime: 'local' });
  const identity = identityOfLogin(['openid', 'profile', 'email'], 'n', {
    sub: 'user-1234', auth_time: 1_767_225_600, sid: 'idp-session', name: 'Alice Example', given_name: 'Alice', family_name: 'Example', email: 'alice@example.com', email_verified: true,
  }, 1_767_225_600);
  const claims = idTokenClaims({ config, client: config.clients['app']!, provider: config.providers['op']!, sid: 'AAAAAAAAAAAAAAAAAAAAAA', identity, now: 1_767_225_700, nonce: 'n' })!;
  const rows = [];
  for (const alg of ['RS256', 'ES256'] as IdTokenAlg[]) {
    const keys = createSigningKeys(ring);
    await signIdToken(keys, alg, claims); // the one import, at init in Lambda
    const jwk = ring.keys.get(keyIdOf('g', alg))!.jwk as JWK;
    const time = async (sign: () => Promise<string>) => {
      const per: number[] = [];
      for (let b = 0; b < batches; b++) {
        const t = performance.now();
        for (let i = 0; i < perBatch; i++) await sign();
        per.push(((performance.now() - t) * 1000) / perBatch);
      }
      return median(per);
    };
    const cached = await time(() => signIdToken(keys, alg, claims));
    const joseKey = await importJWK(jwk, alg);
    const jose = await time(() => new SignJWT({ ...claims }).setProtectedHeader({ alg, kid: 'g' }).sign(joseKey));
    const uncached = await time(async () => new SignJWT({ ...claims }).setProtectedHeader({ alg, kid: 'g' }).sign(await importJWK(jwk, alg)));
    rows.push({
      alg,
      'broker (node:crypto, key kept) µs': Math.round(cached),
      'jose (WebCrypto, key kept) µs': Math.round(jose),
      'jose, key imported per token µs': Math.round(uncached),
      'jose kept / broker': Number((jose / cached).toFixed(2)),
    });
  }
  return rows;
}

/**
 * DynamoDB on-demand prices, USD per million request units (us-east-1, since November 2024). A
 * strongly consistent read takes 1 read unit per 4 KB of item; a write 1 write unit per 1 KB of
 * the larger of the item before and after.
 */
const PRICE_PER_MILLION_READ_UNITS = 0.125;
const PRICE_PER_MILLION_WRITE_UNITS = 0.625;

/** An item's size as DynamoDB bills it: attribute names and values (strings UTF-8, numbers ~1 byte per 2 digits + 1). */
function itemBytes(item: Record<string, AttributeValue>): number {
  let n = 0;
  for (const [name, value] of Object.entries(item)) {
    n += Buffer.byteLength(name);
    if (value.S !== undefined) n += Buffer.byteLength(value.S);
    else if (value.N !== undefined) n += Math.ceil(value.N.replace(/^-/, '').replace('.', '').length / 2) + 1;
  }
  return n;
}

async function apiProxy(samples: number) {
  const api = await startEchoApi();
  const h = await startHarness({
    op: { jwtAccessTokens: true },
    configure: (doc) => {
      // A 600 s idle time: proxied calls move the idle expiry at most every 60 s (300 s at the default 14 days).
      doc.ttl = { sessionIdleSeconds: 600 };
      doc.apis = { echo: { url: `${api.url}/v1`, provider: 'op' } };
      doc.clients.web.apis = ['echo'];
      doc.clients.web.tokenDelivery = 'proxy';
    },
  });
  api.trust(h.op.issuer);
  const commands: string[] = [];
  const call = h.runtime.table.call;
  (h.runtime.table as { call: typeof call }).call = ((operation, input, options) => {
    commands.push(operation);
    return call(operation, input, options);
  }) as typeof call;
  const calls = async (fn: () => Promise<unknown>) => {
    const before = commands.length;
    await fn();
    return commands.slice(before).join(' + ') || 'none';
  };
  try {
    const { jar: j } = await webLogin(h);
    const sid = j.get('broker-session')!.split('.')[0]!;
    const stored = (await getSession(h.runtime.table, sid))!;
    const token = await (await h.runtime.cipher()).decrypt(stored.accessToken, fieldContext(sid, 'accessToken'));
    const direct = () => fetch(`${api.url}/v1/things/1?x=1`, { headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }).then((r) => r.arrayBuffer());
    const proxied = () => go(j, `${h.url}/api/echo/things/1?x=1`, { headers: { ...browserHeaders, accept: 'application/json' } }).then((r) => r.arrayBuffer());
    // Warm both paths (connections, JWKS, key ring), then interleave them so both see the same machine.
    for (let i = 0; i < 5; i++) await Promise.all([direct(), proxied()]);
    const logsBefore = h.logs.length;
    const directMs: number[] = [];
    const proxiedMs: number[] = [];
    for (let i = 0; i < samples; i++) {
      let t = performance.now();
      await direct();
      directMs.push(performance.now() - t);
      t = performance.now();
      await proxied();
      proxiedMs.push(performance.now() - t);
    }
    const own = h.logs.slice(logsBefore).filter((l) => l.includes('"event":"proxy.call"')).map((l) => JSON.parse(l).ApiProxyLatency as number);

    // DynamoDB calls per proxied call, in each state of the session.
    clearApiAccessHints();
    const rows = [{ 'proxied call': 'first call of a container, token fresh, idle not due', dynamodb: await calls(proxied) }];
    rows.push({ 'proxied call': 'token fresh, idle not due', dynamodb: await calls(proxied) });
    h.clockOffset = 61;
    rows.push({ 'proxied call': 'token fresh, idle expiry due to move (every 60 s here)', dynamodb: await calls(proxied) });
    h.clockOffset = 290;
    rows.push({ 'proxied call': 'token due: upstream refresh', dynamodb: await calls(proxied) });
    api.revoked.add((await (await go(j, `${h.url}/api/echo/x`, { headers: browserHeaders })).json()).token.jti);
    rows.push({ 'proxied call': 'the API answers 401 (token marked spent)', dynamodb: await calls(proxied) });
    rows.push({ 'proxied call': 'the call after a 401: upstream refresh', dynamodb: await calls(proxied) });
    h.clockOffset = 0;

    const raw = await call('GetItem', { TableName: h.runtime.table.name, Key: { pk: { S: sessionKey(sid) } }, ConsistentRead: true });
    const bytes = itemBytes(raw.Item!);
    const readUnits = Math.ceil(bytes / 4096);
    const writeUnits = Math.ceil(bytes / 1024);
    const perMillionRead = readUnits * PRICE_PER_MILLION_READ_UNITS;
    const perMillionWrite = writeUnits * PRICE_PER_MILLION_WRITE_UNITS;
    return {
      latency: {
        'direct ms (median)': Number(median(directMs).toFixed(2)),
        'proxied ms (median)': Number(median(proxiedMs).toFixed(2)),
        'difference ms': Number((median(proxiedMs) - median(directMs)).toFixed(2)),
        'broker own ms, logged (median)': median(own),
      },
      calls: rows,
      cost: {
        'session item bytes': bytes,
        'consistent GetItem: read units': readUnits,
        'UpdateItem: write units': writeUnits,
        'USD per million proxied calls, a read each': Number(perMillionRead.toFixed(3)),
        'USD per million proxied calls, a write each': Number(perMillionWrite.toFixed(3)),
        'write / read': Number((perMillionWrite / perMillionRead).toFixed(1)),
      },
    };
  } finally {
    await h.close();
    await api.close();
  }
}

const PARTS = ['cold', 'trips', 'hot', 'proxy', 'sign', 'cost'] as const;
const onlyArg = process.argv.slice(2).find((a) => a.startsWith('--only='));
const only = new Set(onlyArg ? onlyArg.slice('--only='.length).split(',') : PARTS);
for (const part of only) if (!(PARTS as readonly string[]).includes(part)) throw new TypeError(`--only: unknown part ${part} (one of ${PARTS.join(', ')})`);
if (only.has('cost')) only.add('hot');
console.log(`load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}, ${os.cpus().length} CPUs, ${new Date().toISOString()}`);

// Both the cold starts and the hot paths run the bundles as they deploy (infra/bundle.ts).
if (only.has('cold') || only.has('hot')) buildAll(root);
if (only.has('cold')) {
  const runs = Number(process.env['BENCH_RUNS'] ?? 15);
  console.log(`cold start: ${runs} fresh processes per function, each paired with \`node -e 0\` (whole process, spawn to exit)`);
  console.table(await coldStarts(root, FUNCTION_NAMES, runs, { latencyMs: Number(process.env['BENCH_SM_LATENCY_MS'] ?? 0) }));
  console.log('bundles');
  console.table(bundleRows(root, FUNCTION_NAMES));
}
if (only.has('trips')) {
  const rt = await roundTrips();
  console.log('DynamoDB calls per operation');
  console.table(rt.calls);
}
if (only.has('hot')) {
  const samples = Number(process.env['BENCH_SAMPLES'] ?? 200);
  const hot = await hotPaths(samples);
  console.log(`hot paths: broker and floor side by side, ${samples} requests each, alternating (ms; own = total - DynamoDB - provider)`);
  console.table(hotPathRows(hot));
  console.log('item sizes (bytes, as DynamoDB counts them) and write units per write; with `storage.ciphertexts: "compact"`, the same items as that setting writes them');
  console.table(Object.entries(hot.items).map(([item, bytes]) => ({
    item, bytes, 'write units': writeUnits(bytes), 'bytes, compact': hot.compactItems[item], 'write units, compact': writeUnits(hot.compactItems[item]!),
  })));
  if (only.has('cost')) {
    const measured = {
      cpu: { stored: hot.cpu['stored refresh'].broker, upstream: hot.cpu['upstream refresh'].broker, redemption: hot.cpu['code redemption'].broker, login: hot.login.cpu, proxied: hot.cpu['proxied API call'].broker },
      logBytes: { stored: hot.logBytes['stored refresh'], upstream: hot.logBytes['upstream refresh'], redemption: hot.logBytes['code redemption'], login: hot.login.logBytes, proxied: hot.logBytes['proxied API call'] },
    };
    const ops = operations({ items: hot.items, ...measured });
    // Only the write units differ with compact ciphertexts: a row for each operation whose cost they change.
    const compactOps = operations({ items: hot.compactItems, ...measured })
      .filter((op, i) => op.writeUnits !== ops[i]!.writeUnits || op.readUnits !== ops[i]!.readUnits)
      .map((op) => ({ ...op, name: `${op.name}, compact ciphertexts` }));
    console.log(`cost per million operations at ${DEFAULT_MEMORY_MB} MB, arm64 (${PRICES.asOf}; assumed: DynamoDB ${ASSUMPTIONS.dynamoMs} ms a call, provider ${ASSUMPTIONS.providerMs} ms, API ${ASSUMPTIONS.apiMs} ms)`);
    console.table([...ops, ...compactOps].map((op) => costPerMillion(op, DEFAULT_MEMORY_MB)));
    console.log('billed ms and $ per million by memory size');
    console.table(memoryRows(ops));
  }
}
if (only.has('proxy')) {
  const proxy = await apiProxy(Number(process.env['BENCH_PROXY_SAMPLES'] ?? 60));
  console.log('(v2) API proxy over loopback, in process: the same call straight to the API and through the broker, same token, interleaved');
  console.table([proxy.latency]);
  console.log('(v2) DynamoDB calls per proxied call');
  console.table(proxy.calls);
  console.log('(v2) the session item and DynamoDB on-demand cost per million proxied calls (token fresh)');
  console.table([proxy.cost]);
}
if (only.has('sign')) {
  console.log('ID token signing (one broker ID token, CPU on this machine)');
  console.table(await signing(Number(process.env['BENCH_SIGNS'] ?? 200), 15));
}
process.exit(0);
