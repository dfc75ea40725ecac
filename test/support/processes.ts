/**
 * Broker processes for multi-process tests: the local runner (`local/main.ts`, as `npm start`
 * runs it) on a configuration file, a port and a DynamoDB endpoint (usually a fault proxy's
 * `endpointFor(name)`), started, waited for and SIGKILLed at will, as Lambda kills containers.
 *
 * Two things make several processes one broker:
 * - **One key ring.** With no `tokenEncryptionKeys` the runner generates a key ring per process,
 *   so no process could decrypt a session another one wrote. `writeBrokerConfig` writes one ring
 *   into the configuration (`{"value": ...}`, which local runs accept), shared by every process.
 * - **One table, created once.** Each runner describes its table at start and creates it when
 *   missing; two first starts at once race on CreateTable and one fails. `startBrokerProcess`
 *   creates the table from the test process first (once per endpoint and table).
 *
 * The process is node itself with tsx as a loader (`node --import tsx`), not the `tsx` command:
 * that one runs the broker in a child of its own, which a SIGKILL of the parent leaves running.
 *
 * ```ts
 * const config = writeBrokerConfig(doc);
 * const b1 = await startBrokerProcess({ name: 'b1', config, dynamoEndpoint: proxy.endpointFor('b1') });
 * await b1.kill(); const again = await b1.restart();
 * ```
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { generateSigningGenerationSync } from '../../lib/oidc/signing-key-ring.js';
import { generateKeyRingText } from '../../lib/crypto/key-ring.js';
import { ensureTable, localDynamoClient } from '../../local/dynamo.js';
import { freePort } from './harness.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const READY = /broker listening on (\S+)/;

export interface BrokerConfigFile {
  readonly path: string;
  /** The key ring every process of this configuration shares (JSON text). */
  readonly keyRing: string;
  readonly doc: Readonly<Record<string, unknown>>;
}

/**
 * Writes a configuration document for broker processes to a private temporary file, adding one
 * generated key ring as `tokenEncryptionKeys` and one signing ring as `signingKeys` unless the
 * document names them.
 */
export function writeBrokerConfig(doc: Record<string, unknown>, options: { keyRing?: string } = {}): BrokerConfigFile {
  const keyRing = options.keyRing ?? generateKeyRingText('chaos1');
  // One ID-token signing ring too: every process signs with the key the others publish.
  const signing = JSON.stringify({ current: 's1', keys: generateSigningGenerationSync('s1') });
  const full = { ...doc, tokenEncryptionKeys: doc['tokenEncryptionKeys'] ?? { value: keyRing }, signingKeys: doc['signingKeys'] ?? { value: signing } };
  const file = path.join(mkdtempSync(path.join(os.tmpdir(), 'broker-proc-')), 'config.json');
  writeFileSync(file, JSON.stringify(full), { mode: 0o600 });
  return { path: file, keyRing, doc: full };
}

export interface BrokerProcessOptions {
  readonly config: BrokerConfigFile | string;
  /** `DYNAMODB_ENDPOINT`: dynalite, or a fault proxy's `endpointFor(name)`. */
  readonly dynamoEndpoint: string;
  /** `DYNAMODB_TABLE`. Default `oauth-broker`. */
  readonly table?: string;
  /** Default: a free port, kept across restarts. */
  readonly port?: number;
  /** Names the process in errors. Default `broker`. */
  readonly name?: string;
  /** More environment (e.g. `LOG_LEVEL`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Default 60 s: a cold tsx start compiles the broker, beside the rest of the suite on two cores. */
  readonly readyTimeoutMs?: number;
  /** Create the table from this process before the first start. Default true. */
  readonly createTable?: boolean;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface BrokerProcess {
  readonly name: string;
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly alive: boolean;
  /** Resolves when the process has exited, however. */
  readonly exited: Promise<Exit>;
  /** Everything it wrote to stdout and stderr so far (JSON log lines, the ready line, errors). */
  output(): string;
  /** Sends `signal` (default SIGKILL: no cleanup, as a killed container) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<Exit>;
  /** Kills it if it still runs, then starts a new process with the same options on the same port. */
  restart(): Promise<BrokerProcess>;
}

const running = new Set<ChildProcess>();
let reaperInstalled = false;

/** A test that fails before its cleanup must not leave brokers running after the worker exits. */
function installReaper(): void {
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.once('exit', () => {
    for (const child of running) child.kill('SIGKILL');
  });
}

const tablesMade = new Map<string, Promise<void>>();

export async function startBrokerProcess(options: BrokerProcessOptions): Promise<BrokerProcess> {
  const name = options.name ?? 'broker';
  const table = options.table ?? 'oauth-broker';
  const configPath = typeof options.config === 'string' ? options.config : options.config.path;
  const port = options.port ?? (await freePort());
  if (options.createTable ?? true) {
    // Keyed by origin: a proxy's endpoints for different processes lead to one dynalite.
    const key = `${new URL(options.dynamoEndpoint).origin} ${table}`;
    let made = tablesMade.get(key);
    if (!made) {
      made = ensureTable(localDynamoClient(options.dynamoEndpoint), table).then(() => undefined);
      tablesMade.set(key, made);
      made.catch(() => tablesMade.delete(key));
    }
    await made;
  }
  installReaper();
  const child = spawn(process.execPath, ['--import', 'tsx', 'local/main.ts'], {
    cwd: ROOT,
    env: { ...process.env, ...options.env, BROKER_CONFIG: configPath, PORT: String(port), DYNAMODB_ENDPOINT: options.dynamoEndpoint, DYNAMODB_TABLE: table },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  const { url, output, exited } = await waitForReady(child, { name: `broker process ${name}`, timeoutMs: options.readyTimeoutMs ?? 60_000 });

  const broker: BrokerProcess = {
    name,
    url,
    port,
    pid: child.pid!,
    get alive() {
      return child.exitCode === null && child.signalCode === null;
    },
    exited,
    output,
    async kill(signal = 'SIGKILL') {
      if (broker.alive) child.kill(signal);
      return exited;
    },
    async restart() {
      await broker.kill();
      return startBrokerProcess({ ...options, port, createTable: false });
    },
  };
  return broker;
}

export interface ReadyProcess {
  /** The URL of the runner's ready line. */
  readonly url: string;
  /** Everything the process wrote to stdout and stderr so far. */
  output(): string;
  /** Resolves when the process has exited, however. */
  readonly exited: Promise<Exit>;
}

/**
 * Waits for a local runner's ready line (`broker listening on <url>`), printed once everything
 * is up. Rejects, with all the process wrote, when it exits first or is not ready within
 * `timeoutMs` (it is then SIGKILLed): under a full test run on two cores, a cold tsx start that
 * compiles the runner and oidc-provider can take tens of seconds.
 */
export function waitForReady(child: ChildProcess, options: { name: string; timeoutMs: number }): Promise<ReadyProcess> {
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString('utf8')));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise<ReadyProcess>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${options.name} was not ready within ${options.timeoutMs} ms:\n${out}`));
    }, options.timeoutMs);
    const onData = () => {
      const match = READY.exec(out);
      if (!match) return;
      clearTimeout(timer);
      child.stdout!.off('data', onData);
      resolve({ url: match[1]!, output: () => out, exited });
    };
    child.stdout!.on('data', onData);
    void exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`${options.name} exited (${exit.signal ?? exit.code}) before it was ready:\n${out}`));
    });
  });
}
