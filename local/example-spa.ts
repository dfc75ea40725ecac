/**
 * `npm run example:spa`: the example single-page app (examples/spa/) in one command. It starts
 * the three parts the example needs, on loopback:
 *
 * - an OpenID provider on 127.0.0.1:8788 (the embedded test provider: any user, any password),
 *   with a client secret generated for this run;
 * - the broker on 127.0.0.1:8787 with examples/spa/broker.config.json, the same secret handed to
 *   it as `SPA_EXAMPLE_PROVIDER_SECRET`, and embedded DynamoDB;
 * - a static server for examples/spa/index.html on 127.0.0.1:5999 (another origin of the same
 *   site as the broker, as an app and its broker are in production).
 *
 * It prints the one URL to open and stops all three on Ctrl-C. Tests start it on free ports.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parseConfig } from '../lib/config/parse.js';
import { createLogger, type Logger } from '../lib/log.js';
import { createRuntime } from '../lib/runtime.js';
import { createTable } from '../lib/store/table.js';
import { ensureTable, localDynamoClient, localTableClient, startDynalite } from './dynamo.js';
import { startBrokerServer, type BrokerServer } from './http-adapter.js';
import { startOidcProvider } from './oidc-provider.js';

const EXAMPLE = path.resolve(import.meta.dirname, '../examples/spa');
/** The ports examples/spa/broker.config.json and index.html are written for. */
export const EXAMPLE_PORTS = { broker: 8787, provider: 8788, page: 5999 } as const;

export interface ExampleOptions {
  readonly ports?: Partial<Record<keyof typeof EXAMPLE_PORTS, number>>;
  readonly log?: Logger;
}

export interface RunningExample {
  /** The page to open. */
  readonly pageUrl: string;
  readonly brokerUrl: string;
  readonly providerUrl: string;
  /** Stops and starts the broker (a new process's key ring: every session ends, as after a restart). */
  restartBroker(): Promise<void>;
  close(): Promise<void>;
}

export async function startSpaExample(options: ExampleOptions = {}): Promise<RunningExample> {
  const ports = { ...EXAMPLE_PORTS, ...options.ports };
  const log = options.log ?? createLogger({ level: 'warn' });
  const brokerUrl = `http://127.0.0.1:${ports.broker}`;
  const pageOrigin = `http://127.0.0.1:${ports.page}`;
  const closers: (() => Promise<void>)[] = [];
  const close = () => Promise.allSettled(closers.reverse().map((c) => c())).then(() => undefined);
  try {
    // One secret for this run, known to the provider and to the broker, never printed.
    const secret = randomBytes(24).toString('base64url');
    const op = await startOidcProvider({
      port: ports.provider,
      clientId: 'spa-example-broker',
      clientSecret: secret,
      redirectUris: [`${brokerUrl}/callback`],
      postLogoutRedirectUris: [`${pageOrigin}/`],
    });
    closers.push(op.close);

    const doc = JSON.parse(readFileSync(path.join(EXAMPLE, 'broker.config.json'), 'utf8')) as Record<string, any>;
    doc['publicUrl'] = brokerUrl;
    doc['providers'].local.issuer = op.issuer;
    Object.assign(doc['clients'].spa, { redirectUris: [`${pageOrigin}/`], allowedOrigins: [pageOrigin], postLogoutRedirectUri: `${pageOrigin}/` });
    const env = { ...process.env, SPA_EXAMPLE_PROVIDER_SECRET: secret };
    const config = parseConfig(doc, { runtime: 'local', env });

    const dynamo = await startDynalite();
    closers.push(dynamo.close);
    const client = localDynamoClient(dynamo.endpoint);
    await ensureTable(client, 'oauth-broker');
    const startBroker = async (): Promise<BrokerServer> => {
      const runtime = createRuntime({ config, table: createTable('oauth-broker', localTableClient(dynamo.endpoint)), log, env });
      await runtime.cipher();
      await runtime.signing.get();
      return startBrokerServer(runtime, { port: ports.broker });
    };
    let broker = await startBroker();
    closers.push(() => broker.close());

    const page = await servePage(brokerUrl, ports.page);
    closers.push(page.close);
    return {
      pageUrl: `${pageOrigin}/`,
      brokerUrl,
      providerUrl: op.issuer,
      async restartBroker() {
        await broker.close();
        broker = await startBroker();
      },
      close,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** Serves index.html (and nothing else), its broker address set to this run's. */
async function servePage(brokerUrl: string, port: number): Promise<{ close(): Promise<void> }> {
  const html = readFileSync(path.join(EXAMPLE, 'index.html'), 'utf8')
    .replace(`const BROKER = 'http://127.0.0.1:${EXAMPLE_PORTS.broker}';`, `const BROKER = '${brokerUrl}';`);
  const server = http.createServer((req, res) => {
    const { pathname } = new URL(req.url ?? '/', 'http://page');
    if (req.method !== 'GET' || (pathname !== '/' && pathname !== '/index.html')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' }).end(html);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return {
    close: () => new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

async function main(): Promise<void> {
  const example = await startSpaExample({ log: createLogger({ level: (process.env['LOG_LEVEL'] as 'info' | undefined) ?? 'warn' }) });
  process.stdout.write(
    `example SPA: open ${example.pageUrl} and log in as "alice" (any password)\n` +
    `  (it runs the broker on ${example.brokerUrl} and an OpenID provider on ${example.providerUrl}; Ctrl-C stops everything)\n`,
  );
  const stop = () => void example.close().finally(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && path.resolve(process.argv[1]) === path.resolve(import.meta.filename)) {
  main().catch((err: unknown) => {
    const busy = (err as { code?: string }).code === 'EADDRINUSE';
    process.stderr.write(busy
      ? `the example could not start: a port it needs (${Object.values(EXAMPLE_PORTS).join(', ')}) is in use; stop what runs there (npm start?) and try again\n`
      : `the example could not start: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
