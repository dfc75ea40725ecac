/**
 * `npm run bench`: what the broker costs, as medians and ratios (the machine is shared and
 * noisy, so no absolute threshold is asserted anywhere).
 *
 * 1. Cold start: each function's bundle imported in a fresh Node process (config parsed,
 *    clients built), median of N runs, beside the bundle size.
 * 2. Round trips: DynamoDB calls per operation, counted at the table, and the median latency of
 *    a refresh served from the stored token against one that goes upstream.
 * 3. ID token signing: CPU time of one broker ID token, RS256 against ES256, with the private
 *    key imported once and kept (what the runtime does) against imported for every token.
 * 4. (v2) The API proxy: a call through `/api/...` against the same call made straight to the
 *    API with the same token, medians side by side in one run, and the broker's own time per call
 *    as it logs it; DynamoDB calls per proxied call; the stored session item's size and what a
 *    read instead of a write costs per million calls at DynamoDB's on-demand prices.
 */
import { execFileSync, spawn } from 'node:child_process';
import { statSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importJWK, SignJWT, type JWK } from 'jose';
import { parseConfig } from '../lib/config/parse.js';
import { idTokenClaims, signIdToken } from '../lib/oidc/id-token-issuer.js';
import { identityOfLogin } from '../lib/oidc/session-identity.js';
import { generateSigningGenerationSync, keyIdOf, parseSigningKeyRing, type IdTokenAlg } from '../lib/oidc/signing-key-ring.js';
import { createSigningKeys } from '../lib/oidc/signing-keys.js';
import { GetItemCommand, type AttributeValue } from '@aws-sdk/client-dynamodb';
import { clearApiAccessHints } from '../lib/broker/api-access.js';
import { fieldContext } from '../lib/broker/session-tokens.js';
import { getSession, sessionKey } from '../lib/store/sessions.js';
import { startEchoApi } from '../test/support/echo-api.js';
import { browserHeaders, go, loginAtProvider, nativeLogin, redeem, refreshNative, startHarness, webLogin, jar } from '../test/support/harness.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

/**
 * A stand-in for Secrets Manager's GetSecretValue on loopback: the functions read their key rings
 * during init, as in Lambda, so a cold start includes those reads (over loopback here).
 */
async function fakeSecretsManager(secrets: Record<string, string>): Promise<{ url: string; close(): void }> {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const id = (JSON.parse(body || '{}') as { SecretId?: string }).SecretId ?? '';
      const value = secrets[id];
      res.writeHead(value === undefined ? 400 : 200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(value === undefined ? { __type: 'ResourceNotFoundException' } : { Name: id, SecretString: value }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
}

async function coldStarts(runs: number) {
  execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'ignore' });
  const sm = await fakeSecretsManager({
    'broker/keys': JSON.stringify({ current: 'k1', keys: { k1: Buffer.alloc(32, 1).toString('base64url') } }),
    'broker/signing-keys': JSON.stringify({ current: 's1', keys: generateSigningGenerationSync('s1') }),
  });
  const config = JSON.stringify({
    publicUrl: 'https://auth.example.com',
    providers: { op: { issuer: 'https://op.example.com', clientId: 'c', clientSecret: { secretsManager: 'broker/op' } } },
    clients: { web: { type: 'web', redirectUris: ['https://app.example.com/'], allowedOrigins: ['https://app.example.com'], providers: ['op'] } },
    tokenEncryptionKeys: { secretsManager: 'broker/keys' },
    signingKeys: { secretsManager: 'broker/signing-keys' },
  });
  const rows = [];
  for (const fn of ['metadata', 'start-login', 'callback', 'refresh', 'logout', 'proxy']) {
    const file = path.join(root, 'dist', fn, 'index.mjs');
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const out = await spawnAsync(process.execPath, ['--no-warnings', '--input-type=module', '-e',
        `const t = performance.now(); await import(${JSON.stringify(file)}); console.log(performance.now() - t);`], {
        PATH: process.env['PATH'], BROKER_CONFIG_JSON: config, AWS_LAMBDA_FUNCTION_NAME: fn, AWS_REGION: 'us-east-1', DYNAMODB_TABLE: 't',
        AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url, AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench',
      });
      if (out.status !== 0) throw new Error(`${fn}: ${out.stderr}`);
      times.push(Number(out.stdout.trim()));
    }
    rows.push({ function: fn, 'bundle KiB': Math.round(statSync(file).size / 1024), 'import ms (median)': Number(median(times).toFixed(1)) });
  }
  sm.close();
  return rows;
}

/** spawnSync would block the fake Secrets Manager in this process: the child waits on it. */
function spawnAsync(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stdout, stderr: stderr.slice(0, 2000) }));
  });
}

async function roundTrips(samples: number) {
  const h = await startHarness({ configure: (doc) => (doc.ttl = { minAccessTokenSeconds: 30 }) });
  let calls = 0;
  const send = h.runtime.table.send;
  (h.runtime.table as { send: typeof send }).send = ((cmd: unknown) => {
    calls++;
    return (send as (c: unknown) => Promise<unknown>)(cmd);
  }) as typeof send;
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
    let handle: string = tokens.refresh_token;
    const stored: number[] = [];
    let storedCalls = 0;
    for (let i = 0; i < samples; i++) {
      const t = performance.now();
      const [res, n] = await count(() => refreshNative(h, handle));
      stored.push(performance.now() - t);
      storedCalls = n;
      handle = (await res.json()).refresh_token;
    }
    const upstream: number[] = [];
    let upstreamCalls = 0;
    for (let i = 0; i < samples; i++) {
      h.clockOffset += 300;
      const t = performance.now();
      const [res, n] = await count(() => refreshNative(h, handle));
      upstream.push(performance.now() - t);
      upstreamCalls = n;
      const body = await res.json();
      if (!body.refresh_token) throw new Error(`upstream refresh failed: ${JSON.stringify(body)}`);
      handle = body.refresh_token;
    }
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
      latency: {
        'stored ms (median)': Number(median(stored).toFixed(2)),
        'upstream ms (median)': Number(median(upstream).toFixed(2)),
        'upstream / stored': Number((median(upstream) / median(stored)).toFixed(2)),
      },
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
    const uncached = await time(async () => new SignJWT({ ...claims }).setProtectedHeader({ alg, kid: 'g' }).sign(await importJWK(jwk, alg)));
    rows.push({ alg, 'cached key µs (median)': Math.round(cached), 'imported per token µs (median)': Math.round(uncached), 'uncached / cached': Number((uncached / cached).toFixed(2)) });
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
  const send = h.runtime.table.send;
  (h.runtime.table as { send: typeof send }).send = ((cmd: { constructor: { name: string } }) => {
    commands.push(cmd.constructor.name.replace(/Command$/, ''));
    return (send as (c: unknown) => Promise<unknown>)(cmd);
  }) as unknown as typeof send;
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

    const raw = await h.runtime.table.send(new GetItemCommand({ TableName: h.runtime.table.name, Key: { pk: { S: sessionKey(sid) } }, ConsistentRead: true }));
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

const runs = Number(process.env['BENCH_RUNS'] ?? 11);
console.log(`cold start: ${runs} fresh processes per function`);
console.table(await coldStarts(runs));
const rt = await roundTrips(Number(process.env['BENCH_SAMPLES'] ?? 30));
console.log('DynamoDB calls per operation');
console.table(rt.calls);
console.log('refresh latency over loopback (dynalite + oidc-provider)');
console.table([rt.latency]);
console.log('ID token signing (one broker ID token, CPU on this machine)');
console.table(await signing(Number(process.env['BENCH_SIGNS'] ?? 200), 15));
const proxy = await apiProxy(Number(process.env['BENCH_SAMPLES'] ?? 30) * 4);
console.log('(v2) API proxy over loopback: the same call straight to the API and through the broker, same token, interleaved');
console.table([proxy.latency]);
console.log('(v2) DynamoDB calls per proxied call');
console.table(proxy.calls);
console.log('(v2) the session item and DynamoDB on-demand cost per million proxied calls (token fresh)');
console.table([proxy.cost]);
process.exit(0);
