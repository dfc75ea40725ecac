/**
 * `npm start`: the local runner.
 *
 * - No `BROKER_CONFIG`: the embedded demo. The broker on http://127.0.0.1:8787 with a demo page
 *   at `/`, an OpenID provider on http://127.0.0.1:8788 (user "alice"), demo `web` and `native`
 *   clients, embedded DynamoDB.
 * - `BROKER_CONFIG=path PORT=n`: the broker alone on that configuration and port; storage is
 *   embedded unless `DYNAMODB_ENDPOINT` names another (`DYNAMODB_TABLE`, default oauth-broker).
 */
import { readFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { ConfigError, parseConfig, parseConfigText, type Config } from '../lib/config/parse.js';
import { createLogger } from '../lib/log.js';
import { createRuntime } from '../lib/runtime.js';
import { sdkSecretsManagerFetcher } from '../lib/secrets/sdk-secrets-manager.js';
import { createTable } from '../lib/store/table.js';
import { startDemoApi } from './demo-api.js';
import { demoPage } from './demo-page.js';
import { ensureTable, localDynamoClient, localTableClient, startDynalite } from './dynamo.js';
import { startBrokerServer } from './http-adapter.js';
import { startOidcProvider } from './oidc-provider.js';

const DEMO_BROKER_PORT = 8787;
const DEMO_PROVIDER_PORT = 8788;

async function main(): Promise<void> {
  const env = process.env;
  const host = env['HOST'] ?? '127.0.0.1';
  const log = createLogger({ level: (env['LOG_LEVEL'] as 'info' | undefined) ?? 'info' });
  const closers: (() => Promise<void>)[] = [];

  let config: Config;
  let port: number;
  let demo = false;
  if (env['BROKER_CONFIG']) {
    config = parseConfigText(readFileSync(env['BROKER_CONFIG'], 'utf8'), { runtime: 'local', env });
    port = Number(env['PORT'] ?? DEMO_BROKER_PORT);
  } else {
    demo = true;
    port = Number(env['PORT'] ?? DEMO_BROKER_PORT);
    const publicUrl = `http://127.0.0.1:${port}`;
    const secret = randomBytes(24).toString('base64url');
    const op = await startOidcProvider({
      port: Number(env['DEMO_PROVIDER_PORT'] ?? DEMO_PROVIDER_PORT),
      clientId: 'broker-demo',
      clientSecret: secret,
      redirectUris: [`${publicUrl}/callback`],
      postLogoutRedirectUris: [`${publicUrl}/`, 'http://127.0.0.1/'],
      jwtAccessTokens: true,
      // Logging out at the provider (its /session/end page) ends the broker's sessions too.
      backchannelLogoutUri: `${publicUrl}/backchannel-logout/demo`,
    });
    closers.push(op.close);
    // A second provider, on any free port, so the demo shows a choice of providers: this one
    // wants client_secret_post and issues opaque access tokens.
    const secret2 = randomBytes(24).toString('base64url');
    const op2 = await startOidcProvider({
      clientId: 'broker-demo-post',
      clientSecret: secret2,
      clientAuth: 'client_secret_post',
      redirectUris: [`${publicUrl}/callback`],
      postLogoutRedirectUris: [`${publicUrl}/`, 'http://127.0.0.1/'],
    });
    closers.push(op2.close);
    // The demo API, which web apps call through the broker's API proxy: it takes the first
    // provider's JWT access tokens.
    const demoApi = await startDemoApi({ issuer: op.issuer });
    closers.push(demoApi.close);
    config = parseConfig({
      publicUrl,
      providers: {
        demo: {
          issuer: op.issuer,
          clientId: 'broker-demo',
          clientSecret: { value: secret },
          clientAuth: 'client_secret_basic',
          scopes: ['openid', 'profile', 'email', 'offline_access'],
          authorizationParams: { prompt: 'consent' },
          forwardParams: ['login_hint', 'ui_locales'],
          backchannelLogout: true,
        },
        'demo-post': {
          issuer: op2.issuer,
          clientId: 'broker-demo-post',
          clientSecret: { value: secret2 },
          clientAuth: 'client_secret_post',
          scopes: ['openid', 'profile', 'offline_access'],
          authorizationParams: { prompt: 'consent' },
        },
      },
      clients: {
        web: { type: 'web', redirectUris: [`${publicUrl}/`], allowedOrigins: [publicUrl], providers: ['demo', 'demo-post'], postLogoutRedirectUri: `${publicUrl}/`, apis: ['demo'] },
        // A web app in proxy mode: it calls the demo API through /api/demo/..., and no answer gives it a token.
        'web-proxy': { type: 'web', redirectUris: [`${publicUrl}/`], allowedOrigins: [publicUrl], providers: ['demo'], postLogoutRedirectUri: `${publicUrl}/`, apis: ['demo'], tokenDelivery: 'proxy' },
        native: { type: 'native', redirectUris: ['http://127.0.0.1/'], allowedOrigins: [publicUrl], providers: ['demo', 'demo-post'], postLogoutRedirectUri: 'http://127.0.0.1/' },
      },
      apis: { demo: { url: `${demoApi.url}/v1`, provider: 'demo' } },
      // The demo's key ring is the process's own, so no earlier release ever reads what it writes.
      storage: { ciphertexts: 'compact' },
    }, { runtime: 'local' });
    log.info('demo.provider', { issuer: op.issuer, user: 'alice (any password)' });
  }

  let endpoint = env['DYNAMODB_ENDPOINT'];
  if (!endpoint) {
    const dynamo = await startDynalite();
    closers.push(dynamo.close);
    endpoint = dynamo.endpoint;
  }
  const tableName = env['DYNAMODB_TABLE'] ?? 'oauth-broker';
  const client = localDynamoClient(endpoint);
  const { missingIndexes } = await ensureTable(client, tableName);
  if (missingIndexes.length) {
    log.warn('table.indexes_missing', { table: tableName, indexes: missingIndexes.join(','), message: 'this DynamoDB cannot add them to the existing table: back-channel logout and "sessions end" will fail until the table is recreated' });
  }

  const runtime = createRuntime({ config, table: createTable(tableName, localTableClient(endpoint)), log, fetchSecret: sdkSecretsManagerFetcher() });
  // Read (or generate) the key ring now, so a bad one stops the start and a generated one is said.
  await runtime.cipher();
  // Likewise the ID-token signing keys (generated for the process when not configured).
  await runtime.signing.get();
  const server = await startBrokerServer(runtime, { host, port, ...(demo ? { extra: demoPage(config) } : {}) });
  closers.push(server.close);
  if (demo) process.stdout.write(`demo: open ${server.url}/ and log in as "alice" (any password)\n`);
  // The contract's readiness signal, printed last: everything is up when it appears.
  process.stdout.write(`broker listening on ${server.url}\n`);

  const stop = () => {
    Promise.allSettled(closers.reverse().map((c) => c())).finally(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((err: unknown) => {
  if (err instanceof ConfigError) process.stderr.write(`${err.message}\n`);
  else process.stderr.write(`the broker could not start: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
