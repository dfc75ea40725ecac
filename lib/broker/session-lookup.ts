/**
 * Finding a provider user's sessions without a scan, for back-channel logout and the operator CLI.
 *
 * At login the callback stores, beside the session, keyed hashes of the provider's name and the
 * `sub` and `sid` of its validated ID token (`idpSubKey`, `idpSidKey`): HMAC-SHA-256 under a key
 * derived from the token key ring's current key (`TokenCipher.lookupKey`), so a copy of the table
 * names no user and cannot be joined with what apps hold (they see `idp_sub`). Two sparse
 * keys-only indexes find them (lib/store/table.ts, `SESSION_INDEXES`).
 *
 * A search computes the keys under every key of the ring (a session keeps the key it was made
 * under until it ends, and a key leaves the ring only `ttl.sessionMaxSeconds` after its successor
 * became current), one index query each, usually one.
 */
import type { TokenCipher } from '../crypto/token-cipher.js';
import { endMatchingSession, findMatchingSessions, type SessionMatch } from '../store/sessions.js';
import type { Table } from '../store/table.js';

/** The provider's identity of a login, from its validated ID token. */
export interface ProviderUser {
  readonly sub?: string | undefined;
  readonly sid?: string | undefined;
}

const input = (kind: 'sub' | 'sid', provider: string, value: string) => `${kind}\u0000${provider}\u0000${value}`;

/** The index attributes a new session carries (none for a login without an ID token). */
export function lookupAttributes(cipher: Pick<TokenCipher, 'lookupKey'>, provider: string, user: ProviderUser): { idpSubKey?: string; idpSidKey?: string } {
  return {
    ...(user.sub !== undefined ? { idpSubKey: cipher.lookupKey(input('sub', provider, user.sub)) } : {}),
    ...(user.sid !== undefined ? { idpSidKey: cipher.lookupKey(input('sid', provider, user.sid)) } : {}),
  };
}

/**
 * What a logout names, as matches under each key of the ring: the sessions of one provider session
 * (`sid`; with `sub` too, those with both), or with only `sub` every session of that user at that
 * provider.
 */
export function sessionMatches(cipher: Pick<TokenCipher, 'lookupKeys'>, provider: string, user: ProviderUser): SessionMatch[] {
  if (user.sid === undefined && user.sub === undefined) throw new TypeError('a session match needs a sub or a sid');
  const subKeys = user.sub !== undefined ? cipher.lookupKeys(input('sub', provider, user.sub)) : undefined;
  if (user.sid === undefined) return subKeys!.map((subKey) => ({ provider, subKey }));
  return cipher.lookupKeys(input('sid', provider, user.sid)).map((sidKey, i) => ({ provider, sidKey, ...(subKeys ? { subKey: subKeys[i]! } : {}) }));
}

/** How many ends run at once: a user has a handful of sessions, an incident perhaps hundreds. */
const PARALLEL_ENDS = 8;

/**
 * Ends every session the matches name: one index query per match (per page), then one conditional
 * `DeleteItem` per session found, so its handles, cookie, unredeemed code and refresh lease stop at
 * once (a refresh in flight fails its final write, which is conditioned on the item). Resolves how
 * many sessions this call ended. Storage trouble propagates (`BrokerUnavailableError`): sessions
 * ended before it stay ended, and a retry ends the rest.
 */
export async function endSessionsMatching(table: Table, matches: readonly SessionMatch[]): Promise<number> {
  let ended = 0;
  for (const match of matches) {
    const sids = [...new Set(await findMatchingSessions(table, match))];
    for (let i = 0; i < sids.length; i += PARALLEL_ENDS) {
      const results = await Promise.all(sids.slice(i, i + PARALLEL_ENDS).map((sid) => endMatchingSession(table, sid, match)));
      ended += results.filter(Boolean).length;
    }
  }
  return ended;
}
