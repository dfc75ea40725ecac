/**
 * `POST /token` (CONTRACT.md "native apps"): request checks, one-time codes (PKCE, binding to
 * client and redirect URI, single use, TTL), handle rotation with its grace window and reuse
 * detection, the no-store headers, and CORS.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  form, nativeLogin, NATIVE_REDIRECT, pkce, redeem, refreshNative, startHarness, WEB_ORIGIN, type Harness, type NativeLogin,
} from '../support/harness.js';

let h: Harness;
/** Upstream refresh tokens the real provider destroyed through its revocation endpoint. */
let opRevoked = 0;

beforeAll(async () => {
  h = await startHarness();
  h.op.provider.on('refresh_token.destroyed', () => opRevoked++);
});
afterAll(() => h.close());
afterEach(() => {
  h.clockOffset = 0;
});

const tokenUrl = () => `${h.url}/token`;

function post(body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(tokenUrl(), { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
}

function expectNoStore(res: Response): void {
  expect(res.headers.get('cache-control')).toBe('no-store');
  expect(res.headers.get('pragma')).toBe('no-cache');
}

async function expectError(res: Response, status: number, error: string): Promise<void> {
  expect(res.status).toBe(status);
  expectNoStore(res);
  const body = await res.json();
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe('string');
  expect(body.access_token).toBeUndefined();
  expect(body.refresh_token).toBeUndefined();
}

async function expectTokens(res: Response): Promise<{ access_token: string; refresh_token: string; [k: string]: unknown }> {
  expect(res.status).toBe(200);
  expectNoStore(res);
  const body = await res.json();
  expect(body.token_type).toBe('Bearer');
  expect(body.access_token).toBeTruthy();
  expect(body.refresh_token).toBeTruthy();
  return body;
}

/** A login's redeemed tokens. */
async function loggedIn(): Promise<{ login: NativeLogin; tokens: Awaited<ReturnType<typeof expectTokens>> }> {
  const login = await nativeLogin(h);
  return { login, tokens: await expectTokens(await redeem(h, login)) };
}

describe('POST /token: client and request checks', () => {
  it('refuses an unknown client_id with 401 invalid_client', async () => {
    await expectError(await post(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: 'nobody' }).toString()), 401, 'invalid_client');
    await expectError(await post(new URLSearchParams({ grant_type: 'authorization_code', code: 'x', code_verifier: pkce().verifier, redirect_uri: NATIVE_REDIRECT, client_id: 'nobody' }).toString()), 401, 'invalid_client');
    await expectError(await post(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: 'constructor' }).toString()), 401, 'invalid_client');
  });

  it('answers a client that authenticates with HTTP Basic and sends no client_id with 401 invalid_client and a challenge (RFC 6749 §5.2)', async () => {
    const res = await post('grant_type=refresh_token&refresh_token=x', { authorization: `Basic ${Buffer.from('app:').toString('base64')}` });
    await expectError(res, 401, 'invalid_client');
    expect(res.headers.get('www-authenticate')).toBe('Basic realm="broker"');
  });

  it('writes every error_description in RFC 6749\'s character set: no double quote, no backslash, ASCII only', async () => {
    const res = await post('grant_type=refresh_token&client_id=app');
    expect(res.status).toBe(400);
    const { error_description: description } = await res.json();
    expect(description).toMatch(/^[\x20-\x21\x23-\x5B\x5D-\x7E]+$/);
    expect(description).toContain("'refresh_token'");
  });

  it('refuses a web client with 400 unauthorized_client', async () => {
    await expectError(await post(new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: 'web' }).toString()), 400, 'unauthorized_client');
    await expectError(await post(new URLSearchParams({ grant_type: 'authorization_code', code: 'x', code_verifier: pkce().verifier, redirect_uri: NATIVE_REDIRECT, client_id: 'web' }).toString()), 400, 'unauthorized_client');
  });

  it.each(['grant_type', 'code', 'code_verifier', 'redirect_uri'])('refuses an authorization_code request without %s with invalid_request', async (missing) => {
    const fields: Record<string, string> = { grant_type: 'authorization_code', code: 'abc', code_verifier: pkce().verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT };
    delete fields[missing];
    await expectError(await post(new URLSearchParams(fields).toString()), 400, 'invalid_request');
  });

  it('refuses a refresh_token request without refresh_token with invalid_request', async () => {
    await expectError(await post(new URLSearchParams({ grant_type: 'refresh_token', client_id: 'app' }).toString()), 400, 'invalid_request');
  });

  it.each(['password', 'client_credentials', 'implicit', 'urn:ietf:params:oauth:grant-type:device_code'])('refuses grant_type=%s with unsupported_grant_type', async (grantType) => {
    await expectError(await post(new URLSearchParams({ grant_type: grantType, client_id: 'app', username: 'a', password: 'b' }).toString()), 400, 'unsupported_grant_type');
  });

  it('refuses a JSON body with invalid_request', async () => {
    const res = await fetch(tokenUrl(), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'refresh_token', refresh_token: 'x', client_id: 'app' }),
    });
    await expectError(res, 400, 'invalid_request');
  });

  it('refuses a body without content type with invalid_request', async () => {
    const res = await fetch(tokenUrl(), { method: 'POST', body: new Blob([new URLSearchParams({ grant_type: 'refresh_token', refresh_token: 'x', client_id: 'app' }).toString()]) });
    await expectError(res, 400, 'invalid_request');
  });

  it('refuses a repeated parameter with invalid_request, and the code still works', async () => {
    const login = await nativeLogin(h);
    const base = new URLSearchParams({ grant_type: 'authorization_code', code: login.code, code_verifier: login.verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT });
    for (const name of ['code', 'grant_type', 'client_id', 'code_verifier', 'redirect_uri']) {
      const twice = new URLSearchParams(base);
      twice.append(name, base.get(name)!);
      await expectError(await post(twice.toString()), 400, 'invalid_request');
    }
    await expectTokens(await redeem(h, login));
  });
});

describe('POST /token: authorization_code', () => {
  it('refuses a wrong code_verifier with invalid_grant without using the code up', async () => {
    const login = await nativeLogin(h);
    await expectError(await redeem(h, login, { code_verifier: pkce().verifier }), 400, 'invalid_grant');
    // A malformed verifier (RFC 7636 §4.1) too.
    await expectError(await redeem(h, login, { code_verifier: 'short' }), 400, 'invalid_grant');
    const tokens = await expectTokens(await redeem(h, login));
    expect((await refreshNative(h, tokens.refresh_token)).status).toBe(200);
  });

  it('refuses a wrong redirect_uri with invalid_grant without using the code up', async () => {
    const login = await nativeLogin(h);
    // Registered for the client, but not the one the code was issued for.
    await expectError(await redeem(h, login, { redirect_uri: 'http://127.0.0.1/cb' }), 400, 'invalid_grant');
    await expectError(await redeem(h, login, { redirect_uri: `${NATIVE_REDIRECT}/` }), 400, 'invalid_grant');
    await expectTokens(await redeem(h, login));
  });

  it('refuses another client_id with invalid_grant without using the code up', async () => {
    const login = await nativeLogin(h);
    await expectError(await redeem(h, login, { client_id: 'other' }), 400, 'invalid_grant');
    await expectError(await redeem(h, login, { client_id: 'other', redirect_uri: 'com.example.other:/cb' }), 400, 'invalid_grant');
    await expectTokens(await redeem(h, login));
  });

  it('binds a loopback code to the port it was issued for', async () => {
    const login = await nativeLogin(h, { redirectUri: 'http://127.0.0.1:49200/cb' });
    await expectError(await redeem(h, login, { redirect_uri: 'http://127.0.0.1:49201/cb' }), 400, 'invalid_grant');
    await expectTokens(await redeem(h, login, { redirect_uri: 'http://127.0.0.1:49200/cb' }));
  });

  it('refuses an unknown or garbled code with invalid_grant', async () => {
    const { verifier } = pkce();
    for (const code of ['garbage', `${'A'.repeat(22)}.${'B'.repeat(43)}`]) {
      await expectError(await post(new URLSearchParams({ grant_type: 'authorization_code', code, code_verifier: verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT }).toString()), 400, 'invalid_grant');
    }
  });

  it('refuses a second use of a code and revokes the session the first use created', async () => {
    const { login, tokens } = await loggedIn();
    const revoked = opRevoked;
    await expectError(await redeem(h, login), 400, 'invalid_grant');
    await expectError(await refreshNative(h, tokens.refresh_token), 400, 'invalid_grant');
    // The upstream refresh token was revoked at the provider.
    expect(opRevoked).toBe(revoked + 1);
  });

  it('refuses, and revokes nothing, a duplicate of the exchange that arrived before the redemption that won (the app\'s retry after a timeout)', async () => {
    const login = await nativeLogin(h);
    // The app's retry redeems the code...
    const won = await redeem(h, login);
    expect(won.status).toBe(200);
    const handle = (await won.json() as { refresh_token: string }).refresh_token;
    // ...and the first request, which arrived seconds earlier on a stalled instance, gets its turn only now.
    const revoked = opRevoked;
    h.clockOffset = -5;
    const late = await redeem(h, login);
    h.clockOffset = 0;
    expect(late.status).toBe(400);
    expect(await late.json()).toMatchObject({ error: 'invalid_grant', error_description: expect.stringMatching(/while this one was under way/) });
    expect(opRevoked).toBe(revoked);
    expect((await refreshNative(h, handle)).status).toBe(200);
  });

  it('refuses an expired code with invalid_grant', async () => {
    const login = await nativeLogin(h);
    h.clockOffset = 61; // ttl.codeSeconds is 60
    await expectError(await redeem(h, login), 400, 'invalid_grant');
  });

  it('redeems a code just before it expires (control)', async () => {
    const login = await nativeLogin(h);
    h.clockOffset = 55;
    await expectTokens(await redeem(h, login));
  });
});

describe('POST /token: refresh_token', () => {
  it('refuses a garbage or unknown handle with invalid_grant', async () => {
    await expectError(await refreshNative(h, 'garbage'), 400, 'invalid_grant');
    await expectError(await refreshNative(h, `${'A'.repeat(22)}.${'B'.repeat(43)}`), 400, 'invalid_grant');
  });

  // Regression: any handle-shaped value with a live session id (the one-time code from the
  // redirect, or a forgery) used to revoke the session. Only the previous handle is reuse.
  it('refuses a one-time code presented as a handle, and the code still redeems', async () => {
    const login = await nativeLogin(h);
    await expectError(await refreshNative(h, login.code), 400, 'invalid_grant');
    // The code itself still works.
    await expectTokens(await redeem(h, login));
  });

  it('refuses a forged handle (a live session id, another secret) without ending the session', async () => {
    const { login, tokens } = await loggedIn();
    const sid = login.code.split('.')[0]!;
    expect(tokens.refresh_token.startsWith(`${sid}.`)).toBe(true);
    await expectError(await refreshNative(h, `${sid}.${'A'.repeat(43)}`), 400, 'invalid_grant');
    await expectTokens(await refreshNative(h, tokens.refresh_token));
  });

  it('refuses a handle presented by another client, without ending the session', async () => {
    const { tokens } = await loggedIn();
    await expectError(await refreshNative(h, tokens.refresh_token, 'other'), 400, 'invalid_grant');
    // The handle was not rotated nor the session ended: the right client carries on with it.
    const next = await expectTokens(await refreshNative(h, tokens.refresh_token));
    expect(next.refresh_token).not.toBe(tokens.refresh_token);
    await expectTokens(await refreshNative(h, next.refresh_token));
  });

  it('answers a retry of the previous handle within the grace window with the same new handle', async () => {
    const { tokens } = await loggedIn();
    const h1 = tokens.refresh_token;
    const first = await expectTokens(await refreshNative(h, h1));
    const h2 = first.refresh_token;
    expect(h2).not.toBe(h1);

    const retry = await expectTokens(await refreshNative(h, h1));
    expect(retry.refresh_token).toBe(h2);
    expect(retry.access_token).toBe(first.access_token);

    // H2 is the live handle and rotates normally afterwards.
    const h3 = (await expectTokens(await refreshNative(h, h2))).refresh_token;
    expect(h3).not.toBe(h2);
    expect(h3).not.toBe(h1);
  });

  it('treats the previous handle after the grace window as theft: invalid_grant and the whole session revoked', async () => {
    const { tokens } = await loggedIn();
    const h1 = tokens.refresh_token;
    const h2 = (await expectTokens(await refreshNative(h, h1))).refresh_token;
    expect((await expectTokens(await refreshNative(h, h1))).refresh_token).toBe(h2);

    const revoked = opRevoked;
    h.clockOffset = 31; // ttl.reuseGraceSeconds is 30
    await expectError(await refreshNative(h, h1), 400, 'invalid_grant');
    await expectError(await refreshNative(h, h2), 400, 'invalid_grant');
    // The upstream refresh token was revoked at the provider.
    expect(opRevoked).toBe(revoked + 1);
    h.clockOffset = 0;
    await expectError(await refreshNative(h, h2), 400, 'invalid_grant');
  });
});

describe('POST /token: headers', () => {
  it('sends Cache-Control: no-store and Pragma: no-cache on every answer', async () => {
    const { login, tokens } = await loggedIn();
    const answers = [
      await refreshNative(h, tokens.refresh_token),
      await redeem(h, login),
      await refreshNative(h, 'garbage'),
      await post('grant_type=refresh_token&refresh_token=x&client_id=nobody'),
      await post('client_id=app'),
      await fetch(tokenUrl(), { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' }),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 400, 400, 401, 400, 400]);
    for (const res of answers) expectNoStore(res);
  });
});

describe('POST /token: CORS', () => {
  const preflight = (origin: string) => fetch(tokenUrl(), {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' },
  });

  it('answers a preflight from an allowed origin, without credentials', async () => {
    const res = await preflight(WEB_ORIGIN);
    expect(res.status).toBeGreaterThanOrEqual(200);
    expect(res.status).toBeLessThan(300);
    expect(res.headers.get('access-control-allow-origin')).toBe(WEB_ORIGIN);
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
    expect(res.headers.get('access-control-allow-methods') ?? '').toMatch(/\bPOST\b/);
  });

  it('answers a preflight from any other origin with no CORS grant', async () => {
    for (const origin of ['https://evil.example', 'null', `${WEB_ORIGIN}.evil.example`, WEB_ORIGIN.replace('http:', 'https:')]) {
      const res = await preflight(origin);
      // The contract says "nothing" for other origins; the status is not specified.
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      expect(res.headers.get('access-control-allow-credentials')).toBeNull();
      expect(res.headers.get('access-control-allow-methods')).toBeNull();
    }
  });

  it('grants the allowed origin on the POST itself, and no other', async () => {
    const allowed = await post('grant_type=refresh_token&refresh_token=garbage&client_id=app', { origin: WEB_ORIGIN });
    await expectError(allowed.clone(), 400, 'invalid_grant');
    expect(allowed.headers.get('access-control-allow-origin')).toBe(WEB_ORIGIN);
    expect(allowed.headers.get('access-control-allow-credentials')).toBeNull();

    const foreign = await post('grant_type=refresh_token&refresh_token=garbage&client_id=app', { origin: 'https://evil.example' });
    await expectError(foreign.clone(), 400, 'invalid_grant');
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('serves tokens to a browser app at an allowed origin', async () => {
    const login = await nativeLogin(h);
    const res = await fetch(tokenUrl(), form({
      grant_type: 'authorization_code', code: login.code, code_verifier: login.verifier, client_id: 'app', redirect_uri: NATIVE_REDIRECT,
    }, { origin: WEB_ORIGIN }));
    await expectTokens(res.clone());
    expect(res.headers.get('access-control-allow-origin')).toBe(WEB_ORIGIN);
    expect(res.headers.get('access-control-allow-credentials')).toBeNull();
  });
});
