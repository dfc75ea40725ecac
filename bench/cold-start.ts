/**
 * Cold starts: each function's bundle imported in a fresh Node.js process, its init included (the
 * configuration parsed, clients built, key rings read from a Secrets Manager stand-in on loopback,
 * signing keys imported), against `node -e 0` in the same environment. Each run is timed as a
 * whole process, from spawn to exit, and the two alternate run by run, so the delta of each pair
 * is taken on the same machine at the same moment; the median of those deltas is what a function
 * adds to bare Node.js. The environment is the deployed one (credentials and region from the
 * environment, no NODE_OPTIONS); a second column runs the same bundle with
 * `NODE_OPTIONS=--enable-source-maps`, which the functions no longer set (it parses the map at start).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { generateSigningGenerationSync } from '../lib/oidc/signing-key-ring.js';
import { median, round } from './stats.js';

/**
 * A stand-in for Secrets Manager's GetSecretValue on loopback: the functions read their key rings
 * during init, as in Lambda, so a cold start includes those reads (over loopback here).
 */
export async function fakeSecretsManager(secrets: Record<string, string>): Promise<{ url: string; reads(): number; close(): void }> {
  let reads = 0;
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      reads++;
      const id = (JSON.parse(body || '{}') as { SecretId?: string }).SecretId ?? '';
      const value = secrets[id];
      res.writeHead(value === undefined ? 400 : 200, { 'content-type': 'application/x-amz-json-1.1' });
      res.end(JSON.stringify(value === undefined ? { __type: 'ResourceNotFoundException', message: 'no such secret' } : { Name: id, SecretString: value }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, reads: () => reads, close: () => server.close() };
}

interface Run {
  readonly ms: number;
  /** What the process printed: the import's own duration, for the bundles. */
  readonly stdout: string;
}

/** Runs a process to its end; its wall time from spawn to exit. spawnSync would block the stand-in. */
function timedRun(args: string[], env: NodeJS.ProcessEnv): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => {
      const ms = performance.now() - started;
      if (status !== 0) reject(new Error(`${args.join(' ')}: exit ${status}: ${stderr.slice(0, 2000)}`));
      else resolve({ ms, stdout });
    });
  });
}

export interface ColdStartRow {
  readonly function: string;
  readonly 'node -e 0 ms': number;
  readonly 'function ms': number;
  readonly 'delta ms (median of pairs)': number;
  readonly 'import + init ms (in process)': number;
  readonly 'delta with --enable-source-maps': number;
}

export async function coldStarts(root: string, functions: readonly string[], runs: number): Promise<ColdStartRow[]> {
  const sm = await fakeSecretsManager({
    'broker/keys': JSON.stringify({ current: 'k1', keys: { k1: Buffer.alloc(32, 1).toString('base64url') } }),
    'broker/signing-keys': JSON.stringify({ current: 's1', keys: generateSigningGenerationSync('s1') }),
    'broker/op': 'client-secret',
  });
  const config = JSON.stringify({
    publicUrl: 'https://auth.example.com',
    providers: { op: { issuer: 'https://op.example.com', clientId: 'c', clientSecret: { secretsManager: 'broker/op' } } },
    clients: { web: { type: 'web', redirectUris: ['https://app.example.com/'], allowedOrigins: ['https://app.example.com'], providers: ['op'] } },
    tokenEncryptionKeys: { secretsManager: 'broker/keys' },
    signingKeys: { secretsManager: 'broker/signing-keys' },
  });
  const rows: ColdStartRow[] = [];
  try {
    for (const fn of functions) {
      const file = path.join(root, 'dist', fn, 'index.mjs');
      const env: NodeJS.ProcessEnv = {
        PATH: process.env['PATH'], BROKER_CONFIG_JSON: config, AWS_LAMBDA_FUNCTION_NAME: fn, AWS_REGION: 'us-east-1',
        DYNAMODB_TABLE: 't', AWS_ENDPOINT_URL_SECRETS_MANAGER: sm.url, AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_SESSION_TOKEN: 'bench',
      };
      const mapped = { ...env, NODE_OPTIONS: '--enable-source-maps' };
      const bare: number[] = [];
      const full: number[] = [];
      const inProcess: number[] = [];
      const deltas: number[] = [];
      const mapDeltas: number[] = [];
      const importArgs = ['--no-warnings', '--input-type=module', '-e', `const t = performance.now(); await import(${JSON.stringify(file)}); console.log(performance.now() - t);`];
      await timedRun(importArgs, env); // warm the file cache
      const kinds = ['bare', 'fn', 'mapped'] as const;
      for (let i = 0; i < runs; i++) {
        // Each round runs the three in a rotating order, so none always comes first.
        const times: Partial<Record<(typeof kinds)[number], number>> = {};
        for (let k = 0; k < kinds.length; k++) {
          const kind = kinds[(i + k) % kinds.length]!;
          if (kind === 'bare') {
            times.bare = (await timedRun(['-e', '0'], env)).ms;
          } else {
            const run = await timedRun(importArgs, kind === 'fn' ? env : mapped);
            times[kind] = run.ms;
            if (kind === 'fn') inProcess.push(Number(run.stdout.trim()));
          }
        }
        bare.push(times.bare!);
        full.push(times.fn!);
        deltas.push(times.fn! - times.bare!);
        mapDeltas.push(times.mapped! - times.bare!);
      }
      rows.push({
        function: fn,
        'node -e 0 ms': round(median(bare)),
        'function ms': round(median(full)),
        'delta ms (median of pairs)': round(median(deltas)),
        'import + init ms (in process)': round(median(inProcess)),
        'delta with --enable-source-maps': round(median(mapDeltas)),
      });
    }
  } finally {
    sm.close();
  }
  return rows;
}
