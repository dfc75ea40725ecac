/**
 * Regression tests for the eight failures of issue 8 ("No session lost to a fault"), each named
 * after it. Container A is the faulty one; B is another, healthy container.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parseLoginResult } from '../../lib/broker/downstream.js';
import { LEASE_SECONDS, REJECTION_WINDOW_SECONDS } from '../../lib/broker/refresh.js';
import { UpstreamMalformedError } from '../../lib/errors.js';
import { getSession, leaseState } from '../../lib/store/sessions.js';
import { afterDeath, expectAlive, faults, faultyInstance, loginAt, onA, redeemAt, refreshAt, session, startFaultBench, withFault } from '../support/fault-bench.js';
import { form, go, jar, NATIVE_REDIRECT, pkce, type Harness } from '../support/harness.js';
import type { BrokerServer } from '../../local/http-adapter.js';

let h: Harness;
let healthy: BrokerServer;
let close: () => Promise<void>;
/** Upstream refreshes the provider answered. */
let upstreamRefreshes = 0;
beforeAll(async () => {
  ({ h, healthy, close } = await startFaultBench());
  h.op.provider.on('grant.success', (ctx: unknown) => {
    if ((ctx as { oidc: { params?: { grant_type?: string } } }).oidc.params?.grant_type === 'refresh_token') upstreamRefreshes++;
  });
});
afterAll(() => close());
afterEach(() => {
  h.clockOffset = 0;
});

const STALE = 60; // the 90 s access token has at most 60 s (ttl.minAccessTokenSeconds) left

describe('1. a container killed while it holds the refresh lease', () => {
  it('regression: the app\'s retries with its handle take the abandoned lease over, also after the grace window, never "theft"', async () => {
    const { sid, handle } = await session();
    h.clockOffset = STALE;
    await withFault([{ op: 'UpdateItem', key: 'session#*', nth: 1, fault: 'crash-after' }], undefined, async (a) => {
      expect((await onA(a, () => refreshAt(a.url, handle))).status).toBeUndefined();
      // The rotation was never handed out: the presented handle is still the valid one.
      const s = await getSession(h.runtime.table, sid);
      expect(s?.prevHandleHash).toBeDefined();
      // The app comes back well after both the lease and the grace window (30 s).
      h.clockOffset += 45;
      const retry = await refreshAt(healthy.url, handle);
      expect(retry.status, await retry.clone().text()).toBe(200);
      expect(retry.headers.get('x-broker-token-source')).toBe('upstream');
      await expectAlive(sid, (await retry.json() as { refresh_token: string }).refresh_token);
    });
  });
});

describe('2. a lost answer on the rotation write', () => {
  it('regression: the SDK\'s retry of the applied claim is the request\'s own lease, not a concurrent one to wait on', async () => {
    const { sid, handle } = await session();
    h.clockOffset = STALE;
    const before = upstreamRefreshes;
    await withFault([{ op: 'UpdateItem', key: 'session#*', nth: 1, fault: 'lost-answer' }], undefined, async (a) => {
      const first = await onA(a, () => refreshAt(a.url, handle));
      expect(first.status).toBe(200);
      expect(upstreamRefreshes - before).toBe(1);
      await expectAlive(sid, first.body!['refresh_token']);
    });
  });
});

describe('3. a storage error on the lease holder\'s final write, or on releaseLease', () => {
  it('regression: the final write is retried before the request gives up, so the rotated refresh token is stored', async () => {
    const { sid, handle } = await session();
    h.clockOffset = STALE;
    // Every SDK attempt of the first final write fails; the broker's own retry then succeeds.
    await withFault([{ op: 'UpdateItem', expression: 'leaseOwner = :o', nth: 1, fault: 'internal' }], undefined, async (a) => {
      const first = await onA(a, () => refreshAt(a.url, handle));
      expect(first.status).toBe(200);
      await expectAlive(sid, first.body!['refresh_token']);
    });
  });

  it('regression: a failed release leaves the presented handle valid; the retry takes the lease over', async () => {
    const { sid, handle } = await session();
    h.clockOffset = STALE;
    // The provider is down (503), and the release after it fails too.
    await withFault([{ op: 'UpdateItem', expression: 'leaseOwner = :o', nth: 1, fault: 'internal' }], { fault: '503', path: '/token' }, async (a) => {
      expect((await onA(a, () => refreshAt(a.url, handle))).status).toBe(503);
      h.clockOffset += LEASE_SECONDS + 30;
      const retry = await refreshAt(healthy.url, handle);
      expect(retry.status, await retry.clone().text()).toBe(200);
      await expectAlive(sid, (await retry.json() as { refresh_token: string }).refresh_token);
    });
  });
});

describe('4. code redemption revoking its own session', () => {
  it('regression: a spent code presented with another client, no verifier match or another redirect URI ends nothing', async () => {
    const login = await loginAt(healthy.url);
    const first = await redeemAt(healthy.url, login);
    expect(first.status).toBe(200);
    const { refresh_token: handle } = await first.json() as { refresh_token: string };
    const thief = (fields: Record<string, string>) => fetch(`${healthy.url}/token`, form({
      grant_type: 'authorization_code', code: login.code, code_verifier: login.verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT, ...fields,
    }));
    for (const res of [await thief({ code_verifier: pkce().verifier }), await thief({ client_id: 'other', redirect_uri: 'com.example.other:/cb' }), await thief({ redirect_uri: 'http://127.0.0.1/cb' })]) {
      expect(res.status).toBe(400);
      expect((await res.json()).error).toBe('invalid_grant');
    }
    await expectAlive(handle.split('.')[0]!, handle);
  });

  it('regression: the SDK\'s retry of the app\'s own applied redemption succeeds', async () => {
    const login = await loginAt(healthy.url);
    await withFault([{ op: 'UpdateItem', key: 'session#*', nth: 1, fault: 'lost-answer' }], undefined, async (a) => {
      const first = await onA(a, () => redeemAt(a.url, login));
      expect(first.status).toBe(200);
      await expectAlive(first.body!['refresh_token'].split('.')[0], first.body!['refresh_token']);
    });
  });

  it('a second use of a code that was answered is still denied, and revokes the session (RFC 6749 §4.1.2)', async () => {
    const login = await loginAt(healthy.url);
    const first = await redeemAt(healthy.url, login);
    const { refresh_token: handle } = await first.json() as { refresh_token: string };
    const again = await redeemAt(healthy.url, login);
    expect(again.status).toBe(400);
    expect((await refreshAt(healthy.url, handle)).status).toBe(400);
  });
});

describe('5. a 503 during redemption spends the code', () => {
  it('regression: a failed follow-up refresh leaves the code redeemable', async () => {
    const login = await loginAt(healthy.url);
    h.clockOffset = 40; // the stored token is due at redemption; the code (60 s) is not expired
    await withFault([], { fault: '503', path: '/token' }, async (a) => {
      expect((await onA(a, () => redeemAt(a.url, login))).status).toBe(503);
      const retry = await redeemAt(healthy.url, login);
      expect(retry.status, await retry.clone().text()).toBe(200);
      const handle = (await retry.json() as { refresh_token: string }).refresh_token;
      await expectAlive(handle.split('.')[0]!, handle);
    });
  });
});

describe('6. GET /login answered 500 under storage faults', () => {
  it('regression: the SDK\'s retry of an applied login PutItem is the request\'s own write: the login goes on', async () => {
    await withFault([{ op: 'PutItem', key: 'login#*', fault: 'lost-answer' }], undefined, async (a) => {
      const { challenge } = pkce();
      const res = await go(jar(), `${a.url}/login?${new URLSearchParams({ client_id: 'app', redirect_uri: NATIVE_REDIRECT, code_challenge: challenge, code_challenge_method: 'S256' })}`);
      expect(res.status).toBe(302);
      expect(new URL(res.headers.get('location')!).origin).toBe(new URL(h.op.issuer).origin);
    });
  });
});

describe('7. a provider answering a refresh with a bare 400', () => {
  /** A container whose provider answers every refresh with `answer()`. */
  async function answering(answer: () => Response) {
    return faultyInstance([], undefined, (async (input: RequestInfo | URL, init?: RequestInit) => {
      const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
      if (url.pathname.endsWith('/token')) return answer();
      return fetch(input, init);
    }) as typeof fetch);
  }
  /** A bare 400 (no OAuth error body). */
  const bare400 = () => answering(() => new Response('Bad Request', { status: 400, headers: { 'content-type': 'text/plain' } }));
  /** An OAuth error. */
  const oauthError = (status: number, error: string) => answering(() => Response.json({ error, error_description: 'token is expired' }, { status }));

  it('regression: one glitch, or a burst within minutes, is a 502 and the session survives', async () => {
    const { sid, handle } = await session();
    h.clockOffset = STALE;
    const a = await bare400();
    try {
      for (let i = 0; i < 4; i++) {
        const res = await refreshAt(a.url, handle);
        expect(res.status).toBe(502);
        expect((await res.json()).error).toBe('server_error');
      }
    } finally {
      await a.close();
    }
    // The provider recovers: the session is there, and a success clears the count.
    await expectAlive(sid, handle);
    expect((await getSession(h.runtime.table, sid))?.rejectedCount).toBeUndefined();
  });

  it.each([
    ['regression: bare 400s', bare400],
    // An expired refresh token by another name: ownCloud LibreGraph Connect answers invalid_request.
    ['400 invalid_request', () => oauthError(400, 'invalid_request')],
    ['400 invalid_token', () => oauthError(400, 'invalid_token')],
  ])('%s, repeated over ten minutes, end the session cleanly (invalid_grant)', async (_name, provider) => {
    const { sid, handle } = await session();
    h.clockOffset = STALE;
    const a = await provider();
    try {
      expect((await refreshAt(a.url, handle)).status).toBe(502);
      h.clockOffset += 60;
      expect((await refreshAt(a.url, handle)).status).toBe(502);
      h.clockOffset += REJECTION_WINDOW_SECONDS;
      const last = await refreshAt(a.url, handle);
      expect(last.status).toBe(400);
      expect((await last.json()).error).toBe('invalid_grant');
    } finally {
      await a.close();
    }
    expect(await getSession(h.runtime.table, sid)).toBeUndefined();
  });

  it('a refusal of the client or of the configuration (Keycloak\'s 401 unauthorized_client, invalid_scope, ...) never counts: a configuration at fault ends no session', async () => {
    for (const [status, error] of [
      [401, 'unauthorized_client'], [401, 'invalid_client'], [400, 'invalid_client'], [400, 'access_denied'], [400, 'invalid_scope'],
      [400, 'unsupported_grant_type'], [400, 'unauthorized_client'], [401, 'invalid_request'], [429, 'slow_down'],
    ] as const) {
      const { sid, handle } = await session();
      h.clockOffset = STALE;
      const a = await oauthError(status, error);
      try {
        for (let i = 0; i < 3; i++) {
          // 502 for a refusal, 503 for 429 (the provider is busy).
          expect((await refreshAt(a.url, handle)).status, `${status} ${error}`).toBe(status === 429 ? 503 : 502);
          h.clockOffset += REJECTION_WINDOW_SECONDS;
        }
      } finally {
        await a.close();
      }
      h.clockOffset = 0;
      expect((await getSession(h.runtime.table, sid))?.rejectedCount, `${status} ${error}`).toBeUndefined();
    }
  });
});

describe('8. the XProtect answer parser', () => {
  it('regression: unclosed LoginResult tags are refused in linear time, not 7.5 s of backtracking', () => {
    for (const size of [256 * 1024, 4 * 1024 * 1024]) {
      const hostile = '<s:Envelope><s:Body><LoginResponse>' + '<LoginResult>'.repeat(size / 13) + '<Token>t</Token>';
      expect(() => parseLoginResult(200, hostile)).toThrow(UpstreamMalformedError);
      const nested = '<LoginResult><Token>' + '<TimeToLive><MicroSeconds>'.repeat(size / 26);
      expect(() => parseLoginResult(200, nested)).toThrow(UpstreamMalformedError);
    }
  });
});

describe('no lease outlives its request', () => {
  it('after a provider outage the lease is released at once and the rotation rolled back', async () => {
    const { sid, handle } = await session();
    h.clockOffset = STALE;
    await withFault([], { fault: '503', path: '/token' }, async (a) => {
      expect((await onA(a, () => refreshAt(a.url, handle))).status).toBe(503);
      const s = await getSession(h.runtime.table, sid);
      expect(leaseState(s!, h.runtime.now())).toBe('none');
      expect(s!.handleGen).toBe(1);
      afterDeath(a);
    });
  });
});

describe('DynamoDB round trips stay at the fewest', () => {
  it('login 1 write; callback 1 take + 1 write; redemption 1; stored refresh 1; upstream refresh 2', async () => {
    const counted = async (run: (url: string) => Promise<void>): Promise<string[]> => {
      const a = await faultyInstance([]);
      try {
        faults.calls.length = 0;
        await run(a.url);
        return faults.calls.filter((c) => c.process === a.box.name).map((c) => c.op);
      } finally {
        await a.close();
      }
    };
    let login!: Awaited<ReturnType<typeof loginAt>>;
    let handle = '';
    // The login and callback both at container A.
    expect(await counted(async (url) => {
      login = await loginAt(url);
    })).toEqual(['PutItem', 'UpdateItem', 'PutItem']);
    expect(await counted(async (url) => {
      const res = await redeemAt(url, login);
      handle = (await res.json() as { refresh_token: string }).refresh_token;
    })).toEqual(['UpdateItem']);
    expect(await counted(async (url) => {
      const res = await refreshAt(url, handle);
      expect(res.headers.get('x-broker-token-source')).toBe('stored');
      handle = (await res.json() as { refresh_token: string }).refresh_token;
    })).toEqual(['UpdateItem']);
    h.clockOffset = STALE;
    expect(await counted(async (url) => {
      const res = await refreshAt(url, handle);
      expect(res.headers.get('x-broker-token-source')).toBe('upstream');
    })).toEqual(['UpdateItem', 'UpdateItem']);
  });
});
