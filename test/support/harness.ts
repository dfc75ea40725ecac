/**
 * Integration harness: a real OpenID provider (oidc-provider), real DynamoDB semantics
 * (dynalite) and the broker behind the local runner's HTTP adapter, all on loopback, started and
 * stopped by the tests. Logs are captured so tests can check that nothing secret is written.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { parseConfig, type Config } from '../../lib/config/parse.js';
import { createLogger } from '../../lib/log.js';
import { createRuntime, type Runtime } from '../../lib/runtime.js';
import { createTable, type TableClient } from '../../lib/store/table.js';
import type { SecretFetcher } from '../../lib/secrets/secrets.js';
import { ensureTable, localDynamoClient, localTableClient, startDynalite, type LocalDynamo } from '../../local/dynamo.js';
import { startBrokerServer, type BrokerServer } from '../../local/http-adapter.js';
import { startOidcProvider, type OidcProviderOptions, type RunningProvider } from '../../local/oidc-provider.js';

export const NATIVE_REDIRECT = 'com.example.app:/oauth2redirect';
export const WEB_ORIGIN = 'http://127.0.0.1:5999';
export const WEB_REDIRECT = `${WEB_ORIGIN}/app/`;
/**
 * The native client's postLogoutRedirectUri. oidc-provider takes only web URIs as a web client's
 * post-logout URIs, so the provider does not know this one: tests that follow a logout through
 * the provider use a loopback URI instead.
 */
export const NATIVE_LOGGED_OUT = 'com.example.app:/loggedout';

export interface HarnessOptions {
  /** Edits the broker configuration document before it is parsed. */
  readonly configure?: (doc: Record<string, any>) => void;
  readonly op?: Partial<OidcProviderOptions>;
  readonly clientSecret?: string;
  /**
   * The broker's DynamoDB client on dynalite's endpoint, e.g. a fault injector's container
   * (`test/support/dynamo-faults.ts`). Default: `localTableClient`, as deployed functions have it.
   */
  readonly dynamoClient?: (endpoint: string) => TableClient;
  /** Reads `{"secretsManager": ...}` references of the configuration (none by default). */
  readonly fetchSecret?: SecretFetcher;
  /**
   * (v2) Back-channel logout: the provider posts logout tokens to
   * `{publicUrl}/backchannel-logout/op` and `op` has `"backchannelLogout": true`. `sessionRequired`
   * (default true): its ID and logout tokens carry `sid`; else logout tokens carry only `sub`.
   */
  readonly backchannel?: { readonly sessionRequired?: boolean };
  /**
   * (v2) A second provider `op2` (another oidc-provider on 127.0.0.3, client `broker2`, the same
   * user names), offered to every client after `op`; with `backchannel`, as above.
   */
  readonly secondProvider?: { readonly backchannel?: { readonly sessionRequired?: boolean } };
}

export interface Harness {
  readonly url: string;
  readonly op: RunningProvider;
  /** With `secondProvider`: provider `op2`. */
  readonly op2: RunningProvider | undefined;
  readonly config: Config;
  readonly runtime: Runtime;
  readonly logs: string[];
  readonly secret: string;
  /** The embedded DynamoDB (dynalite) the broker's table is on. */
  readonly dynamoEndpoint: string;
  /** Seconds added to the broker's clock. */
  clockOffset: number;
  close(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const probe = http.createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
  const { port } = probe.address() as AddressInfo;
  await new Promise((r) => probe.close(r));
  return port;
}

let dynamo: LocalDynamo | undefined;

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  dynamo ??= await startDynalite();
  const port = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const secret = options.clientSecret ?? `s3cr:et%+ ${randomBytes(6).toString('hex')}`;
  const op = await startOidcProvider({
    host: '127.0.0.2',
    clientId: 'broker',
    clientSecret: secret,
    clientAuth: 'client_secret_basic',
    redirectUris: [`${publicUrl}/callback`],
    postLogoutRedirectUris: [`${WEB_ORIGIN}/bye`],
    ...(options.backchannel ? { backchannelLogoutUri: `${publicUrl}/backchannel-logout/op`, backchannelLogoutSessionRequired: options.backchannel.sessionRequired ?? true } : {}),
    ...options.op,
  });
  const second = options.secondProvider;
  const op2 = second ? await startOidcProvider({
    host: '127.0.0.3',
    clientId: 'broker2',
    clientSecret: secret,
    clientAuth: 'client_secret_basic',
    redirectUris: [`${publicUrl}/callback`],
    ...(second.backchannel ? { backchannelLogoutUri: `${publicUrl}/backchannel-logout/op2`, backchannelLogoutSessionRequired: second.backchannel.sessionRequired ?? true } : {}),
  }) : undefined;
  const doc: Record<string, any> = {
    publicUrl,
    providers: {
      op: {
        issuer: op.issuer,
        clientId: 'broker',
        clientSecret: { value: secret },
        clientAuth: 'client_secret_basic',
        scopes: ['openid', 'profile', 'offline_access'],
        authorizationParams: { prompt: 'consent' },
        forwardParams: ['login_hint', 'ui_locales'],
        ...(options.backchannel ? { backchannelLogout: true } : {}),
      },
      ...(op2 ? {
        op2: {
          issuer: op2.issuer,
          clientId: 'broker2',
          clientSecret: { value: secret },
          scopes: ['openid', 'profile', 'offline_access'],
          authorizationParams: { prompt: 'consent' },
          ...(second?.backchannel ? { backchannelLogout: true } : {}),
        },
      } : {}),
    },
    clients: {
      app: { type: 'native', redirectUris: [NATIVE_REDIRECT, 'http://127.0.0.1/cb'], providers: ['op'], postLogoutRedirectUri: NATIVE_LOGGED_OUT, allowedOrigins: [WEB_ORIGIN] },
      other: { type: 'native', redirectUris: ['com.example.other:/cb'], providers: ['op'] },
      web: { type: 'web', redirectUris: [WEB_REDIRECT], allowedOrigins: [WEB_ORIGIN], providers: ['op'], postLogoutRedirectUri: `${WEB_ORIGIN}/bye` },
    },
    ttl: {},
  };
  if (op2) for (const client of Object.values(doc['clients'] as Record<string, { providers: string[] }>)) client.providers.push('op2');
  options.configure?.(doc);
  const config = parseConfig(doc, { runtime: 'local' });
  const logs: string[] = [];
  const tableName = `broker-${randomBytes(4).toString('hex')}`;
  await ensureTable(localDynamoClient(dynamo.endpoint), tableName);
  const harness = {
    clockOffset: 0,
  } as Harness;
  const runtime = createRuntime({
    config,
    table: createTable(tableName, options.dynamoClient?.(dynamo.endpoint) ?? localTableClient(dynamo.endpoint)),
    log: createLogger({ level: 'debug', sink: (line) => logs.push(line) }),
    now: () => Math.floor(Date.now() / 1000) + harness.clockOffset,
    ...(options.fetchSecret ? { fetchSecret: options.fetchSecret } : {}),
  });
  // The signing keys now (generated when not configured, which takes a moment), not mid-test.
  await runtime.signing.get();
  const broker: BrokerServer = await startBrokerServer(runtime, { port });
  return Object.assign(harness, {
    url: broker.url,
    op,
    op2,
    config,
    runtime,
    logs,
    secret,
    dynamoEndpoint: dynamo.endpoint,
    async close() {
      await broker.close();
      await op.close();
      await op2?.close();
    },
  });
}

// ---- a browser-like cookie jar and HTTP helpers --------------------------------------------

export interface Jar {
  store(url: string, res: Response): void;
  header(url: string): string;
  get(name: string): string | undefined;
  setCookies: string[];
}

export function jar(): Jar {
  const cookies = new Map<string, { host: string; name: string; value: string }>();
  const setCookies: string[] = [];
  return {
    setCookies,
    store(url, res) {
      const host = new URL(url).hostname;
      for (const sc of res.headers.getSetCookie()) {
        setCookies.push(sc);
        const [nv, ...attrs] = sc.split(';').map((s) => s.trim());
        const i = nv!.indexOf('=');
        const name = nv!.slice(0, i);
        const value = nv!.slice(i + 1);
        const dead = attrs.some((a) => /^max-age=0$/i.test(a)) || value === '';
        if (dead) cookies.delete(`${host}|${name}`);
        else cookies.set(`${host}|${name}`, { host, name, value });
      }
    },
    header(url) {
      const host = new URL(url).hostname;
      return [...cookies.values()].filter((c) => c.host === host).map((c) => `${c.name}=${c.value}`).join('; ');
    },
    get(name) {
      return [...cookies.values()].find((c) => c.name === name)?.value;
    },
  };
}

export async function go(j: Jar | undefined, url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const cookie = j?.header(url);
  if (cookie) headers.set('cookie', cookie);
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  j?.store(url, res);
  return res;
}

export const form = (fields: Record<string, string>, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  body: new URLSearchParams(fields).toString(),
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
});

/** Walks oidc-provider's login and consent forms as user `login` until a redirect to `until`. */
export async function loginAtProvider(j: Jar, startUrl: string, until: string, login = 'alice'): Promise<string> {
  let url = startUrl;
  for (let hop = 0; hop < 15; hop++) {
    let res = await go(j, url);
    if (res.status >= 300 && res.status < 400) {
      const next = new URL(res.headers.get('location')!, url).href;
      if (next.startsWith(until)) return next;
      url = next;
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    if (!action) throw new Error(`the provider answered ${res.status} at ${url}: ${html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ').slice(0, 300)}`);
    const target = new URL(action.replace(/&amp;/g, '&'), url).href;
    const prompt = /name="prompt" value="([^"]+)"/.exec(html)?.[1];
    const fields: Record<string, string> = prompt === 'login' ? { prompt, login, password: 'pw' } : { prompt: prompt ?? 'consent' };
    res = await go(j, target, form(fields));
    const next = new URL(res.headers.get('location')!, target).href;
    if (next.startsWith(until)) return next;
    url = next;
  }
  throw new Error('too many hops at the provider');
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface NativeLogin {
  readonly code: string;
  readonly verifier: string;
  readonly redirect: URL;
  readonly jar: Jar;
}

/** A native app's login up to the broker's one-time code. */
export async function nativeLogin(h: Harness, options: { clientId?: string; redirectUri?: string; state?: string; extra?: Record<string, string>; jar?: Jar; user?: string } = {}): Promise<NativeLogin> {
  const j = options.jar ?? jar();
  const { verifier, challenge } = pkce();
  const redirectUri = options.redirectUri ?? NATIVE_REDIRECT;
  const start = await go(j, `${h.url}/login?${new URLSearchParams({
    client_id: options.clientId ?? 'app', redirect_uri: redirectUri, state: options.state ?? 'app-state',
    code_challenge: challenge, code_challenge_method: 'S256', ...options.extra,
  })}`);
  if (start.status !== 302) throw new Error(`/login answered ${start.status}: ${await start.text()}`);
  const callback = await loginAtProvider(j, start.headers.get('location')!, `${h.url}/callback`, options.user);
  const cb = await go(j, callback);
  const redirect = new URL(cb.headers.get('location') ?? 'x:/');
  return { code: redirect.searchParams.get('code') ?? '', verifier, redirect, jar: j };
}

export async function redeem(h: Harness, login: NativeLogin, overrides: Record<string, string> = {}): Promise<Response> {
  return fetch(`${h.url}/token`, form({
    grant_type: 'authorization_code', code: login.code, code_verifier: login.verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT, ...overrides,
  }));
}

export async function refreshNative(h: Harness, handle: string, clientId = 'app'): Promise<Response> {
  return fetch(`${h.url}/token`, form({ grant_type: 'refresh_token', refresh_token: handle, client_id: clientId }));
}

/** A web app's login; resolves the jar holding the session cookie and the final redirect. */
export async function webLogin(h: Harness, state = 'web-state', extra: Record<string, string> = {}, options: { jar?: Jar; user?: string } = {}): Promise<{ jar: Jar; redirect: URL }> {
  const j = options.jar ?? jar();
  const start = await go(j, `${h.url}/login?${new URLSearchParams({ client_id: 'web', state, ...extra })}`);
  if (start.status !== 302) throw new Error(`/login answered ${start.status}: ${await start.text()}`);
  const callback = await loginAtProvider(j, start.headers.get('location')!, `${h.url}/callback`, options.user);
  const cb = await go(j, callback);
  return { jar: j, redirect: new URL(cb.headers.get('location') ?? 'x:/') };
}

export const browserHeaders = { origin: WEB_ORIGIN, 'x-broker-csrf': '1' };

/**
 * A second broker instance on the same table and configuration: another Lambda container,
 * with its own DynamoDB client if given one (e.g. another fault injector container).
 */
export async function secondInstance(h: Harness, client?: TableClient): Promise<{ url: string; close(): Promise<void> }> {
  const runtime = createRuntime({
    config: h.config,
    table: client ? createTable(h.runtime.table.name, client) : h.runtime.table,
    log: createLogger({ level: 'debug', sink: (line) => h.logs.push(line) }),
    now: () => Math.floor(Date.now() / 1000) + h.clockOffset,
  });
  // Both instances must read the same key ring: share the first one's cipher.
  const shared = await h.runtime.cipher();
  // And the same signing keys (generated per runtime when not configured).
  const broker = await startBrokerServer({ ...runtime, cipher: async () => shared, signing: h.runtime.signing }, { port: 0 });
  return { url: broker.url, close: broker.close };
}

/**
 * Ends the user's session at the provider as the browser holding `j` would: its end-session page,
 * then the confirmation form with "yes, sign me out". With back-channel logout on, the provider
 * posts its logout tokens before it answers. Resolves what it reported per delivery.
 */
export async function endSessionAtProvider(op: RunningProvider, j: Jar): Promise<{ delivered: number; failed: string[] }> {
  const outcome = { delivered: 0, failed: [] as string[] };
  const ok = () => void outcome.delivered++;
  const bad = (_ctx: unknown, err: unknown) => void outcome.failed.push((err as Error).message);
  op.provider.on('backchannel.success', ok);
  op.provider.on('backchannel.error', bad);
  try {
    const page = await go(j, `${op.issuer}/session/end`);
    const html = await page.text();
    const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1];
    const xsrf = /name="xsrf" value="([^"]+)"/.exec(html)?.[1];
    if (!action || !xsrf) throw new Error(`the provider's end-session page has no logout form (${page.status})`);
    const res = await go(j, new URL(action.replace(/&amp;/g, '&'), op.issuer).href, form({ xsrf, logout: 'yes' }));
    if (res.status >= 400) throw new Error(`the provider's logout answered ${res.status}`);
  } finally {
    op.provider.off('backchannel.success', ok);
    op.provider.off('backchannel.error', bad);
  }
  return outcome;
}

/** Counts the provider's successful token grants by grant type. */
export function countGrants(h: Harness): Record<string, number> {
  const counts: Record<string, number> = {};
  h.op.provider.on('grant.success', (ctx: any) => {
    const type = String(ctx.oidc?.params?.grant_type ?? 'unknown');
    counts[type] = (counts[type] ?? 0) + 1;
  });
  return counts;
}
