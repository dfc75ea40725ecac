/**
 * Login records: one per started login, keyed by the hash of the broker's `state`, bound to the
 * browser by the hash of its transaction cookie, single use by a conditional update that marks it
 * used by one callback request (TTL removes it later). Both writes are idempotent under the SDK's
 * retries: a retried put finds its own transaction hash, a retried take finds its own `usedBy`.
 */
import { isConditionFailure, KEY_PREFIXES, N, num, S, str, toItem, type Table } from './table.js';

export interface LoginRecord {
  readonly stateHash: string;
  readonly txnHash: string;
  readonly clientId: string;
  readonly provider: string;
  readonly redirectUri: string;
  /** The app's `state`, echoed back to it. */
  readonly appState: string | undefined;
  /** The app's PKCE challenge (native clients), checked when it redeems the broker code. */
  readonly appCodeChallenge: string | undefined;
  /** The broker's own PKCE verifier toward the provider. */
  readonly codeVerifier: string | undefined;
  readonly nonce: string | undefined;
  /** The scope the broker granted the app (space-separated; may be empty). */
  readonly appScope?: string;
  /** The app's own `nonce`, for the broker's ID token. */
  readonly appNonce?: string;
  readonly createdAt: number;
  readonly expiresAt: number;
}

const key = (stateHash: string) => ({ pk: S(`${KEY_PREFIXES.login}${stateHash}`) });

export async function putLogin(table: Table, login: LoginRecord): Promise<void> {
  await table.call('PutItem', {
    TableName: table.name,
    Item: {
      ...key(login.stateHash),
      ...toItem({
        kind: 'login',
        txnHash: login.txnHash,
        clientId: login.clientId,
        provider: login.provider,
        redirectUri: login.redirectUri,
        appState: login.appState,
        appCodeChallenge: login.appCodeChallenge,
        codeVerifier: login.codeVerifier,
        nonce: login.nonce,
        appScope: login.appScope,
        appNonce: login.appNonce,
        createdAt: login.createdAt,
        expiresAt: login.expiresAt,
      }),
    },
    // The state is 256 random bits: an item with this key and this browser's transaction hash
    // can only be this request's own first attempt, applied before its answer was lost.
    ConditionExpression: 'attribute_not_exists(pk) OR txnHash = :txn',
    ExpressionAttributeValues: { ':txn': S(login.txnHash) },
  });
}

/**
 * Takes the login record for a callback: marks it used by this request (`taker`, random per
 * request) only if it exists, is unexpired, is unused and belongs to this browser's transaction
 * cookie. Resolves undefined otherwise, leaving it in place (so a callback replayed in another
 * browser does not burn the real user's login). The SDK's retry of an applied take passes the
 * condition again (`usedBy = taker`) and gets the same record.
 */
export async function takeLogin(table: Table, stateHash: string, txnHash: string, now: number, taker: string): Promise<LoginRecord | undefined> {
  try {
    const out = await table.call('UpdateItem', {
      TableName: table.name,
      Key: key(stateHash),
      ConditionExpression: 'attribute_exists(pk) AND txnHash = :txn AND expiresAt > :now AND (attribute_not_exists(usedBy) OR usedBy = :me)',
      UpdateExpression: 'SET usedBy = :me',
      ExpressionAttributeValues: { ':txn': S(txnHash), ':now': N(now), ':me': S(taker) },
      ReturnValues: 'ALL_NEW',
    });
    const item = out.Attributes;
    if (!item) return undefined;
    return {
      stateHash,
      txnHash,
      clientId: str(item, 'clientId')!,
      provider: str(item, 'provider')!,
      redirectUri: str(item, 'redirectUri')!,
      appState: str(item, 'appState'),
      appCodeChallenge: str(item, 'appCodeChallenge'),
      codeVerifier: str(item, 'codeVerifier'),
      nonce: str(item, 'nonce'),
      appScope: str(item, 'appScope'),
      appNonce: str(item, 'appNonce'),
      createdAt: num(item, 'createdAt')!,
      expiresAt: num(item, 'expiresAt')!,
    };
  } catch (err) {
    if (isConditionFailure(err)) return undefined;
    throw err;
  }
}
