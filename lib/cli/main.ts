/**
 * The operator CLI. Exit codes: 0 done, 1 the input is invalid (configuration or key ring) or the
 * environment refused (`sessions end`: storage, secrets), 2 the command line is wrong.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { ConfigError, parseConfigText } from '../config/parse.js';
import { KeyRingError } from '../crypto/key-ring.js';
import { sdkSecretsManagerFetcher } from '../secrets/sdk-secrets-manager.js';
import { sdkTableFromEnv } from '../store/sdk-table.js';
import { summarizeConfig } from './config-summary.js';
import { endSessionsCommand, SESSIONS_USAGE, type SessionsDeps } from './sessions.js';
import { addKey, generateRing, promoteKey, retireKey } from './keys.js';
import { addSigningGeneration, generateSigningRing, promoteSigningGeneration, retireSigningGeneration, ROTATION_STEP_MINUTES } from './signing-keys.js';

const USAGE = `usage:
  broker config check <config.json> [--lambda]   validate a configuration and summarise it
  broker keys generate                           print a new key ring (JSON) on stdout
  broker keys add <ring.json> [<kid>]            add a new key to the ring file (not yet current)
  broker keys promote <ring.json> <kid>          make a key current
  broker keys retire <ring.json> <kid>           remove a key that is not current
  broker signing-keys generate                   print new ID-token signing keys (JSON) on stdout
  broker signing-keys add <ring.json> [<gen>]    add a generation (RS256 + ES256 key), published but not signing
  broker signing-keys promote <ring.json> <gen>  make a generation the one that signs
  broker signing-keys retire <ring.json> <gen>   remove a generation that is not current
${SESSIONS_USAGE}`;

export interface Io {
  out(text: string): void;
  err(text: string): void;
  read(path: string): string;
  write(path: string, text: string): void;
}

export const nodeIo: Io = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  read: (p) => readFileSync(p, 'utf8'),
  write: (p, t) => writeFileSync(p, t, { mode: 0o600 }),
};

/**
 * The deployed table and Secrets Manager through the AWS SDK, with its credential chain (a profile,
 * SSO, the environment) and region; `DYNAMODB_ENDPOINT` for a local DynamoDB.
 */
export const awsDeps: SessionsDeps = {
  env: process.env,
  table: (name, env) => sdkTableFromEnv({ ...env, DYNAMODB_TABLE: name }),
  fetchSecret: () => sdkSecretsManagerFetcher(),
};

/** Runs a command; `sessions end` talks to AWS and resolves later. */
export function run(argv: readonly string[], io: Io = nodeIo, deps: SessionsDeps = awsDeps): number | Promise<number> {
  const [area, command, file, arg] = argv;
  if (area === 'sessions' && command === 'end') {
    const failed = (err: unknown) => failure(err, io);
    try {
      return endSessionsCommand(argv.slice(2), io, deps).catch(failed);
    } catch (err) {
      return failed(err);
    }
  }
  try {
    if (area === 'config' && command === 'check' && file) {
      const config = parseConfigText(io.read(file), { runtime: argv.includes('--lambda') ? 'lambda' : 'local' });
      io.out(`${file}: valid\n\n${summarizeConfig(config)}`);
      return 0;
    }
    if (area === 'keys' && command === 'generate' && !file) {
      io.out(generateRing().trimEnd());
      return 0;
    }
    if (area === 'keys' && command === 'add' && file) {
      const { ring, kid } = addKey(io.read(file), arg);
      io.write(file, ring);
      io.out(`added key "${kid}" to ${file}; it decrypts now, and encrypts once promoted`);
      return 0;
    }
    if (area === 'keys' && command === 'promote' && file && arg) {
      io.write(file, promoteKey(io.read(file), arg));
      io.out(`"${arg}" is now current in ${file}; retire the old key after ttl.sessionMaxSeconds`);
      return 0;
    }
    if (area === 'keys' && command === 'retire' && file && arg) {
      io.write(file, retireKey(io.read(file), arg));
      io.out(`removed "${arg}" from ${file}; sessions sealed with it now end with invalid_grant`);
      return 0;
    }
    if (area === 'signing-keys' && command === 'generate' && !file) {
      io.out(generateSigningRing().trimEnd());
      return 0;
    }
    if (area === 'signing-keys' && command === 'add' && file) {
      const { ring, generation } = addSigningGeneration(io.read(file), arg);
      io.write(file, ring);
      io.out(`added generation "${generation}" to ${file}; /jwks publishes it once containers read the ring; promote it no earlier than ${ROTATION_STEP_MINUTES} minutes after publishing`);
      return 0;
    }
    if (area === 'signing-keys' && command === 'promote' && file && arg) {
      io.write(file, promoteSigningGeneration(io.read(file), arg));
      io.out(`"${arg}" now signs ID tokens in ${file}; retire the previous generation no earlier than ${ROTATION_STEP_MINUTES} minutes after publishing (ttl.sessionIdleSeconds keeps old /end-session hints valid)`);
      return 0;
    }
    if (area === 'signing-keys' && command === 'retire' && file && arg) {
      io.write(file, retireSigningGeneration(io.read(file), arg));
      io.out(`removed generation "${arg}" from ${file}; /jwks no longer publishes it`);
      return 0;
    }
  } catch (err) {
    return failure(err, io);
  }
  io.err(USAGE);
  return 2;
}

/** An invalid input is exit 1 with its message; anything else is a bug and propagates. */
function failure(err: unknown, io: Io): number {
  if (err instanceof ConfigError || err instanceof KeyRingError) {
    io.err(err.message);
    return 1;
  }
  if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
    io.err(`no such file: ${(err as NodeJS.ErrnoException).path}`);
    return 1;
  }
  throw err;
}
