import { errors } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBrokerServer } from '../../local/http-adapter.js';
import { form, nativeLogin, redeem, refreshNative, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness({ configure: (doc) => (doc.ttl = { minAccessTokenSeconds: 30 }) });
});
afterAll(() => h.close());

describe('regression: a JWKS outage during a refresh', () => {
  // The provider's signing keys could not be fetched while checking a refreshed ID token; this
  // used to read as "the ID token does not match the session" and revoked the session.
  it('keeps the session, stores the new tokens, and keeps the ID token it had checked', async () => {
    const tokens = await (await redeem(h, await nativeLogin(h))).json();
    const noKeys = { get: () => (async () => { throw new errors.JWKSTimeout(); }) as never, clear() {} };
    const broker = await startBrokerServer({ ...h.runtime, jwks: noKeys }, { port: 0 });
    h.clockOffset = 290;
    try {
      const res = await fetch(`${broker.url}/token`, form({ grant_type: 'refresh_token', refresh_token: tokens.refresh_token, client_id: 'app' }));
      expect(res.status).toBe(200);
      expect(res.headers.get('x-broker-token-source')).toBe('upstream');
      const body = await res.json();
      expect(body.access_token).not.toBe(tokens.access_token);
      expect(body.id_token).toBe(tokens.id_token);
      expect(h.logs.some((l) => JSON.parse(l).event === 'refresh.id_token_unchecked')).toBe(true);
      // The session lives on, with the rotated upstream refresh token stored.
      h.clockOffset = 590;
      const next = await refreshNative(h, body.refresh_token);
      expect(next.status).toBe(200);
      expect(next.headers.get('x-broker-token-source')).toBe('upstream');
    } finally {
      h.clockOffset = 0;
      await broker.close();
    }
  });
});
