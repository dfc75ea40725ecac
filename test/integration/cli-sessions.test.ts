/**
 * (v2) The operator CLI's `sessions end` against dynalite: the incident runbook's "end every
 * session of this user now", through the session indexes, printing a count and nothing secret.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../lib/cli/main.js';
import { memoryIo } from '../support/cli-io.js';
import type { SessionsDeps } from '../../lib/cli/sessions.js';
import { generateKeyRingText } from '../../lib/crypto/key-ring.js';
import { openIdentity } from '../../lib/oidc/session-identity.js';
import { getSession } from '../../lib/store/sessions.js';
import { createTable } from '../../lib/store/table.js';
import { localDynamoClient, localTableClient } from '../../local/dynamo.js';
import { jar, nativeLogin, redeem, refreshNative, startHarness, webLogin, type Harness } from '../support/harness.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const sidOf = (credential: string) => credential.split('.')[0]!;

let h: Harness;
let doc: Record<string, any>;
const ring = generateKeyRingText();

beforeAll(async () => {
  h = await startHarness({
    // The provider's ID tokens carry its session id (sid) once its back-channel logout is on.
    backchannel: {},
    secondProvider: {},
    configure: (d) => {
      d['tokenEncryptionKeys'] = { value: ring };
      doc = d;
    },
  });
});
afterAll(async () => h?.close());

const deps = (env: NodeJS.ProcessEnv = {}): SessionsDeps => ({
  env,
  table: (name) => createTable(name, localTableClient(h.dynamoEndpoint)),
  fetchSecret: () => async () => {
    throw new Error('no Secrets Manager in this test');
  },
});

async function nativeSession(user = 'alice', provider?: string, j = jar()): Promise<string> {
  const login = await nativeLogin(h, { user, jar: j, ...(provider ? { extra: { provider } } : {}) });
  return ((await (await redeem(h, login)).json()) as { refresh_token: string }).refresh_token;
}

describe('broker sessions end: refusals', () => {
  it('exits 2 with the usage on a wrong command line', async () => {
    const { io, err } = memoryIo();
    for (const argv of [
      ['sessions', 'end'],
      ['sessions', 'end', '--provider', 'op'],
      ['sessions', 'end', '--sub', 'alice'],
      ['sessions', 'end', '--provider', 'op', '--sub'],
      ['sessions', 'end', '--provider', 'op', '--sub', 'a', '--sub', 'b'],
      ['sessions', 'end', '--provider', 'op', '--sub', 'a', '--everyone', 'yes'],
    ]) expect(await run(argv, io, deps()), argv.join(' ')).toBe(2);
    expect(err.join('\n')).toMatch(/broker sessions end --provider <name>/);
  });

  it('exits 1 naming what is missing: configuration, table, provider, key ring; a configuration file that is not there or not valid', async () => {
    const files = { 'c.json': JSON.stringify(doc), 'nokeys.json': JSON.stringify({ ...doc, tokenEncryptionKeys: undefined }), 'bad.json': '{"publicUrl": 1}' };
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--provider', 'op', '--sub', 'alice', '--table', 't'], {}, /no configuration/],
      [['--provider', 'op', '--sub', 'alice', '--config', 'c.json'], {}, /no table/],
      [['--provider', 'ghost', '--sub', 'alice', '--config', 'c.json', '--table', 't'], {}, /no provider "ghost".*configured: op, op2/],
      [['--provider', 'op', '--sub', 'alice', '--config', 'nokeys.json', '--table', 't'], {}, /names no tokenEncryptionKeys: give --key-ring-secret/],
      [['--provider', 'op', '--sub', 'alice', '--config', 'missing.json', '--table', 't'], {}, /no such file: missing.json/],
      [['--provider', 'op', '--sub', 'alice', '--config', 'bad.json', '--table', 't'], {}, /publicUrl/],
      [['--provider', 'op', '--sub', 'alice', '--config', 'nokeys.json', '--table', 't', '--key-ring-secret', 'broker/token-keys'], {}, /no Secrets Manager in this test/],
    ];
    for (const [args, env, message] of cases) {
      const { io, err, out } = memoryIo(files);
      expect(await run(['sessions', 'end', ...args], io, deps(env)), args.join(' ')).toBe(1);
      expect(err.join('\n')).toMatch(message);
      expect(out).toEqual([]);
    }
  });
});

describe('broker sessions end', () => {
  it('--sub ends every session of that user at that provider (native, web, every browser), none elsewhere, and prints a count only', async () => {
    const a1 = await nativeSession();
    const web = await webLogin(h);
    const a2 = await nativeSession('alice');
    const atOp2 = await nativeSession('alice', 'op2');
    const bob = await nativeSession('bob');

    const { io, out, err } = memoryIo({ 'c.json': JSON.stringify(doc) });
    const table = h.runtime.table.name;
    expect(await run(['sessions', 'end', '--provider', 'op', '--sub', 'alice', '--config', 'c.json', '--table', table], io, deps())).toBe(0);
    expect(err).toEqual([]);
    expect(out).toEqual([`ended 3 sessions of that user at provider "op" (table ${table})`]);
    expect(out.join('')).not.toContain('alice');

    for (const handle of [a1, a2]) expect((await refreshNative(h, handle)).status).toBe(400);
    expect(await getSession(h.runtime.table, sidOf(web.jar.get('broker-session')!))).toBeUndefined();
    expect((await refreshNative(h, atOp2)).status).toBe(200);
    expect((await refreshNative(h, bob)).status).toBe(200);

    // Again: nothing left to end. From the environment this time.
    const again = memoryIo({ 'c.json': JSON.stringify(doc) });
    expect(await run(['sessions', 'end', '--provider', 'op', '--sub', 'alice'], again.io, deps({ BROKER_CONFIG: 'c.json', DYNAMODB_TABLE: table }))).toBe(0);
    expect(again.out).toEqual([`ended 0 sessions of that user at provider "op" (table ${table})`]);
  });

  it('--sid ends the sessions of one provider session only', async () => {
    const browser = jar();
    const first = await nativeSession('dave', undefined, browser);
    const second = await nativeSession('dave', undefined, browser);
    const elsewhere = await nativeSession('dave');
    const item = await getSession(h.runtime.table, sidOf(first));
    const identity = await openIdentity(await h.runtime.cipher(), item!.sid, item!.identity);
    expect(identity?.idpSid).toBeDefined();

    const { io, out } = memoryIo({ 'c.json': JSON.stringify(doc) });
    expect(await run(['sessions', 'end', '--provider', 'op', '--sid', identity!.idpSid!, '--config', 'c.json', '--table', h.runtime.table.name], io, deps())).toBe(0);
    expect(out[0]).toMatch(/^ended 2 sessions of that provider session at provider "op"/);
    expect((await refreshNative(h, first)).status).toBe(400);
    expect((await refreshNative(h, second)).status).toBe(400);
    expect((await refreshNative(h, elsewhere)).status).toBe(200);
  });

  it('npm run broker -- sessions end: the real entry point, on DYNAMODB_ENDPOINT', async () => {
    const handle = await nativeSession('erin');
    const dir = mkdtempSync(path.join(tmpdir(), 'broker-cli-'));
    const configFile = path.join(dir, 'config.json');
    writeFileSync(configFile, JSON.stringify(doc), { mode: 0o600 });
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/broker.ts', 'sessions', 'end', '--provider', 'op', '--sub', 'erin', '--config', configFile, '--table', h.runtime.table.name], {
      cwd: ROOT,
      env: { ...process.env, DYNAMODB_ENDPOINT: h.dynamoEndpoint, AWS_REGION: 'local' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(`ended 1 session of that user at provider "op" (table ${h.runtime.table.name})`);
    expect((await refreshNative(h, handle)).status).toBe(400);
  }, 30_000);
});
