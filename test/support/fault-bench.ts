/**
 * A broker bench for fault injection: one harness (oidc-provider, dynalite) with one shared key
 * ring, a healthy container B, and faulty containers A made per case, each with its own DynamoDB
 * fault injector container and optionally a provider fault on its first call to a path.
 */
import { expect } from 'vitest';
import { LEASE_SECONDS } from '../../lib/broker/refresh.js';
import { generateKeyRingText } from '../../lib/crypto/key-ring.js';
import { createLogger } from '../../lib/log.js';
import type { HttpOptions } from '../../lib/oauth/http.js';
import { createRuntime } from '../../lib/runtime.js';
import { getSession, leaseState } from '../../lib/store/sessions.js';
import { createTable } from '../../lib/store/table.js';
import { localTableClient } from '../../local/dynamo.js';
import { startBrokerServer, type BrokerServer } from '../../local/http-adapter.js';
import { DynamoFaults, type FaultKind, type FaultRule, type FaultyContainer } from './dynamo-faults.js';
import { form, go, jar, loginAtProvider, NATIVE_REDIRECT, pkce, startHarness, type Harness, type HarnessOptions, type NativeLogin } from './harness.js';

/** The DynamoDB faults of the issue, as the injector names them. */
export const STORAGE_FAULTS: readonly FaultKind[] = ['throttle', 'internal', 'timeout', 'reset', 'lost-answer', 'crash-after'];
/** Provider faults: a 5xx, a timeout, a dropped connection, and the process dying once the provider has answered. */
export type ProviderFault = '503' | 'timeout' | 'reset' | 'crash-after';
export const PROVIDER_FAULTS: readonly ProviderFault[] = ['503', 'timeout', 'reset', 'crash-after'];
/** What A may answer while a fault is injected: success or a documented 502/503, never a 400 or a bare 500. */
export const DOCUMENTED = [200, 302, 303, 502, 503];

let h: Harness;
let endpoint: string;
let healthy: BrokerServer;
export const faults = new DynamoFaults();
let instances = 0;
/** Containers whose provider fault was injected. */
const injected = new Set<FaultyContainer>();

/** Starts the bench: short (90 s) access tokens, so a refresh a little later goes upstream. */
export async function startFaultBench(options: HarnessOptions = {}): Promise<{ h: Harness; healthy: BrokerServer; close(): Promise<void> }> {
  h = await startHarness({
    ...options,
    op: { accessTokenSeconds: 90, ...options.op },
    // One key ring for every container, as in a deployment.
    configure: (doc) => {
      doc['tokenEncryptionKeys'] = { value: generateKeyRingText() };
      options.configure?.(doc);
    },
    dynamoClient: (e) => {
      endpoint = e;
      return localTableClient(e);
    },
  });
  healthy = await startBrokerServer(createRuntime({
    config: h.config,
    table: createTable(h.runtime.table.name, localTableClient(endpoint)),
    log: createLogger({ sink: (l) => h.logs.push(l) }),
    now: () => Math.floor(Date.now() / 1000) + h.clockOffset,
  }), { port: 0 });
  return {
    h,
    healthy,
    async close() {
      await healthy.close();
      await h.close();
    },
  };
}

export interface Faulty {
  readonly url: string;
  readonly box: FaultyContainer;
  close(): Promise<void>;
}

/** A fresh container A with its own faulty DynamoDB client and, optionally, a faulty provider connection. */
export async function faultyInstance(rules: FaultRule[], provider?: { fault: ProviderFault; path: string }, fetchImpl?: typeof fetch): Promise<Faulty> {
  faults.clear();
  const box = faults.container(endpoint, { name: `a${++instances}` });
  faults.inject(...rules.map((r) => ({ ...r, process: box.name })));
  const http: HttpOptions = provider ? { fetch: providerFault(provider.fault, provider.path, box) } : fetchImpl ? { fetch: fetchImpl } : {};
  const server = await startBrokerServer(createRuntime({
    config: h.config,
    table: createTable(h.runtime.table.name, box.table),
    log: createLogger({ sink: (l) => h.logs.push(l) }),
    now: () => Math.floor(Date.now() / 1000) + h.clockOffset,
    http,
  }), { port: 0 });
  return { url: server.url, box, close: () => server.close() };
}

/** A fetch that injects one fault on the first call to a provider path. */
export function providerFault(fault: ProviderFault, path: string, box: FaultyContainer): typeof fetch {
  let done = false;
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    if (done || !url.pathname.endsWith(path)) return fetch(input, init);
    done = true;
    injected.add(box);
    if (fault === '503') return new Response('{"error":"temporarily_unavailable"}', { status: 503, headers: { 'content-type': 'application/json' } });
    if (fault === 'reset') throw new TypeError('fetch failed', { cause: Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }) });
    if (fault === 'timeout') {
      return new Promise<Response>((_, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)));
    }
    // The provider answers (and rotates its refresh token); the process dies before it reads it.
    const res = await fetch(input, init);
    await res.arrayBuffer();
    throw box.kill();
  }) as typeof fetch;
}

/** A native login started and completed at `url` (the provider redirects to the public URL, which any container serves). */
export async function loginAt(url: string): Promise<NativeLogin> {
  const j = jar();
  const { verifier, challenge } = pkce();
  const start = await go(j, `${url}/login?${new URLSearchParams({ client_id: 'app', redirect_uri: NATIVE_REDIRECT, state: 's', code_challenge: challenge, code_challenge_method: 'S256' })}`);
  expect(start.status).toBe(302);
  const cb = await loginAtProvider(j, start.headers.get('location')!, `${h.url}/callback`);
  const done = await go(j, cb.replace(h.url, url));
  const redirect = new URL(done.headers.get('location') ?? 'x:/');
  return { code: redirect.searchParams.get('code') ?? '', verifier, redirect, jar: j };
}

export async function redeemAt(url: string, login: NativeLogin): Promise<Response> {
  return fetch(`${url}/token`, form({ grant_type: 'authorization_code', code: login.code, code_verifier: login.verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT }));
}

export async function refreshAt(url: string, handle: string): Promise<Response> {
  return fetch(`${url}/token`, form({ grant_type: 'refresh_token', refresh_token: handle, client_id: 'app' }));
}

/** A native session, redeemed at the healthy container. */
export async function session(): Promise<{ sid: string; handle: string }> {
  const login = await loginAt(healthy.url);
  const res = await redeemAt(healthy.url, login);
  expect(res.status).toBe(200);
  const body = await res.json() as { refresh_token: string };
  return { sid: body.refresh_token.split('.')[0]!, handle: body.refresh_token };
}

/** Runs the faulty request on A; resolves its status, or undefined when A died. */
export async function onA(a: Faulty, request: () => Promise<Response>): Promise<{ status: number | undefined; body: Record<string, any> | undefined }> {
  const res = await request();
  const text = await res.text();
  if (a.box.dead) return { status: undefined, body: undefined };
  expect(DOCUMENTED, `A answered ${res.status} ${text}`).toContain(res.status);
  return { status: res.status, body: text && res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : undefined };
}

/** The app's retry: after A died, once the lease A may have held has run out. */
export function afterDeath(a: Faulty): void {
  if (a.box.dead) h.clockOffset += LEASE_SECONDS + 1;
}

/** The session lives on: a refresh with the latest handle works, and no lease is left. */
export async function expectAlive(sid: string, handle: string): Promise<void> {
  const res = await refreshAt(healthy.url, handle);
  expect(res.status, await res.clone().text()).toBe(200);
  const next = (await res.json() as { refresh_token: string }).refresh_token;
  const s = await getSession(h.runtime.table, sid);
  expect(s).toBeDefined();
  expect(leaseState(s!, h.runtime.now())).toBe('none');
  // Once more upstream, so a consumed refresh token at the provider would show.
  h.clockOffset += 60;
  const again = await refreshAt(healthy.url, next);
  expect(again.status, await again.clone().text()).toBe(200);
}

export async function withFault<T>(rules: FaultRule[], provider: { fault: ProviderFault; path: string } | undefined, run: (a: Faulty) => Promise<T>): Promise<T> {
  const a = await faultyInstance(rules, provider);
  try {
    const result = await run(a);
    // Every scripted fault actually landed on a call.
    expect(faults.pending()).toEqual([]);
    if (provider) expect(injected.has(a.box)).toBe(true);
    return result;
  } finally {
    faults.clear();
    await a.close();
    h.clockOffset = 0;
  }
}

