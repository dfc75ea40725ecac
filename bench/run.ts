/**
 * `npm run bench`: what the broker costs, as medians and ratios (the machine is shared and
 * noisy, so no absolute threshold is asserted anywhere).
 *
 * 1. Cold start: each function's bundle imported in a fresh Node process (config parsed,
 *    clients built), median of N runs, beside the bundle size.
 * 2. Round trips: DynamoDB calls per operation, counted at the table, and the median latency of
 *    a refresh served from the stored token against one that goes upstream.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { browserHeaders, go, loginAtProvider, nativeLogin, redeem, refreshNative, startHarness, webLogin, jar } from '../test/support/harness.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

function coldStarts(runs: number) {
  execFileSync(process.execPath, [path.join(root, 'scripts/build.mjs')], { stdio: 'ignore' });
  const config = JSON.stringify({
    publicUrl: 'https://auth.example.com',
    providers: { op: { issuer: 'https://op.example.com', clientId: 'c', clientSecret: { secretsManager: 'broker/op' } } },
    clients: { web: { type: 'web', redirectUris: ['https://app.example.com/'], allowedOrigins: ['https://app.example.com'], providers: ['op'] } },
    tokenEncryptionKeys: { secretsManager: 'broker/keys' },
  });
  const rows = [];
  for (const fn of ['metadata', 'start-login', 'callback', 'refresh', 'logout']) {
    const file = path.join(root, 'dist', fn, 'index.mjs');
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const out = spawnSync(process.execPath, ['--no-warnings', '--input-type=module', '-e',
        `const t = performance.now(); await import(${JSON.stringify(file)}); console.log(performance.now() - t);`], {
        env: { PATH: process.env['PATH'], BROKER_CONFIG_JSON: config, AWS_LAMBDA_FUNCTION_NAME: fn, AWS_REGION: 'us-east-1', DYNAMODB_TABLE: 't' },
        encoding: 'utf8',
      });
      if (out.status !== 0) throw new Error(`${fn}: ${out.stderr}`);
      times.push(Number(out.stdout.trim()));
    }
    rows.push({ function: fn, 'bundle KiB': Math.round(statSync(file).size / 1024), 'import ms (median)': Number(median(times).toFixed(1)) });
  }
  return rows;
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
    const [, logoutCalls] = await count(() => go(web.jar, `${h.url}/logout`, { method: 'POST', headers: browserHeaders }));
    return {
      calls: [
        { operation: 'GET /login', dynamodb: loginCalls },
        { operation: 'GET /callback (web)', dynamodb: callbackCalls },
        { operation: 'POST /refresh, stored token', dynamodb: webStoredCalls },
        { operation: 'POST /token refresh, stored token', dynamodb: storedCalls },
        { operation: 'POST /token refresh, upstream', dynamodb: upstreamCalls },
        { operation: 'POST /logout (web)', dynamodb: logoutCalls },
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

const runs = Number(process.env['BENCH_RUNS'] ?? 11);
console.log(`cold start: ${runs} fresh processes per function`);
console.table(coldStarts(runs));
const rt = await roundTrips(Number(process.env['BENCH_SAMPLES'] ?? 30));
console.log('DynamoDB calls per operation');
console.table(rt.calls);
console.log('refresh latency over loopback (dynalite + oidc-provider)');
console.table([rt.latency]);
process.exit(0);
