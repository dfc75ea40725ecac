/**
 * Cold starts: each function's bundle imported in a fresh Node.js process, its init included (the
 * configuration parsed, clients built, its secrets read in one `BatchGetSecretValue` from a Secrets
 * Manager stand-in on loopback), against `node -e 0` in the same environment. Each run is timed as
 * a whole process, from spawn to exit, and the kinds of run alternate in a rotating order round by
 * round, so the delta of each pair is taken on the same machine at the same moment; the median of
 * those deltas is what a function adds to bare Node.js.
 *
 * The function's process does nothing but `await import(bundle)`: no timer, no output (reading
 * `performance` loads `perf_hooks`, and a first `console.log` sets up stdout, together about 6 ms
 * that are the harness's, not the function's). The in-process column comes from runs of their own
 * that do time the import. The environment is the deployed one (credentials and region from the
 * environment, no NODE_OPTIONS); a last column runs the same bundle with
 * `NODE_OPTIONS=--enable-source-maps`, which the functions do not set (it parses the maps at start).
 *
 * The floor (bench/procs/cold-floor.ts: a function written by hand that only reads the same secrets
 * in one signed request and parses them) runs in the same rounds, in each function's environment,
 * bundled with the functions' own options: `node -e 0` is what a process costs, the floor what
 * Node.js costs any function that reads its secrets at init, and the broker over the floor what its
 * own design costs.
 *
 * `others` (bench/cold-compare.ts) are further checkouts whose bundles run in the same rounds, for a
 * side-by-side comparison on the same minutes of the machine.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { buildSync } from 'esbuild';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { SECRET_IDS_ENV } from '../functions/handler.js';
import { functionSpec, secretsReadBy, type FunctionName } from '../functions/manifest.js';
import { secretIdsVariable } from '../infra/constructs/broker-function.js';
import { BUNDLED_CONFIG_FILE, ESBUILD_OPTIONS, PREPARED_CONFIG_FILE, writeConfigFiles } from '../infra/bundle.js';
import { parseConfig, PREPARED_CONFIG_ENV } from '../lib/config/parse.js';
import { generateSigningGenerationSync } from '../lib/oidc/signing-key-ring.js';
import { secretsManagerStandIn } from '../test/support/secrets-manager.js';
import { median, round } from './stats.js';

interface Run {
  readonly ms: number;
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
  /** The hand-written floor's delta over `node -e 0`, in this function's environment. */
  readonly 'floor delta ms': number;
  /** The function over the floor, run by run. */
  readonly 'over the floor ms': number;
  readonly 'import + init ms (in process)': number;
  readonly 'delta with --enable-source-maps': number;
  /** Per other checkout: its delta over `node -e 0`, from the same rounds. */
  readonly [other: `${string}: delta ms`]: number;
}

/** The secrets a function reads at cold start, as the stack would hold them. */
export const BENCH_SECRETS = {
  'broker/keys': JSON.stringify({ current: 'k1', keys: { k1: Buffer.alloc(32, 1).toString('base64url') } }),
  'broker/signing-keys': JSON.stringify({ current: 's1', keys: generateSigningGenerationSync('s1') }),
  'broker/op': 'client-secret',
};

/** A deployed configuration reading `BENCH_SECRETS`. */
export const BENCH_CONFIG = JSON.stringify({
  publicUrl: 'https://auth.example.com',
  providers: { op: { issuer: 'https://op.example.com', clientId: 'c', clientSecret: { secretsManager: 'broker/op' } } },
  clients: { web: { type: 'web', redirectUris: ['https://app.example.com/'], allowedOrigins: ['https://app.example.com'], providers: ['op'] } },
  tokenEncryptionKeys: { secretsManager: 'broker/keys' },
  signingKeys: { secretsManager: 'broker/signing-keys' },
});

/** A directory of the bench's own, removed when the process exits: once per process. */
let scratchDir: string | undefined;
function benchDir(): string {
  if (!scratchDir) {
    const dir = mkdtempSync(path.join(tmpdir(), 'broker-bench-'));
    process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
    writeConfigFiles(dir, BENCH_CONFIG);
    buildSync({ ...ESBUILD_OPTIONS, entryPoints: { 'cold-floor': path.join(import.meta.dirname, 'procs', 'cold-floor.ts') }, outdir: dir });
    scratchDir = dir;
  }
  return scratchDir;
}

/** The floor (bench/procs/cold-floor.ts), bundled as the functions are. */
export const coldFloorFile = (): string => path.join(benchDir(), 'cold-floor.mjs');

/** The bench's code-asset files, as the stack writes them (`writeConfigFiles`). */
function bundledConfig(): { config: string; prepared: string } {
  return { config: path.join(benchDir(), BUNDLED_CONFIG_FILE), prepared: path.join(benchDir(), PREPARED_CONFIG_FILE) };
}

/**
 * The environment of a function `fn` in Lambda, its Secrets Manager at `secretsUrl`: the
 * configuration and its prepared form as files, and the secret ids, as the stack writes them
 * (infra/constructs/broker-function.ts).
 */
export function lambdaEnv(fn: FunctionName, secretsUrl: string): NodeJS.ProcessEnv {
  const secretIds = secretsReadBy(functionSpec(fn).secrets, parseConfig(JSON.parse(BENCH_CONFIG), { runtime: 'lambda' }));
  const files = bundledConfig();
  return {
    PATH: process.env['PATH'], BROKER_CONFIG: files.config, [PREPARED_CONFIG_ENV]: files.prepared, AWS_LAMBDA_FUNCTION_NAME: fn, AWS_REGION: 'us-east-1',
    DYNAMODB_TABLE: 't', AWS_ENDPOINT_URL_SECRETS_MANAGER: secretsUrl, AWS_ACCESS_KEY_ID: 'bench', AWS_SECRET_ACCESS_KEY: 'bench', AWS_SESSION_TOKEN: 'bench',
    ...(secretIds.length > 0 ? { [SECRET_IDS_ENV]: secretIdsVariable(secretIds) } : {}),
  };
}

const importArgs = (file: string) => ['--input-type=module', '-e', `await import(${JSON.stringify(file)});`];
const timedImportArgs = (file: string) => ['--no-warnings', '--input-type=module', '-e', `const t = performance.now(); await import(${JSON.stringify(file)}); console.log(performance.now() - t);`];

/**
 * Cold starts of `functions` from `root`'s dist/ (`npm run build`), `runs` rounds each; with
 * `others`, those checkouts' bundles in the same rounds. `latencyMs` delays every Secrets Manager
 * answer, as a network would (0: loopback).
 */
export async function coldStarts(root: string, functions: readonly FunctionName[], runs: number, options: { others?: readonly string[]; latencyMs?: number } = {}): Promise<ColdStartRow[]> {
  const others = options.others ?? [];
  const sm = await secretsManagerStandIn(BENCH_SECRETS, { latencyMs: options.latencyMs ?? 0 });
  const rows: ColdStartRow[] = [];
  try {
    for (const fn of functions) {
      const file = (dir: string) => path.join(dir, 'dist', fn, 'index.mjs');
      const env = lambdaEnv(fn, sm.url);
      const mapped = { ...env, NODE_OPTIONS: '--enable-source-maps' };
      type Kind = { readonly name: string; readonly args: string[]; readonly env: NodeJS.ProcessEnv };
      const kinds: Kind[] = [
        { name: 'bare', args: ['-e', '0'], env },
        { name: 'floor', args: importArgs(coldFloorFile()), env },
        { name: 'fn', args: importArgs(file(root)), env },
        { name: 'timed', args: timedImportArgs(file(root)), env },
        { name: 'mapped', args: importArgs(file(root)), env: mapped },
        ...others.map((dir) => ({ name: dir, args: importArgs(file(dir)), env })),
      ];
      for (const kind of kinds) await timedRun(kind.args, kind.env); // warm the file cache
      const times = new Map<string, number[]>(kinds.map((k) => [k.name, []]));
      const inProcess: number[] = [];
      for (let i = 0; i < runs; i++) {
        // Each round runs every kind in a rotating order, so none always comes first.
        for (let k = 0; k < kinds.length; k++) {
          const kind = kinds[(i + k) % kinds.length]!;
          const run = await timedRun(kind.args, kind.env);
          times.get(kind.name)!.push(run.ms);
          if (kind.name === 'timed') inProcess.push(Number(run.stdout.trim()));
        }
      }
      const bare = times.get('bare')!;
      const delta = (name: string, from = bare) => round(median(times.get(name)!.map((ms, i) => ms - from[i]!)));
      rows.push({
        function: fn,
        'node -e 0 ms': round(median(bare)),
        'function ms': round(median(times.get('fn')!)),
        'delta ms (median of pairs)': delta('fn'),
        'floor delta ms': delta('floor'),
        'over the floor ms': delta('fn', times.get('floor')),
        'import + init ms (in process)': round(median(inProcess)),
        'delta with --enable-source-maps': delta('mapped'),
        ...Object.fromEntries(others.map((dir) => [`${dir}: delta ms`, delta(dir)])),
      });
    }
  } finally {
    await sm.close();
  }
  return rows;
}
