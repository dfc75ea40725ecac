/** `id_token_hint` checks of /end-session: signature first, then claims; expired tokens accepted. */
import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { rejectionOf } from '../../support/errors.js';
import { parseConfig } from '../../../lib/config/parse.js';
import { BrokerError } from '../../../lib/errors.js';
import { createLogger } from '../../../lib/log.js';
import { verifyIdTokenHint } from '../../../lib/oidc/id-token-hint.js';
import { signIdToken, type BrokerIdTokenClaims } from '../../../lib/oidc/id-token-issuer.js';
import { createRuntime, type Runtime } from '../../../lib/runtime.js';
import { NO_TABLE } from '../../../lib/store/table.js';
import { minimalConfigDoc } from '../fixtures.js';

let rt: Runtime;
const claims = (over: Partial<BrokerIdTokenClaims> = {}): BrokerIdTokenClaims => ({
  iss: 'https://auth.example.com', sub: 's', aud: 'app', iat: 1000, exp: 1300, auth_time: 900, sid: 'AAAAAAAAAAAAAAAAAAAAAA', idp: 'p', idp_sub: 'u', ...over,
});
const sign = async (c: BrokerIdTokenClaims, alg: 'RS256' | 'ES256' = 'RS256') => signIdToken(await rt.signing.get(), alg, c);

beforeAll(async () => {
  rt = createRuntime({ config: parseConfig(minimalConfigDoc(), { runtime: 'local' }), table: NO_TABLE, log: createLogger({ sink: () => {} }) });
  await rt.signing.get();
});

async function refusal(hint: string, clientId?: string): Promise<string> {
  const err = await rejectionOf(verifyIdTokenHint(rt, hint, clientId), BrokerError);
  expect(err).toMatchObject({ code: 'invalid_request', status: 400 });
  return err.description;
}

describe('verifyIdTokenHint: refusals', () => {
  it('not a signed JWT: garbage, an unsecured JWT, an unknown algorithm, no kid', async () => {
    expect(await refusal('garbage')).toMatch(/not a signed JWT/);
    expect(await refusal(new UnsecuredJWT(claims()).encode())).toMatch(/not a signed JWT/);
    const hs = await new SignJWT(claims()).setProtectedHeader({ alg: 'HS256', kid: (await rt.signing.get()).current }).sign(new Uint8Array(32));
    expect(await refusal(hs)).toMatch(/algorithm of the broker/);
    const { privateKey } = await generateKeyPair('RS256');
    expect(await refusal(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256' }).sign(privateKey))).toMatch(/names no signing key/);
  });

  it('a bad signature: a foreign key under the broker\'s kid, a kid the ring lacks, the ES256 key claimed for RS256', async () => {
    const keys = await rt.signing.get();
    const { privateKey } = await generateKeyPair('RS256');
    expect(await refusal(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: keys.current }).sign(privateKey))).toMatch(/invalid signature/);
    expect(await refusal(await new SignJWT(claims()).setProtectedHeader({ alg: 'RS256', kid: 'other' }).sign(privateKey))).toMatch(/not signed with a key of the broker/);
    const es = await sign(claims(), 'ES256');
    const [, payload, signature] = es.split('.');
    const relabelled = `${Buffer.from(JSON.stringify({ alg: 'RS256', kid: `${keys.current}.es256` })).toString('base64url')}.${payload}.${signature}`;
    expect(await refusal(relabelled)).toMatch(/not signed with a key of the broker/);
  });

  it('claims, checked only after the signature: another issuer, another client, an unknown client, no sid', async () => {
    expect(await refusal(await sign(claims({ iss: 'https://evil.example' })))).toMatch(/not issued by this broker/);
    expect(await refusal(await sign(claims()), 'web')).toMatch(/issued to another client/);
    expect(await refusal(await sign(claims({ aud: 'ghost' })))).toMatch(/not issued to a client/);
    expect(await refusal(await sign(claims({ aud: ['app'] as never })))).toMatch(/not issued to a client/);
    expect(await refusal(await sign(claims({ sid: 'short' })))).toMatch(/lacks "sid"/);
  });
});

describe('verifyIdTokenHint', () => {
  it('accepts the broker\'s token for the client, long expired, RS256 and ES256', async () => {
    for (const alg of ['RS256', 'ES256'] as const) {
      const verified = await verifyIdTokenHint(rt, await sign(claims({ exp: 1 }), alg), 'app');
      expect(verified).toMatchObject({ sid: 'AAAAAAAAAAAAAAAAAAAAAA', idp: 'p', sub: 's' });
      expect(verified.client.id).toBe('app');
    }
    expect((await verifyIdTokenHint(rt, await sign(claims()), undefined)).client.id).toBe('app');
  });
});
