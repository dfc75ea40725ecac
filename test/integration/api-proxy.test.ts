/**
 * The API proxy (`/api/{api}/{path}`, CONTRACT.md "API proxy for web apps") against a real API on
 * loopback that verifies every bearer token with the provider's JWKS and tells what it received:
 * methods, paths, queries and bodies (binary ones byte for byte), the header allowlists both ways,
 * every path-escape spelling refused before any call, the browser checks, the single-flight
 * refresh, an API's `401`, an API down or slow, the body caps, and DynamoDB calls per request.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { clearApiAccessHints } from '../../lib/broker/api-access.js';
import { getSession } from '../../lib/store/sessions.js';
import { DEFAULT_BODY_BYTES } from '../../lib/proxy/limits.js';
import { REQUEST_HEADERS, RESPONSE_HEADERS } from '../../lib/proxy/headers.js';
import { rawRequest, startEchoApi, type EchoAnswer, type EchoApi } from '../support/echo-api.js';
import { browserHeaders, countGrants, freePort, go, secondInstance, startHarness, webLogin, WEB_ORIGIN, type Harness, type Jar } from '../support/harness.js';

let h: Harness;
let api: EchoApi;
let grants: Record<string, number>;
/** DynamoDB commands the broker sent, by name, in order. */
const commands: string[] = [];

beforeAll(async () => {
  api = await startEchoApi();
  const closedPort = await freePort();
  h = await startHarness({
    op: { jwtAccessTokens: true },
    configure: (doc) => {
      doc.ttl = { sessionIdleSeconds: 600 };
      doc.providers.op2 = { ...doc.providers.op };
      doc.apis = {
        echo: { url: `${api.url}/v1`, provider: 'op' },
        echo2: { url: `${api.url}/v2`, provider: 'op2' },
        slow: { url: `${api.url}/v1`, provider: 'op', timeoutSeconds: 1 },
        down: { url: `http://127.0.0.1:${closedPort}/v1`, provider: 'op' },
        small: { url: `${api.url}/v1/`, provider: 'op', maxBodyBytes: 1024 },
        unlisted: { url: `${api.url}/v1`, provider: 'op' },
      };
      doc.clients.web.providers = ['op', 'op2'];
      doc.clients.web.apis = ['echo', 'echo2', 'slow', 'down', 'small'];
      doc.clients.web.tokenDelivery = 'proxy';
      doc.clients.web2 = { type: 'web', redirectUris: ['http://127.0.0.1:6001/'], allowedOrigins: ['http://127.0.0.1:6001'], providers: ['op'], apis: ['echo'] };
    },
  });
  api.trust(h.op.issuer);
  grants = countGrants(h);
  const call = h.runtime.table.call;
  (h.runtime.table as { call: typeof call }).call = ((operation, input, options) => {
    commands.push(operation);
    return call(operation, input, options);
  }) as typeof call;
});
afterAll(async () => {
  await h.close();
  await api.close();
});
beforeEach(() => {
  h.clockOffset = 0;
});

const upstreamRefreshes = () => grants['refresh_token'] ?? 0;
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const sidOf = (j: Jar) => j.get('broker-session')!.split('.')[0]!;

/** A proxied call as a browser page makes it: the cookie, the CSRF header, the page's Origin. */
function call(j: Jar, path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<Response> {
  return go(j, `${h.url}${path}`, { ...init, headers: { ...browserHeaders, ...init.headers } });
}

async function echo(j: Jar, path: string, init: RequestInit & { headers?: Record<string, string> } = {}): Promise<EchoAnswer> {
  const res = await call(j, path, init);
  expect(res.status, await res.clone().text()).toBeLessThan(300);
  return res.json();
}

let session: Jar;
beforeAll(async () => {
  session = (await webLogin(h)).jar;
});

describe('the browser checks come first', () => {
  it('refuses a call without the CSRF header or from a foreign Origin (403), before any DynamoDB or API call', async () => {
    const before = { apiCalls: api.received.length, db: commands.length };
    const noCsrf = await go(session, `${h.url}/api/echo/things`, { headers: { origin: WEB_ORIGIN } });
    expect(noCsrf.status).toBe(403);
    expect(await noCsrf.json()).toMatchObject({ error: 'access_denied' });
    const foreign = await call(session, '/api/echo/things', { headers: { origin: 'https://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
    expect({ apiCalls: api.received.length, db: commands.length }).toEqual(before);
  });

  it('answers 401 invalid_grant and clears the cookie without a session, and for a forged one', async () => {
    const none = await fetch(`${h.url}/api/echo/things`, { headers: browserHeaders });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: 'invalid_grant' });
    expect(none.headers.getSetCookie().some((c) => /^broker-session=;/.test(c) && /Max-Age=0/.test(c))).toBe(true);
    const forged = await fetch(`${h.url}/api/echo/things`, { headers: { ...browserHeaders, cookie: `broker-session=${sidOf(session)}.${'B'.repeat(43)}` } });
    expect(forged.status).toBe(401);
    // The real session is untouched.
    expect((await call(session, '/api/echo/things')).status).toBe(200);
  });

  it('answers 404 for an API that is not configured, not the client\'s, or of another provider, without calling it', async () => {
    const before = api.received.length;
    for (const path of ['/api/nope/things', '/api/unlisted/things', '/api/echo2/things', '/api/a.b/x']) {
      const res = await call(session, path);
      expect(res.status, path).toBe(404);
      expect(await res.json()).toMatchObject({ error: 'invalid_request' });
    }
    // Another web client (tokens mode) of another origin may not use this session at all.
    const other = await call(session, '/api/echo/things', { headers: { origin: 'http://127.0.0.1:6001' } });
    expect(other.status).toBe(403);
    expect(api.received.length).toBe(before);
  });

  it('answers preflights for the allowed origins, with the methods and headers the proxy carries', async () => {
    const ok = await fetch(`${h.url}/api/echo/things/1`, {
      method: 'OPTIONS',
      headers: { origin: WEB_ORIGIN, 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-broker-csrf, content-type, if-match' },
    });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(WEB_ORIGIN);
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    expect(ok.headers.get('access-control-allow-methods')!.split(', ')).toEqual(expect.arrayContaining(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE']));
    expect(ok.headers.get('access-control-allow-headers')!.split(', ')).toEqual(['x-broker-csrf', ...REQUEST_HEADERS]);
    const bad = await fetch(`${h.url}/api/echo/things/1`, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'PUT' } });
    expect(bad.status).toBe(403);
    expect(bad.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('paths, queries, methods and bodies', () => {
  it('carries every method with its path, query and body to the API\'s url', async () => {
    for (const method of ['GET', 'POST', 'PUT', 'PATCH', 'DELETE']) {
      const body = method === 'GET' ? undefined : JSON.stringify({ method, n: 1 });
      const got = await echo(session, `/api/echo/things/a%20b/caf%C3%A9;v=1?x=1&y=%2F&z=a+b&x=2`, {
        method, ...(body ? { body, headers: { 'content-type': 'application/json' } } : {}),
      });
      expect(got).toMatchObject({ method, path: '/v1/things/a%20b/caf%C3%A9;v=1', query: 'x=1&y=%2F&z=a+b&x=2' });
      expect(Buffer.from(got.body.base64, 'base64').toString()).toBe(body ?? '');
      expect(got.token).toMatchObject({ sub: 'alice', aud: 'urn:broker:demo-api', iss: h.op.issuer });
    }
    const head = await call(session, '/api/echo/things', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.headers.get('etag')).toBe('"v1"');
    expect(api.received.at(-1)).toEqual({ method: 'HEAD', url: '/v1/things' });
  });

  it('joins a url with a trailing slash without doubling it', async () => {
    expect((await echo(session, '/api/small/things')).path).toBe('/v1/things');
  });

  it('passes binary bodies byte for byte, both ways', async () => {
    const every = Buffer.from(Array.from({ length: 512 }, (_, i) => i % 256));
    const random = randomBytes(1024 * 1024 + 7);
    for (const bytes of [every, random]) {
      const res = await call(session, '/api/echo/mirror', { method: 'POST', body: bytes, headers: { 'content-type': 'application/octet-stream' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
      const back = Buffer.from(await res.arrayBuffer());
      expect(back.length).toBe(bytes.length);
      expect(back.equals(bytes)).toBe(true);
    }
    const n = 300_000;
    const bytes = Buffer.from(await (await call(session, `/api/echo/bytes?n=${n}`)).arrayBuffer());
    expect(bytes.length).toBe(n);
    expect(bytes.every((b, i) => b === i % 256)).toBe(true);
  });

  it('undoes a content coding the API used although asked for none', async () => {
    const res = await call(session, '/api/echo/gzip');
    expect(res.headers.get('content-encoding')).toBeNull();
    expect(await res.json()).toEqual({ zipped: true, sub: 'alice' });
    expect(api.received.length).toBeGreaterThan(0);
  });

  it('refuses TRACE (it would echo the token back) and other methods it does not carry (405), before any call', async () => {
    const before = { apiCalls: api.received.length, db: commands.length };
    for (const method of ['TRACE', 'PROPFIND', 'LINK']) {
      const res = await rawRequest(h.url, '/api/echo/x', { method, headers: { ...browserHeaders, cookie: session.header(h.url) } });
      expect(res.status, method).toBe(405);
      // RFC 9110 §15.5.6: a 405 says what is allowed.
      expect(res.headers['allow'], method).toBe('GET, HEAD, POST, PUT, PATCH, DELETE');
    }
    expect({ apiCalls: api.received.length, db: commands.length }).toEqual(before);
  });

  it('refuses every path-escape spelling (400) before any DynamoDB or API call', async () => {
    const escapes = [
      '/api/echo/..', '/api/echo/../x', '/api/echo/a/../../x', '/api/echo/./x', '/api/echo/a/.',
      '/api/echo/%2e%2e/x', '/api/echo/%2E%2E/x', '/api/echo/.%2e/x', '/api/echo/%2e./x', '/api/echo/%2e/x',
      '/api/echo/%252e%252e/x', '/api/echo/%25252e%25252e/x',
      '/api/echo/a%2Fb', '/api/echo/a%2fb', '/api/echo/a%252Fb', '/api/echo/%2F%2Fevil.example/x',
      '/api/echo/a%5Cb', '/api/echo/a%5cb', '/api/echo/a\\b', '/api/echo/\\\\evil.example/x',
      '/api/echo/a%00b', '/api/echo/a%0Ab', '/api/echo/%09',
      '/api/echo//evil.example/x', '/api/echo//', '/api/echo/', '/api/echo',
      // as servers behind an API may read dots: Java's ;params, Windows' trailing dots and spaces
      '/api/echo/..;/x', '/api/echo/%2e%2e;/x', '/api/echo/..;x=1/x', '/api/echo/..%20/x', '/api/echo/...',
    ];
    // A proxy's absolute-form request line (`GET http://host/api/...`) is checked as sent too.
    const absolute = ['/api/echo/%2e%2e/x', '/api/echo/../x', '/api/echo/a\\..\\..\\x', '/api/echo/a\\b', '/api/echo/%2e%2E/%2e%2e/session'].map((path) => `${h.url}${path}`);
    const before = { apiCalls: api.received.length, db: commands.length };
    for (const path of [...escapes, ...absolute]) {
      const res = await rawRequest(h.url, path, { headers: { ...browserHeaders, cookie: session.header(h.url) } });
      expect(res.status, path).toBe(400);
      expect(res.json(), path).toMatchObject({ error: 'invalid_request' });
    }
    expect({ apiCalls: api.received.length, db: commands.length }).toEqual(before);
  });
});

describe('headers', () => {
  it('sends only the allowlisted request headers, and the session\'s token as the only Authorization', async () => {
    const sent: Record<string, string> = {
      accept: 'application/json', 'accept-language': 'de', 'content-type': 'text/plain', 'content-language': 'de',
      'if-match': '"a"', 'if-none-match': '"b"', 'if-modified-since': 'Thu, 01 Jan 2026 00:00:00 GMT',
      'if-unmodified-since': 'Thu, 01 Jan 2026 00:00:00 GMT', range: 'bytes=0-1', 'x-request-id': 'req-1',
      // None of these may reach the API.
      authorization: 'Bearer from-the-browser', 'x-broker-csrf': '1', 'x-broker-anything': 'x', 'x-custom': 'x',
      referer: `${WEB_ORIGIN}/page`, 'user-agent': 'browser', 'x-forwarded-for': '10.0.0.1', 'accept-encoding': 'gzip',
    };
    const got = await echo(session, '/api/echo/things', { method: 'POST', body: 'hello', headers: { ...sent, cookie: 'other-site=1' } });
    for (const name of REQUEST_HEADERS) expect(got.headers[name], name).toBe(sent[name]);
    const extra = Object.keys(got.headers).filter((name) => !REQUEST_HEADERS.includes(name)).sort();
    // What HTTP itself needs, the broker's token and its `identity` coding: nothing of the browser's.
    expect(extra).toEqual(['accept-encoding', 'authorization', 'connection', 'content-length', 'host']);
    expect(got.headers['accept-encoding']).toBe('identity');
    expect(got.token.sub).toBe('alice');
    expect(JSON.stringify(got)).not.toMatch(/from-the-browser|other-site|broker-session/);
  });

  it('passes back only the allowlisted response headers, never Set-Cookie, with the broker\'s CORS headers', async () => {
    const res = await call(session, '/api/echo/things', { headers: { 'x-request-id': 'r-7' } });
    const names: string[] = [];
    res.headers.forEach((_v, k) => names.push(k));
    for (const name of RESPONSE_HEADERS) expect(names, name).toContain(name);
    expect(res.headers.getSetCookie()).toEqual([]);
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('strict-transport-security')).toBeNull();
    expect(res.headers.get('x-request-id')).toBe('r-7');
    expect(res.headers.get('access-control-allow-origin')).toBe(WEB_ORIGIN);
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-expose-headers')!.split(', ')).toEqual(expect.arrayContaining(['etag', 'location', 'www-authenticate', 'x-request-id', 'content-range']));
    // No caching rules from the API: none at all.
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect((await call(session, '/api/echo/cached')).headers.get('cache-control')).toBe('max-age=60');
  });

  it('passes the API\'s statuses and bodies through, errors included', async () => {
    for (const status of [201, 204, 304, 400, 403, 404, 409, 500, 503]) {
      const res = await call(session, `/api/echo/status/${status}`);
      expect(res.status).toBe(status);
      if (status !== 204 && status !== 304) expect(await res.json()).toEqual({ status });
    }
  });
});

describe('the token', () => {
  it('costs one DynamoDB call while it is fresh: a read, or the write that moves the idle expiry when that is due', async () => {
    const { jar } = await webLogin(h);
    clearApiAccessHints();
    const count = async (path: string) => {
      const before = commands.length;
      expect((await call(jar, path)).status).toBe(200);
      return commands.slice(before);
    };
    expect(await count('/api/echo/a')).toEqual(['GetItem']);
    expect(await count('/api/echo/a')).toEqual(['GetItem']);
    // The idle expiry moves at most every 60 s here (a tenth of the 600 s idle time).
    h.clockOffset = 61;
    expect(await count('/api/echo/a')).toEqual(['UpdateItem']);
    expect(await count('/api/echo/a')).toEqual(['GetItem']);
    const s = await getSession(h.runtime.table, sidOf(jar));
    expect(s!.idleExpiresAt).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000) + 61 + 600 - 2);
    // A container that has not seen the session reads first, and writes only when due.
    clearApiAccessHints();
    h.clockOffset = 130;
    expect(await count('/api/echo/a')).toEqual(['GetItem', 'UpdateItem']);
  });

  it('refreshes a due token once for any number of concurrent calls, and sends the new one', async () => {
    const { jar } = await webLogin(h);
    const first = await echo(jar, '/api/echo/t');
    const before = upstreamRefreshes();
    h.clockOffset = 290;
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => call(jar, `/api/echo/t/${i}`)));
    expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(upstreamRefreshes() - before).toBe(1);
    const jtis = new Set((await Promise.all(answers.map((r) => r.json() as Promise<EchoAnswer>))).map((a) => a.token.jti));
    expect(jtis.size).toBe(1);
    expect(jtis.has(first.token.jti)).toBe(false);
  });

  it('shares that one refresh with /refresh and with another container: one upstream call for all of them', async () => {
    const other = await secondInstance(h);
    try {
      const { jar } = await webLogin(h);
      await echo(jar, '/api/echo/t');
      const before = upstreamRefreshes();
      h.clockOffset = 290;
      const [a, b, c, d] = await Promise.all([
        call(jar, '/api/echo/t/a'),
        go(jar, `${other.url}/api/echo/t/b`, { headers: browserHeaders }),
        go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders }),
        go(jar, `${other.url}/refresh`, { method: 'POST', headers: browserHeaders }),
      ]);
      expect([a, b, c, d].map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(upstreamRefreshes() - before).toBe(1);
      const [ja, jb] = await Promise.all([a.json(), b.json()]) as EchoAnswer[];
      expect(ja!.token.jti).toBe(jb!.token.jti);
      // Proxy mode: /refresh says how long the new token lives, and nothing more.
      expect(Object.keys(await c.json())).toEqual(['expires_in']);
    } finally {
      await other.close();
    }
  });

  it('never hands the page a header in which the API echoes the token it was sent', async () => {
    const { jar } = await webLogin(h);
    const res = await call(jar, '/api/echo/tattle');
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBeNull();
    expect(res.headers.get('x-request-id')).toBe('r1');
  });

  it('treats an API 401 as a spent token: the 401 goes back, and the next call refreshes upstream and sends a new token', async () => {
    const { jar } = await webLogin(h);
    const first = await echo(jar, '/api/echo/x');
    api.revoked.add(first.token.jti);
    const before = upstreamRefreshes();
    const refused = await call(jar, '/api/echo/x');
    expect(refused.status).toBe(401);
    expect(refused.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"');
    expect(await refused.json()).toEqual({ message: 'token refused' });
    // The cookie stays: it is the API's 401, not the end of the session.
    expect(refused.headers.getSetCookie()).toEqual([]);
    const s = await getSession(h.runtime.table, sidOf(jar));
    expect(s!.atExpiresAt).toBeLessThan(Math.floor(Date.now() / 1000));
    const next = await echo(jar, '/api/echo/x');
    expect(next.token.jti).not.toBe(first.token.jti);
    expect(upstreamRefreshes() - before).toBe(1);
    expect(h.logs.some((l) => /"event":"proxy.token_spent".*"outcome":"marked"/.test(l))).toBe(true);
  });

  it('marks a token spent at most every 30 s: an API refusing every token cannot make every call an upstream refresh', async () => {
    const { jar } = await webLogin(h);
    await echo(jar, '/api/echo/x');
    const before = upstreamRefreshes();
    for (let i = 0; i < 3; i++) expect((await call(jar, '/api/echo/status/401')).status).toBe(401);
    // The first 401 marked the token; the refresh it caused replaced it; the next 401s came too soon.
    expect(upstreamRefreshes() - before).toBe(1);
    expect(h.logs.some((l) => /"event":"proxy.token_spent".*"outcome":"recent"/.test(l))).toBe(true);
  });
});

describe('an API that fails', () => {
  it('answers 502 (JSON) for an API that cannot be reached, and keeps the session', async () => {
    const res = await call(session, '/api/down/things');
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({ error: 'server_error' });
    expect(res.headers.get('access-control-allow-origin')).toBe(WEB_ORIGIN);
    expect((await call(session, '/api/echo/things')).status).toBe(200);
  });

  it('answers 504 (JSON) for an API that does not answer in time', async () => {
    const res = await call(session, '/api/slow/slow?ms=3000');
    expect(res.status).toBe(504);
    expect(await res.json()).toMatchObject({ error: 'temporarily_unavailable' });
    expect((await call(session, '/api/slow/slow?ms=10')).status).toBe(200);
  });

  it('caps bodies both ways: a larger request is 413 and never sent, a larger answer is 502', async () => {
    const before = api.received.length;
    const big = await call(session, '/api/small/mirror', { method: 'POST', body: Buffer.alloc(1025, 1) });
    expect(big.status).toBe(413);
    expect(await big.json()).toMatchObject({ error: 'invalid_request' });
    expect(api.received.length).toBe(before);
    expect((await call(session, '/api/small/mirror', { method: 'POST', body: Buffer.alloc(1024, 1) })).status).toBe(200);
    const answer = await call(session, '/api/small/bytes?n=1025');
    expect(answer.status).toBe(502);
    expect(await answer.json()).toMatchObject({ error: 'server_error' });
    // The default cap: 4 MiB.
    const sent = api.received.length;
    expect((await call(session, '/api/echo/mirror', { method: 'POST', body: Buffer.alloc(DEFAULT_BODY_BYTES + 1) })).status).toBe(413);
    expect(api.received.length).toBe(sent);
    const most = randomBytes(DEFAULT_BODY_BYTES);
    const full = await call(session, '/api/echo/mirror', { method: 'POST', body: most });
    expect(full.status).toBe(200);
    expect(full.headers.get('x-body-sha256')).toBeNull(); // not on the allowlist
    expect(sha256(Buffer.from(await full.arrayBuffer()))).toBe(sha256(most));
  });
});

describe('logs', () => {
  it('name the method, the API, the status and the times, never a path, a query value or a token', async () => {
    const { jar } = await webLogin(h);
    await echo(jar, '/api/echo/private-path-name?q=secret-query-value');
    const lines = h.logs.filter((l) => l.includes('"event":"proxy.call"')).map((l) => JSON.parse(l));
    expect(lines.at(-1)).toMatchObject({ api: 'echo', method: 'GET', status: 200, ApiCalls: 1, Api2xx: 1, Api: 'echo', route: 'GET /api/{proxy+}' });
    expect(typeof lines.at(-1).ms).toBe('number');
    expect(typeof lines.at(-1).ApiLatency).toBe('number');
    const all = h.logs.join('\n');
    expect(all).not.toContain('secret-query-value');
    expect(all).not.toContain('private-path-name');
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ/);
  });
});
