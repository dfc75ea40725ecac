/**
 * AppAuth-iOS and AppAuth-Android cannot run here, so the broker's answers are held to what their
 * sources check (test/support/appauth-mobile.ts): the discovery document both parse, and the ID
 * token checks both run on the code exchange and on every refresh, including one served from
 * stored tokens long after the login (v1 answered that with the provider's old ID token, which
 * both refused: "Issued at time is more than 600 seconds ..."). Both send a nonce by default.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fieldContext } from '../../../lib/broker/session-tokens.js';
import { parseConfig } from '../../../lib/config/parse.js';
import { getSession } from '../../../lib/store/sessions.js';
import { minimalConfigDoc } from '../../unit/fixtures.js';
import { nativeLogin, NATIVE_REDIRECT, redeem, refreshNative, startHarness, type Harness } from '../../support/harness.js';
import { androidDiscoveryErrors, androidIdTokenErrors, iosDiscoveryErrors, iosIdTokenErrors } from '../../support/appauth-mobile.js';

let h: Harness;
let discovery: Record<string, unknown>;
beforeAll(async () => {
  // Fresh stored tokens for an hour: refreshes within it are served from storage.
  h = await startHarness({ op: { accessTokenSeconds: 3600 } });
  discovery = await (await fetch(`${h.url}/.well-known/openid-configuration`)).json();
});
afterAll(() => h.close());

/** The device clock follows the broker's (shifted) clock. */
const now = () => Math.floor(Date.now() / 1000) + h.clockOffset;

function checkBoth(idToken: string, grantType: 'authorization_code' | 'refresh_token', requestNonce: string | undefined) {
  const ctx = { issuer: discovery['issuer'] as string, clientId: 'app', grantType, requestNonce, now: now() };
  return { ios: iosIdTokenErrors(idToken, ctx), android: androidIdTokenErrors(idToken, { ...ctx, skipIssuerHttpsCheck: true }) };
}

describe('AppAuth-iOS and AppAuth-Android, configured by discovery alone', () => {
  it('parse the discovery document: every mandatory field, valid URLs', () => {
    expect(iosDiscoveryErrors(discovery)).toEqual([]);
    expect(androidDiscoveryErrors(discovery)).toEqual([]);
    // Their issuer (the https check aside, see below) and the endpoints they use.
    expect(discovery).toMatchObject({ issuer: h.url, authorization_endpoint: `${h.url}/login`, token_endpoint: `${h.url}/token`, end_session_endpoint: `${h.url}/end-session` });
  });

  it('accept the code exchange and every refresh, also one served from storage 50 minutes after the login', async () => {
    const nonce = randomBytes(16).toString('base64url');
    const login = await nativeLogin(h, { extra: { scope: 'openid', nonce } });
    const tokens = await (await redeem(h, login)).json();
    expect(checkBoth(tokens.id_token, 'authorization_code', nonce)).toEqual({ ios: [], android: [] });

    let handle = tokens.refresh_token;
    for (const offset of [0, 20 * 60, 50 * 60]) {
      h.clockOffset = offset;
      const res = await refreshNative(h, handle);
      expect(res.headers.get('x-broker-token-source')).toBe('stored');
      const body = await res.json();
      handle = body.refresh_token;
      expect(checkBoth(body.id_token, 'refresh_token', nonce), `after ${offset} s`).toEqual({ ios: [], android: [] });
    }
    h.clockOffset = 0;
  });

  it('accept a login without a nonce (Android compares even then: the broker adds none)', async () => {
    const login = await nativeLogin(h, { extra: { scope: 'openid' } });
    const tokens = await (await redeem(h, login, { redirect_uri: NATIVE_REDIRECT })).json();
    expect(checkBoth(tokens.id_token, 'authorization_code', undefined)).toEqual({ ios: [], android: [] });
  });

  it('regression: v1\'s answer, the provider\'s ID token, fails both exactly as reported', async () => {
    const nonce = randomBytes(16).toString('base64url');
    const login = await nativeLogin(h, { extra: { scope: 'openid', nonce } });
    await redeem(h, login);
    const sid = login.code.split('.')[0]!;
    const s = (await getSession(h.runtime.table, sid))!;
    const providerIdToken = await (await h.runtime.cipher()).decrypt(s.idToken!, fieldContext(sid, 'idToken'));
    const errors = checkBoth(providerIdToken, 'authorization_code', nonce);
    expect(errors.ios).toEqual(expect.arrayContaining(['Issuer mismatch', 'Audience mismatch', 'Nonce mismatch']));
    expect(errors.android).toEqual(expect.arrayContaining(['Issuer mismatch', 'Audience mismatch', 'Nonce mismatch']));
  });

  it('Android\'s https issuer check holds for every deployment: a non-loopback publicUrl must be https', () => {
    const doc = minimalConfigDoc();
    doc.publicUrl = 'http://auth.example.com';
    expect(() => parseConfig(doc, { runtime: 'local' })).toThrow(/publicUrl: must be https/);
  });
});
