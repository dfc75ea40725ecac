/**
 * (v2) Back-channel logout: every check of OIDC Back-Channel Logout 1.0 §2.6 refuses with
 * `400 invalid_request` and ends nothing; a replayed `jti` too; a provider without the setting is
 * `404`; the SDK retrying an applied write never turns a valid logout into a refusal; storage
 * trouble lets the provider's retry through; a refresh in flight does not bring an ended session
 * back.
 */
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { generateKeyPair, SignJWT, UnsecuredJWT, type JWTPayload } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BACKCHANNEL_LOGOUT_EVENT } from '../../lib/oauth/logout-token.js';
import { getSession } from '../../lib/store/sessions.js';
import { DynamoFaults, type FaultyContainer } from '../support/dynamo-faults.js';
import {
  browserHeaders, go, jar, nativeLogin, redeem, refreshNative, startHarness, webLogin, type Harness, type Jar,
} from '../support/harness.js';

const sidOf = (credential: string) => credential.split('.')[0]!;

async function nativeSession(h: Harness, user = 'alice'): Promise<string> {
  const login = await nativeLogin(h, { user });
  const res = await redeem(h, login);
  expect(res.status).toBe(200);
  return ((await res.json()) as { refresh_token: string }).refresh_token;
}

/** A logout token as `op` signs them; `over` replaces claims (`undefined` removes one). */
function logoutClaims(h: Harness, over: Record<string, unknown> = {}): JWTPayload {
  const now = Math.floor(Date.now() / 1000) + h.clockOffset;
  const claims: Record<string, unknown> = {
    iss: h.op.issuer, aud: 'broker', iat: now, exp: now + 120, jti: randomUUID(), events: { [BACKCHANNEL_LOGOUT_EVENT]: {} }, sub: 'alice', ...over,
  };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return claims as JWTPayload;
}

async function signAsProvider(h: Harness, claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: h.op.signingKey.kid, typ: 'logout+jwt', ...header }).sign(h.op.signingKey.privateKey);
}

function post(h: Harness, body: Record<string, string> | string, provider = 'op', contentType = 'application/x-www-form-urlencoded'): Promise<Response> {
  return fetch(`${h.url}/backchannel-logout/${provider}`, {
    method: 'POST',
    headers: { 'content-type': contentType },
    body: typeof body === 'string' ? body : new URLSearchParams(body).toString(),
  });
}

async function expectRefused(res: Response, description: RegExp): Promise<void> {
  expect(res.status).toBe(400);
  expect(res.headers.get('cache-control')).toBe('no-store');
  const body = (await res.json()) as { error: string; error_description: string };
  expect(body.error).toBe('invalid_request');
  // RFC 6749 §5.2: no `"` in an error_description; the broker quotes names with '.
  expect(body.error_description).not.toMatch(/["\\]/);
  expect(body.error_description).toMatch(new RegExp(description.source.replace(/"/g, "'"), description.flags));
}

describe('refused logout tokens end nothing', () => {
  let h: Harness;
  let handle: string;
  let browser: Jar;
  beforeAll(async () => {
    h = await startHarness({ backchannel: {} });
    handle = await nativeSession(h);
    browser = (await webLogin(h)).jar;
  });
  afterAll(async () => h?.close());

  /** After each refusal alice's sessions, which every hostile token names by `sub`, are still there. */
  afterEach(async () => {
    expect(await getSession(h.runtime.table, sidOf(handle))).toBeDefined();
    expect(await getSession(h.runtime.table, sidOf(browser.get('broker-session')!))).toBeDefined();
  });

  it('the form: no logout_token, two, another content type, garbage', async () => {
    await expectRefused(await post(h, {}), /"logout_token" is required/);
    const token = await signAsProvider(h, logoutClaims(h));
    await expectRefused(await post(h, `logout_token=${token}&logout_token=${token}`), /must not be repeated/);
    await expectRefused(await post(h, JSON.stringify({ logout_token: token }), 'op', 'application/json'), /x-www-form-urlencoded/);
    await expectRefused(await post(h, { logout_token: 'not-a-jwt' }), /not a signed JWT/);
    await expectRefused(await post(h, { logout_token: 'a.b.c.d.e' }), /not a signed JWT/);
  });

  it('a bad signature: another key under the provider\'s kid, a key the provider never published, a changed payload', async () => {
    const { privateKey } = await generateKeyPair('RS256');
    await expectRefused(await post(h, { logout_token: await new SignJWT(logoutClaims(h)).setProtectedHeader({ alg: 'RS256', kid: h.op.signingKey.kid, typ: 'logout+jwt' }).sign(privateKey) }), /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
    await expectRefused(await post(h, { logout_token: await new SignJWT(logoutClaims(h)).setProtectedHeader({ alg: 'RS256', kid: 'attacker', typ: 'logout+jwt' }).sign(privateKey) }), /ERR_JWKS_NO_MATCHING_KEY/);
    const [header, , signature] = (await signAsProvider(h, logoutClaims(h, { sub: 'nobody' }))).split('.');
    const forged = `${header}.${Buffer.from(JSON.stringify(logoutClaims(h))).toString('base64url')}.${signature}`;
    await expectRefused(await post(h, { logout_token: forged }), /ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
  });

  it('alg none, HS256 with the client secret as its key, and an algorithm the provider does not advertise', async () => {
    await expectRefused(await post(h, { logout_token: new UnsecuredJWT(logoutClaims(h)).encode() }), /not signed \("alg" is "none"/);
    const hs = await new SignJWT(logoutClaims(h)).setProtectedHeader({ alg: 'HS256', typ: 'logout+jwt' }).sign(new TextEncoder().encode(h.secret));
    await expectRefused(await post(h, { logout_token: hs }), /signed with "HS256", not an asymmetric algorithm the provider advertises/);
    const { privateKey } = await generateKeyPair('ES256');
    const es = await new SignJWT(logoutClaims(h)).setProtectedHeader({ alg: 'ES256', kid: h.op.signingKey.kid }).sign(privateKey);
    await expectRefused(await post(h, { logout_token: es }), /signed with "ES256"/);
  });

  it('typ other than logout+jwt or JWT (at+jwt); absent, application/logout+jwt or the JWT of Keycloak before 25 is fine', async () => {
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h), { typ: 'at+jwt' }) }), /"typ" other than "logout\+jwt" or "JWT"/);
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { sub: 'nobody' }), { typ: 'JWT' }) })).status).toBe(200);
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { sub: 'nobody' }), { typ: undefined }) })).status).toBe(200);
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { sub: 'nobody' }), { typ: 'application/logout+JWT' }) })).status).toBe(200);
  });

  it('wrong iss, wrong aud (also as a list without the broker)', async () => {
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { iss: 'http://127.0.0.2:1' })) }), /"iss" check/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { aud: 'someone-else' })) }), /"aud" check/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { aud: ['a', 'b'] })) }), /"aud" check/);
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { aud: ['other', 'broker'], sub: 'nobody' })) })).status).toBe(200);
  });

  it('iat missing, more than 5 minutes old, more than 60 s ahead; exp passed', async () => {
    const now = Math.floor(Date.now() / 1000);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { iat: undefined })) }), /"iat"/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { iat: 'yesterday' })) }), /"iat"/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { iat: now - 320, exp: now + 600 })) }), /"iat" is more than 300 s old/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { iat: now + 90, exp: now + 600 })) }), /"iat" is more than 60 s in the future/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { iat: now - 200, exp: now - 100 })) }), /expired \("exp"\)/);
    // Within the windows: accepted.
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { iat: now - 280, exp: undefined, sub: 'nobody' })) })).status).toBe(200);
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { iat: now + 40, sub: 'nobody' })) })).status).toBe(200);
  });

  it('jti missing or empty', async () => {
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { jti: undefined })) }), /no "jti"/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { jti: '' })) }), /"jti" is not a non-empty string/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { jti: 42 })) }), /"jti"/);
  });

  it('a replayed jti: the first use is served, every later one refused, also with another sub', async () => {
    const jti = randomUUID();
    const token = await signAsProvider(h, logoutClaims(h, { jti, sub: 'nobody' }));
    const first = await post(h, { logout_token: token });
    expect(first.status).toBe(200);
    await expectRefused(await post(h, { logout_token: token }), /used before \("jti"\)/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { jti })) }), /used before/);
  });

  it('events missing, without the back-channel logout member, or with a member that is not an object', async () => {
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { events: undefined })) }), /"events"/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { events: { 'http://schemas.openid.net/event/other': {} } })) }), /"events"/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { events: { [BACKCHANNEL_LOGOUT_EVENT]: true } })) }), /"events"/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { events: [BACKCHANNEL_LOGOUT_EVENT] })) }), /"events"/);
  });

  it('neither sid nor sub; a sid or sub that is not a string', async () => {
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { sub: undefined })) }), /neither "sub" nor "sid"/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { sub: 7 })) }), /"sub" is not a non-empty string/);
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { sid: ['x'] })) }), /"sid" is not a non-empty string/);
  });

  it('a nonce (an ID token is never a logout token)', async () => {
    await expectRefused(await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { nonce: 'n' })) }), /holds a "nonce"/);
    // An ID token of this provider, signed with its key: no events, a nonce.
    const idToken = await signAsProvider(h, logoutClaims(h, { events: undefined, nonce: 'n', jti: undefined }), { typ: 'JWT' });
    await expectRefused(await post(h, { logout_token: idToken }), /logout token/);
  });

  it('counts refusals as a metric, and logs neither the token nor the user', () => {
    const lines = h.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.filter((l) => l['event'] === 'backchannel.refused').length).toBeGreaterThan(30);
    expect(h.logs.join('\n')).not.toMatch(/eyJ|"sub":|alice@/);
  });
});

describe('which providers take logout tokens', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ backchannel: {}, secondProvider: {} });
  });
  afterAll(async () => h?.close());

  it('404 for a provider without the setting, an unknown one, none, and other methods; the valid answer is 200, empty, no-store', async () => {
    const token = await signAsProvider(h, logoutClaims(h, { sub: 'nobody' }));
    for (const path of ['op2', 'ghost', '', 'op/more', '__proto__', 'constructor']) {
      const res = await post(h, { logout_token: token }, path);
      expect(res.status, path).toBe(404);
    }
    expect((await fetch(`${h.url}/backchannel-logout/op`)).status).toBe(404);
    const ok = await post(h, { logout_token: token });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('cache-control')).toBe('no-store');
    expect(ok.headers.get('access-control-allow-origin')).toBeNull();
    expect(await ok.text()).toBe('');
  });

  it('a valid token for op ends nothing at op2, even for the same sub', async () => {
    const j = jar();
    const login = await nativeLogin(h, { jar: j, extra: { provider: 'op2' } });
    const handle = ((await (await redeem(h, login)).json()) as { refresh_token: string }).refresh_token;
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h, { sub: 'alice' })) })).status).toBe(200);
    expect((await refreshNative(h, handle)).status).toBe(200);
  });
});

describe('storage: the SDK retrying applied writes, and failures', () => {
  let h: Harness;
  let faults: DynamoFaults;
  let box: FaultyContainer;
  beforeAll(async () => {
    faults = new DynamoFaults();
    h = await startHarness({ backchannel: {}, dynamoClient: (endpoint) => (box = faults.container(endpoint, { name: 'b1' })).table });
  });
  afterAll(async () => h?.close());
  afterEach(() => {
    expect(faults.pending()).toEqual([]);
    faults.clear();
  });

  it('the answer to the jti write is lost and the SDK retries it: recognised as its own, the logout is served', async () => {
    const handle = await nativeSession(h);
    faults.inject({ op: 'PutItem', key: 'logout-jti#*', fault: 'lost-answer' });
    const res = await post(h, { logout_token: await signAsProvider(h, logoutClaims(h)) });
    expect(res.status).toBe(200);
    expect(await getSession(h.runtime.table, sidOf(handle))).toBeUndefined();
    const puts = faults.callsTo('PutItem').filter((c) => c.key?.startsWith('logout-jti#'));
    expect(puts.map((c) => c.outcome)).toEqual(['ok', 'condition-failed']);
    expect(box).toBeDefined();
  });

  it('the answer to a session delete is lost and retried: served, the session gone', async () => {
    const handle = await nativeSession(h);
    faults.inject({ op: 'DeleteItem', key: `session#${sidOf(handle)}`, fault: 'lost-answer' });
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h)) })).status).toBe(200);
    expect(await getSession(h.runtime.table, sidOf(handle))).toBeUndefined();
  });

  it('the index cannot be read: 503, nothing remembered, and the provider\'s retry of the same token ends the sessions', async () => {
    const handle = await nativeSession(h);
    faults.inject({ op: 'Query', fault: 'internal' });
    const token = await signAsProvider(h, logoutClaims(h));
    const failed = await post(h, { logout_token: token });
    expect(failed.status).toBe(503);
    expect(await failed.json()).toMatchObject({ error: 'temporarily_unavailable' });
    expect(await getSession(h.runtime.table, sidOf(handle))).toBeDefined();
    expect((await post(h, { logout_token: token })).status).toBe(200);
    expect(await getSession(h.runtime.table, sidOf(handle))).toBeUndefined();
  });

  it('the index and the clean-up both fail (an outage): 503, and once the record reads as abandoned the provider\'s retry ends the sessions', async () => {
    const handle = await nativeSession(h);
    faults.inject({ op: 'Query', fault: 'internal' }, { op: 'DeleteItem', key: 'logout-jti#*', fault: 'internal' });
    const token = await signAsProvider(h, logoutClaims(h));
    expect((await post(h, { logout_token: token })).status).toBe(503);
    faults.clear();
    // Moments later the record may still be the first request's: under way, 503 again, not a replay.
    const soon = await post(h, { logout_token: token });
    expect(soon.status).toBe(503);
    expect(await getSession(h.runtime.table, sidOf(handle))).toBeDefined();
    h.clockOffset = 31;
    try {
      expect((await post(h, { logout_token: token })).status).toBe(200);
      expect(await getSession(h.runtime.table, sidOf(handle))).toBeUndefined();
      // Done: from now on the same token is a replay.
      expect((await post(h, { logout_token: token })).status).toBe(400);
    } finally {
      h.clockOffset = 0;
    }
  });

  it('the jti cannot be written: 503, nothing ended', async () => {
    const handle = await nativeSession(h);
    faults.inject({ op: 'PutItem', key: 'logout-jti#*', fault: 'throttle' });
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h)) })).status).toBe(503);
    expect(await getSession(h.runtime.table, sidOf(handle))).toBeDefined();
    expect((await refreshNative(h, handle)).status).toBe(200);
  });
});

describe('a refresh in flight when the provider ends the session', () => {
  let h: Harness;
  let gate: Promise<void> | undefined;
  let open: () => void = () => {};
  let held = 0;
  beforeAll(async () => {
    // Every refresh goes upstream: the stored token is always "due".
    h = await startHarness({ backchannel: {}, configure: (doc) => void (doc['ttl'] = { minAccessTokenSeconds: 3600 }) });
    // Hold the provider's token endpoint while `gate` is set: the refresh is then in flight. (A
    // Koa middleware added now would not run: the server composed the provider's stack at start.)
    const [serve] = h.op.server.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
    h.op.server.removeAllListeners('request');
    h.op.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'POST' && req.url?.startsWith('/token') && gate) {
        held++;
        void gate.then(() => serve!(req, res));
        return;
      }
      serve!(req, res);
    });
  });
  afterAll(async () => {
    open();
    await h?.close();
  });

  it('cannot bring the session back: its final write fails on the deleted item, and the app gets invalid_grant', async () => {
    const login = await nativeLogin(h);
    const redeemed = await redeem(h, login);
    expect(redeemed.status).toBe(200);
    const handle = ((await redeemed.json()) as { refresh_token: string }).refresh_token;
    const sid = sidOf(handle);

    gate = new Promise((resolve) => (open = resolve));
    const refreshing = refreshNative(h, handle);
    for (let i = 0; i < 500 && held === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(held).toBe(1);
    // The lease is taken: the refresh is waiting on the provider.
    expect((await getSession(h.runtime.table, sid))?.leaseUntil).toBeDefined();

    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h)) })).status).toBe(200);
    expect(await getSession(h.runtime.table, sid)).toBeUndefined();

    gate = undefined;
    open();
    const res = await refreshing;
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_grant' });
    expect(await getSession(h.runtime.table, sid)).toBeUndefined();
    expect(h.logs.some((l) => l.includes('"refresh.lease_lost"') && l.includes('session_ended'))).toBe(true);
    // And a web session's racing tabs the same way: the cookie stops at once.
    const web = await webLogin(h);
    expect((await go(web.jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders })).status).toBe(200);
    expect((await post(h, { logout_token: await signAsProvider(h, logoutClaims(h)) })).status).toBe(200);
    expect((await go(web.jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders })).status).toBe(401);
  });
});



