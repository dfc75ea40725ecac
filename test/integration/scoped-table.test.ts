/**
 * The local runner's view of the table for one function (lib/store/scoped-table.ts), on a real
 * table: what the function's manifest entry grants goes through, anything else is refused before
 * it reaches DynamoDB, as IAM refuses it, with the error the SDK would throw and no item key in
 * the message.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUNCTIONS } from '../../functions/manifest.js';
import { ensureTable, localDynamoClient, localTableClient, startDynalite, type LocalDynamo } from '../../local/dynamo.js';
import { putLogin, takeLogin } from '../../lib/store/logins.js';
import { endSession } from '../../lib/store/sessions.js';
import { scopedTable } from '../../lib/store/scoped-table.js';
import { createTable, type Table } from '../../lib/store/table.js';
import { rejectionOf } from '../support/errors.js';
import { countItems } from '../support/table.js';

let dynamo: LocalDynamo;
let table: Table;

beforeAll(async () => {
  dynamo = await startDynalite();
  const client = localDynamoClient(dynamo.endpoint);
  await ensureTable(client, 'scoped');
  table = createTable('scoped', localTableClient(dynamo.endpoint));
});
afterAll(() => dynamo?.close());

const login = (stateHash: string) => ({
  stateHash, txnHash: 'txn', clientId: 'app', provider: 'op', redirectUri: 'com.example.app:/cb',
  appState: undefined, appCodeChallenge: undefined, codeVerifier: 'v', nonce: undefined, createdAt: 1, expiresAt: 4_000_000_000,
});

describe('a function\'s view of the table', () => {
  it('lets start-login write a login, and callback take it (regression: the take is an UpdateItem, which callback was not granted)', async () => {
    await putLogin(scopedTable(table, FUNCTIONS['start-login'], 'start-login'), login('s1'));
    const taken = await takeLogin(scopedTable(table, FUNCTIONS.callback, 'callback'), 's1', 'txn', 2, 'me');
    expect(taken?.clientId).toBe('app');
  });

  it('refuses what is not granted before DynamoDB sees it, naming the action and the key prefix only', async () => {
    const before = await countItems(table, 'login#');
    const err = await rejectionOf(putLogin(scopedTable(table, FUNCTIONS.metadata, 'metadata'), login('s2-secret-state-hash')), Error);
    expect(err).toMatchObject({ name: 'AccessDeniedException', message: 'metadata is not granted dynamodb:PutItem on "login#…"' });
    expect(await countItems(table, 'login#')).toBe(before);
    const deleted = await rejectionOf(endSession(scopedTable(table, FUNCTIONS.callback, 'callback'), 'sid-7f3a9c'), Error);
    expect(deleted.message).toBe('callback is not granted dynamodb:DeleteItem on "session#…"');
    expect(deleted.message).not.toContain('7f3a9c');
  });
});
