/**
 * The operator CLI. Exit codes: 0 done, 1 the input is invalid (configuration or key ring) or the
 * environment refused (`sessions end`: storage, secrets), 2 the command line is wrong.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ConfigError, parseConfig, parseConfigText } from '../config/parse.js';
import { createdSecretNames, DEFAULT_STACK_NAME, withCreatedKeySecrets } from '../config/stack-document.js';
import { KeyRingError } from '../crypto/key-ring.js';
import { sdkSecretsManagerFetcher } from '../secrets/sdk-secrets-manager.js';
import { sdkTableFromEnv } from '../store/sdk-table.js';
import { summarizeConfig } from './config-summary.js';
import { endSessionsCommand, SESSIONS_USAGE, type SessionsDeps } from './sessions.js';
import { addKey, generateRing, promoteKey, retireKey } from './keys.js';
import { addSigningGeneration, generateSigningRing, promoteSigningGeneration, retireSigningGeneration, ROTATION_STEP_MINUTES } from './signing-keys.js';

const USAGE = `usage:
  broker config check <config.json> [--lambda [--stack-name <name>]]
                                                 validate a configuration and summarise it; --lambda applies the
                                                 rules of AWS Lambda to the document as the stack deploys it (a
                                                 left-out tokenEncryptionKeys or signingKeys is the stack's own
                                                 <name>/token-keys and <name>/signing-keys; name: OAuthBroker)
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

/**
 * A relative path is the operator's: `npm --prefix <broker> run broker -- ...` runs in the broker
 * checkout, and npm names the directory it was called from in `INIT_CWD`.
 */
export function fromInvokingDirectory(file: string, env: NodeJS.ProcessEnv = process.env): string {
  const init = env['INIT_CWD'];
  return init && path.isAbsolute(init) ? path.resolve(init, file) : file;
}

export const nodeIo: Io = {
  out: (t) => process.stdout.write(`${t}\n`),
  err: (t) => process.stderr.write(`${t}\n`),
  read: (p) => readFileSync(fromInvokingDirectory(p), 'utf8'),
  write: (p, t) => writeFileSync(fromInvokingDirectory(p), t, { mode: 0o600 }),
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
      const options = configCheckOptions(argv.slice(3));
      if (!options) return usage(io);
      try {
        return configCheck(file, options, io);
      } catch (err) {
        if (err instanceof ConfigError) err.message = `${file}: ${err.message}`;
        throw err;
      }
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
  return usage(io);
}

function usage(io: Io): number {
  io.err(USAGE);
  return 2;
}

/** `config check <file> [--lambda [--stack-name <name>]]`. */
function configCheck(file: string, options: { lambda: boolean; stackName: string }, io: Io): number {
  if (!options.lambda) {
    io.out(`${file}: valid\n\n${summarizeConfig(parseConfigText(io.read(file), { runtime: 'local' }))}`);
    return 0;
  }
  // As the stack deploys it: a left-out key ring is the one the stack creates.
  const text = io.read(file);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    parseConfigText(text, { runtime: 'lambda' }); // the validator's own "is not valid JSON"
  }
  const stack = withCreatedKeySecrets(json, createdSecretNames(options.stackName));
  const config = parseConfig(stack.document, { runtime: 'lambda' });
  const created = [stack.usesCreatedKeyRing ? 'tokenEncryptionKeys' : '', stack.usesCreatedSigningKeys ? 'signingKeys' : ''].filter(Boolean);
  const note = created.length ? `\n\n${created.join(' and ')}: left out, so the stack "${options.stackName}" creates ${created.length > 1 ? 'them' : 'it'} (shown above)` : '';
  io.out(`${file}: valid in AWS Lambda\n\n${summarizeConfig(config)}${note}`);
  return 0;
}

/** `[--lambda [--stack-name <name>]]`; undefined for anything else. */
function configCheckOptions(rest: readonly string[]): { lambda: boolean; stackName: string } | undefined {
  let lambda = false;
  let stackName: string | undefined;
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '--lambda') lambda = true;
    else if (rest[i] === '--stack-name' && rest[i + 1] && !rest[i + 1]!.startsWith('--')) stackName = rest[++i];
    else return undefined;
  }
  if (stackName !== undefined && !lambda) return undefined;
  return { lambda, stackName: stackName ?? DEFAULT_STACK_NAME };
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
