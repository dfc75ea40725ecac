/**
 * `broker sessions end --provider <name> (--sub <sub> | --sid <sid>)`: the incident runbook's "end
 * every session of this user now". It ends sessions exactly as a provider's back-channel logout
 * does (lib/broker/session-lookup.ts): through the session indexes, never a scan; handles, cookies,
 * unredeemed codes and refreshes in flight stop at once.
 *
 * It needs the configuration (the provider's name; where the token key ring is, since sessions are
 * found by keyed hashes made with it), the deployed table's name, and AWS credentials allowed to
 * read the key ring, query the two indexes and delete items. It prints how many sessions it ended,
 * and never the user's identifiers, a key or a token.
 */
import { parseConfigText } from '../config/parse.js';
import type { SecretRef } from '../config/schema.js';
import { KeyRingError, parseKeyRing } from '../crypto/key-ring.js';
import { createTokenCipher } from '../crypto/token-cipher.js';
import { BrokerError } from '../errors.js';
import { endSessionsMatching, sessionMatches } from '../broker/session-lookup.js';
import { createSecretResolver, SecretError, type SecretFetcher } from '../secrets/secrets.js';
import type { Table } from '../store/table.js';

export const SESSIONS_USAGE = `  broker sessions end --provider <name> (--sub <sub> | --sid <sid>) [--config <config.json>] [--table <name>] [--key-ring-secret <name>]
                                                 end every session of one user (--sub) or one provider session (--sid)
                                                 at one provider, now; config from --config or BROKER_CONFIG, table from
                                                 --table or DYNAMODB_TABLE (the stack's TableName output)`;

/** What the command reaches out to; tests hand in dynalite and local secrets. */
export interface SessionsDeps {
  readonly env: NodeJS.ProcessEnv;
  table(name: string, env: NodeJS.ProcessEnv): Table;
  fetchSecret(): SecretFetcher;
}

export interface SessionsIo {
  out(text: string): void;
  err(text: string): void;
  read(path: string): string;
}

const FLAGS = new Set(['--provider', '--sub', '--sid', '--config', '--table', '--key-ring-secret']);

/** Parses `--flag value` pairs; undefined for a malformed command line (usage, exit 2). */
function flags(args: readonly string[]): Map<string, string> | undefined {
  const out = new Map<string, string>();
  for (let i = 0; i < args.length; i += 2) {
    const flag = args[i]!;
    const value = args[i + 1];
    if (!FLAGS.has(flag) || value === undefined || value === '' || out.has(flag)) return undefined;
    out.set(flag, value);
  }
  return out;
}

/** Exit codes: 0 done, 1 the input or the environment is wrong, 2 the command line is wrong. */
export async function endSessionsCommand(args: readonly string[], io: SessionsIo, deps: SessionsDeps): Promise<number> {
  const f = flags(args);
  if (!f || !f.has('--provider') || (!f.has('--sub') && !f.has('--sid'))) {
    io.err(`usage:\n${SESSIONS_USAGE}`);
    return 2;
  }
  const configPath = f.get('--config') ?? deps.env['BROKER_CONFIG'];
  const tableName = f.get('--table') ?? deps.env['DYNAMODB_TABLE'];
  if (!configPath) return fail(io, 'no configuration: give --config <file> or set BROKER_CONFIG');
  if (!tableName) return fail(io, 'no table: give --table <name> (the stack\'s TableName output) or set DYNAMODB_TABLE');
  // The CLI runs on an operator's machine: local secret references are fine here.
  const config = parseConfigText(io.read(configPath), { runtime: 'local' });
  const name = f.get('--provider')!;
  const provider = Object.hasOwn(config.providers, name) ? config.providers[name] : undefined;
  if (!provider) return fail(io, `no provider "${name}" in ${configPath} (configured: ${Object.keys(config.providers).join(', ')})`);
  if (!provider.openid) return fail(io, `provider "${name}" has no openid scope: its sessions hold no sub or sid to be found by`);
  const ringSecret = f.get('--key-ring-secret');
  const ref: SecretRef | undefined = ringSecret ? { secretsManager: ringSecret } : config.tokenEncryptionKeys;
  if (!ref) return fail(io, `${configPath} names no tokenEncryptionKeys: give --key-ring-secret <name> (the stack's KeyRingSecretName output)`);

  let ringText: string;
  try {
    ringText = await createSecretResolver({ fetchSecret: deps.fetchSecret(), env: deps.env }).resolve(ref);
  } catch (err) {
    // The SDK's own words (e.g. AccessDeniedException: ... is not authorized to perform ...) name no secret value.
    const cause = err instanceof SecretError ? err : (err as { cause?: unknown }).cause ?? err;
    return fail(io, `the token key ring could not be read: ${(cause as Error).name}: ${(cause as Error).message}`);
  }
  try {
    const cipher = createTokenCipher(parseKeyRing(ringText), config.storage.ciphertexts);
    const matches = sessionMatches(cipher, provider.name, { sub: f.get('--sub'), sid: f.get('--sid') });
    const ended = await endSessionsMatching(deps.table(tableName, deps.env), matches);
    const what = f.has('--sid') ? 'of that provider session' : 'of that user';
    io.out(`ended ${ended} session${ended === 1 ? '' : 's'} ${what} at provider "${provider.name}" (table ${tableName})`);
    return 0;
  } catch (err) {
    if (err instanceof KeyRingError) return fail(io, `the token key ring is not valid: ${err.message}`);
    if (err instanceof BrokerError) return fail(io, `${err.description} (${err.cause instanceof Error ? err.cause.name : err.name}); sessions ended so far stay ended: run the command again`);
    const e = err as { name?: string; message?: string };
    if (e.name === 'ValidationException' && /index/i.test(e.message ?? '')) return fail(io, `the table lacks a session index (docs/deploy.md, "Upgrading a stack created before back-channel logout"): ${e.message}`);
    if (typeof e.name === 'string' && /Exception$|Error$/.test(e.name) && e.name !== 'TypeError') return fail(io, `${e.name}: ${e.message ?? ''}`.trim());
    throw err;
  }
}

function fail(io: SessionsIo, message: string): number {
  io.err(message);
  return 1;
}
