import { describe, expect, it } from 'vitest';
import { parseKeyRing } from '../../../lib/crypto/key-ring.js';
import { createTokenCipher } from '../../../lib/crypto/token-cipher.js';
import { fieldContext } from '../../../lib/broker/session-tokens.js';
import { identityOfLogin, openIdentity, sealIdentity } from '../../../lib/oidc/session-identity.js';

const cipher = createTokenCipher(parseKeyRing(JSON.stringify({ current: 'k1', keys: { k1: Buffer.alloc(32, 7).toString('base64url') } })));
const SID = 'BBBBBBBBBBBBBBBBBBBBBB';

describe('session identity', () => {
  it('keeps only what the broker\'s ID token needs, by the granted scope', () => {
    const identity = identityOfLogin(['openid', 'email'], 'n', {
      sub: 'u', auth_time: 100, acr: '1', amr: ['pwd', 7], sid: 'idp-sid', name: 'N', email: 'e@x', email_verified: 'true', groups: ['g'], nonce: 'provider',
    }, 200);
    expect(identity).toEqual({ scope: ['openid', 'email'], nonce: 'n', idpSub: 'u', authTime: 100, acr: '1', amr: ['pwd'], idpSid: 'idp-sid', claims: { email: 'e@x', email_verified: true } });
  });

  it('drops claim values that are empty or longer than 2048 characters', () => {
    const identity = identityOfLogin(['openid', 'profile'], undefined, { sub: 'u', name: '', picture: `https://x/${'a'.repeat(2048)}`, locale: 'en' }, 1);
    expect(identity.claims).toEqual({ locale: 'en' });
  });

  it('without an ID token (a provider without openid) keeps the scope, the nonce and the login time', () => {
    expect(identityOfLogin([], 'n', undefined, 42)).toEqual({ scope: [], nonce: 'n', authTime: 42, claims: {} });
  });

  it('seals into one compact, encrypted attribute bound to its session', async () => {
    const identity = identityOfLogin(['openid', 'profile'], 'nonce-1', { sub: 'alice', auth_time: 5, sid: 's', name: 'Alice Example' }, 9);
    const sealed = await sealIdentity(cipher, SID, identity);
    expect(sealed.split('.')).toHaveLength(5);
    expect(sealed).not.toContain('alice');
    expect(sealed.length).toBeLessThan(400);
    expect(await openIdentity(cipher, SID, sealed)).toEqual(identity);
    // Another session's (or field's) context does not open it: one error for every cause.
    await expect(openIdentity(cipher, 'CCCCCCCCCCCCCCCCCCCCCC', sealed)).rejects.toMatchObject({ name: 'DecryptionError' });
    expect(await openIdentity(cipher, SID, undefined)).toBeUndefined();
  });

  it('refuses a sealed value that is not an identity', async () => {
    const notJson = await cipher.encrypt('nope', fieldContext(SID, 'identity'));
    await expect(openIdentity(cipher, SID, notJson)).rejects.toMatchObject({ name: 'DecryptionError' });
    const wrongShape = await cipher.encrypt('{"scope":1}', fieldContext(SID, 'identity'));
    await expect(openIdentity(cipher, SID, wrongShape)).rejects.toMatchObject({ name: 'DecryptionError' });
  });
});
