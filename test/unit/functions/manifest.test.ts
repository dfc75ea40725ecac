/**
 * The function manifest keeps every definition of a function in step. Most of it is the
 * compiler's work, pinned here with `@ts-expect-error` (`npm test` runs `tsc` first, and an
 * expected error that goes away fails it): a routes object must have exactly the manifest's
 * keys, and an entry point's wiring exactly what the manifest grants. The rest runs: the
 * manifest names exactly the folders of functions/, the CORS rules and the local runner's grants
 * come from it.
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { SECRET_IDS_ENV, secretIdsFromEnv, type FunctionRoutes, type FunctionWiring } from '../../../functions/handler.js';
import { parseConfig } from '../../../lib/config/parse.js';
import { FUNCTION_NAMES, FUNCTIONS, functionSpec, secretsReadBy, type RouteKeyOf } from '../../../functions/manifest.js';
import { routes as logoutRoutes } from '../../../functions/logout/routes.js';
import { API_PROXY_PREFIX, CORS_PATHS, corsRuleFor } from '../../../lib/http/cors.js';
import { loginRoute } from '../../../lib/routes/login.js';
import { allows } from '../../../lib/store/scoped-table.js';
import { dynamoFromEnv } from '../../../lib/store/dynamo-client.js';
import { KEY_PREFIXES, SESSION_INDEXES } from '../../../lib/store/table.js';

const root = path.resolve(import.meta.dirname, '../../..');

describe('the compiler keeps the manifest and the code in step', () => {
  it('a routes object has exactly its function\'s route keys', () => {
    expectTypeOf<RouteKeyOf<'logout'>>().toEqualTypeOf<'POST /logout' | 'GET /end-session' | 'POST /end-session'>();
    expectTypeOf(logoutRoutes).toExtend<FunctionRoutes<'logout'>>();
    // A route the manifest does not have:
    // @ts-expect-error 'GET /login2' does not exist in type FunctionRoutes<'start-login'>
    const extra = { 'GET /login': loginRoute, 'GET /login2': loginRoute } satisfies FunctionRoutes<'start-login'>;
    // A route of the manifest without a handler:
    // @ts-expect-error property 'POST /callback' is missing
    const missing = { 'GET /callback': loginRoute } satisfies FunctionRoutes<'callback'>;
    expect([extra, missing]).toHaveLength(2);
  });

  it('an entry point wires a DynamoDB client exactly when the manifest grants items, a secret fetcher exactly when it grants secrets', () => {
    expectTypeOf<{ dynamo: typeof dynamoFromEnv }>().toExtend<FunctionWiring<'start-login'>>();
    // start-login reads no secret:
    // @ts-expect-error fetchSecret is not allowed
    const secretForStartLogin: FunctionWiring<'start-login'> = { dynamo: dynamoFromEnv, fetchSecret: () => async () => '' };
    // refresh uses the table and secrets:
    // @ts-expect-error dynamo and fetchSecret are required
    const nothingForRefresh: FunctionWiring<'refresh'> = {};
    // metadata uses neither (and so bundles no AWS client):
    // @ts-expect-error dynamo is not allowed
    const tableForMetadata: FunctionWiring<'metadata'> = { dynamo: dynamoFromEnv };
    expect([secretForStartLogin, nothingForRefresh, tableForMetadata]).toHaveLength(3);
  });
});

describe('the manifest', () => {
  it('names exactly the folders of functions/ (each an esbuild entry point)', () => {
    const folders = readdirSync(path.join(root, 'functions'), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    expect([...FUNCTION_NAMES].sort()).toEqual(folders.sort());
  });

  it('gives every route key to one function, and scopes every item grant by a known key prefix', () => {
    const keys = FUNCTION_NAMES.flatMap((n) => Object.keys(functionSpec(n).routes));
    expect(new Set(keys).size).toBe(keys.length);
    const prefixes = FUNCTION_NAMES.flatMap((n) => Object.keys(functionSpec(n).items));
    for (const p of prefixes) expect(Object.values(KEY_PREFIXES) as string[]).toContain(p);
  });

  it('gives CORS rules to exactly the app-facing paths, and the API proxy prefix is its route\'s', () => {
    expect([...CORS_PATHS.exact.keys()].sort()).toEqual(['/logout', '/refresh', '/session', '/token']);
    expect([...CORS_PATHS.prefixes.keys()]).toEqual([API_PROXY_PREFIX]);
    expect(corsRuleFor('/token')?.credentials).toBe(false);
    expect(corsRuleFor('/refresh')?.credentials).toBe(true);
    expect(corsRuleFor('/api/videos/1')?.expose).not.toBe('x-broker-token-source');
    expect(corsRuleFor('/login')).toBeUndefined();
    expect(corsRuleFor('/jwks')).toBeUndefined();
  });
});

describe('the secrets a cold start reads (functions/serve.ts, written to BROKER_SECRET_IDS by the stack), from the manifest', () => {
  const config = parseConfig({
    publicUrl: 'https://auth.example.com',
    providers: {
      a: { issuer: 'https://a.example.com', clientId: 'c', clientSecret: { secretsManager: 'idp/a', jsonKey: 'secret' } },
      b: { issuer: 'https://b.example.com', clientId: 'c', clientSecret: { secretsManager: 'idp/b' } },
      pub: { issuer: 'https://pub.example.com', clientId: 'c', clientAuth: 'none' },
    },
    clients: { web: { type: 'web', redirectUris: ['https://app.example.com/'], allowedOrigins: ['https://app.example.com'], providers: ['a', 'b', 'pub'] } },
    tokenEncryptionKeys: { secretsManager: 'keys' },
    signingKeys: { secretsManager: 'signing' },
  }, { runtime: 'lambda' });

  it('are the key ring, the signing keys and the client secrets each function is granted, by Secrets Manager id', () => {
    const read = Object.fromEntries(FUNCTION_NAMES.map((name) => [name, secretsReadBy(functionSpec(name).secrets, config)]));
    expect(read).toEqual({
      'start-login': [],
      callback: ['keys', 'idp/a', 'idp/b'],
      refresh: ['keys', 'signing', 'idp/a', 'idp/b'],
      logout: ['keys', 'signing', 'idp/a', 'idp/b'],
      metadata: [],
      proxy: ['keys', 'idp/a', 'idp/b'],
      'backchannel-logout': ['keys'],
    });
  });

  it('reach the first part of the cold start as the stack writes them (BROKER_SECRET_IDS, a JSON array); anything else there is no list', () => {
    const ids = secretsReadBy(functionSpec('refresh').secrets, config);
    expect(secretIdsFromEnv({ [SECRET_IDS_ENV]: JSON.stringify(ids) })).toEqual(ids);
    expect(secretIdsFromEnv({ [SECRET_IDS_ENV]: '["keys","signing","keys"]' })).toEqual(['keys', 'signing']);
    for (const bad of [undefined, '', 'keys,signing', '{"keys":1}', '["keys",2]', '["keys",""]', '[']) {
      expect(secretIdsFromEnv(bad === undefined ? {} : { [SECRET_IDS_ENV]: bad })).toEqual([]);
    }
  });

  it('leave out secrets that do not come from Secrets Manager (local runs)', () => {
    const local = parseConfig({
      publicUrl: 'http://127.0.0.1:8080',
      providers: { a: { issuer: 'https://a.example.com', clientId: 'c', clientSecret: { env: 'A_SECRET' } } },
      clients: { web: { type: 'web', redirectUris: ['http://127.0.0.1:3000/'], allowedOrigins: ['http://127.0.0.1:3000'], providers: ['a'] } },
      tokenEncryptionKeys: { value: 'ring' },
    }, { runtime: 'local' });
    expect(secretsReadBy(functionSpec('refresh').secrets, local)).toEqual([]);
  });
});

describe('the local runner\'s table grants (lib/store/scoped-table.ts), as IAM answers', () => {
  const table = 't';
  const key = (pk: string) => ({ pk: { S: pk } });

  it('allow a function its actions on its key prefixes, and nothing else', () => {
    const startLogin = functionSpec('start-login');
    expect(allows(startLogin, 'PutItem', { TableName: table, Item: key('login#abc') })).toBe(true);
    expect(allows(startLogin, 'PutItem', { TableName: table, Item: key('session#abc') })).toBe(false);
    expect(allows(startLogin, 'DeleteItem', { TableName: table, Key: key('login#abc') })).toBe(false);
    expect(allows(startLogin, 'Scan', { TableName: table })).toBe(false);
  });

  it('(regression) callback may take its login with UpdateItem, and may delete nothing', () => {
    const callback = FUNCTIONS.callback;
    expect(allows(callback, 'UpdateItem', { TableName: table, Key: key('login#abc'), UpdateExpression: 'SET usedBy = :me' })).toBe(true);
    expect(allows(callback, 'PutItem', { TableName: table, Item: key('session#s') })).toBe(true);
    expect(allows(callback, 'DeleteItem', { TableName: table, Key: key('login#abc') })).toBe(false);
    expect(allows(callback, 'DeleteItem', { TableName: table, Key: key('session#s') })).toBe(false);
  });

  it('allow Query on the session indexes to back-channel logout only', () => {
    const query = (IndexName?: string) => ({ TableName: table, ...(IndexName ? { IndexName } : {}), KeyConditionExpression: 'k = :k' });
    expect(allows(FUNCTIONS['backchannel-logout'], 'Query', query(SESSION_INDEXES.sub.indexName))).toBe(true);
    expect(allows(FUNCTIONS['backchannel-logout'], 'Query', query())).toBe(false);
    expect(allows(FUNCTIONS.refresh, 'Query', query(SESSION_INDEXES.sub.indexName))).toBe(false);
    expect(allows(FUNCTIONS['backchannel-logout'], 'GetItem', { TableName: table, Key: key('logout-jti#x') })).toBe(true);
    expect(allows(FUNCTIONS['backchannel-logout'], 'GetItem', { TableName: table, Key: key('session#x') })).toBe(false);
  });
});
