/**
 * The floor: a bare node:http server that does what the broker's hot paths must do and nothing
 * else, written by hand. The same round trips (one conditional UpdateItem for a stored refresh or
 * a code redemption, two for an upstream refresh, each SigV4-signed over a keep-alive connection),
 * the same crypto (SHA-256 of the presented credential, a new random handle and its hash, AES-256-GCM
 * for every stored token, an RS256 check of the provider's new ID token, an RS256 ID token of its
 * own for the code exchange) and hand-built JSON; no framework, no validation library, no logs.
 * A proxied API call (`GET /api/<path>` with the floor's session cookie): one consistent GetItem,
 * the cookie's hash checked, the access token opened, the API called with it over a keep-alive
 * connection, its answer passed back.
 * Settings come as JSON in BENCH_FLOOR (`FloorSettings`).
 */
import { createHash, createHmac, createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { floorKey, open, seal, type FloorSettings } from '../floor-kit.js';
import { answerBench } from './child.js';

const cfg = JSON.parse(process.env['BENCH_FLOOR']!) as FloorSettings;
const key = Buffer.from(cfg.key, 'base64url');
const signingKey = createPrivateKey(cfg.signingKey);
const agent = new http.Agent({ keepAlive: true });
const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');
const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const hmac = (k: Buffer | string, s: string) => createHmac('sha256', k).update(s).digest();

// ---- DynamoDB: the JSON protocol, SigV4, one keep-alive agent ----
const ddbUrl = new URL(cfg.endpoint);
let signingDay = '';
let signingKeyBytes = Buffer.alloc(0);
function ddb(op: string, input: unknown): Promise<{ status: number; json: any }> {
  const body = JSON.stringify(input);
  const amzDate = new Date().toISOString().replace(/[:-]|\.\d{3}/g, '');
  const day = amzDate.slice(0, 8);
  if (day !== signingDay) {
    signingDay = day;
    signingKeyBytes = hmac(hmac(hmac(hmac('AWS4local', day), 'us-east-1'), 'dynamodb'), 'aws4_request');
  }
  const target = `DynamoDB_20120810.${op}`;
  const signed = 'content-type;host;x-amz-date;x-amz-target';
  const canonical = `POST\n/\n\ncontent-type:application/x-amz-json-1.0\nhost:${ddbUrl.host}\nx-amz-date:${amzDate}\nx-amz-target:${target}\n\n${signed}\n${hex(body)}`;
  const scope = `${day}/us-east-1/dynamodb/aws4_request`;
  const signature = createHmac('sha256', signingKeyBytes).update(`AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${hex(canonical)}`).digest('hex');
  return new Promise((resolve, reject) => {
    const req = http.request(ddbUrl, {
      method: 'POST', agent,
      headers: {
        'content-type': 'application/x-amz-json-1.0', 'x-amz-date': amzDate, 'x-amz-target': target, 'content-length': Buffer.byteLength(body),
        authorization: `AWS4-HMAC-SHA256 Credential=local/${scope}, SignedHeaders=${signed}, Signature=${signature}`,
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const S = (s: string) => ({ S: s });
const N = (n: number) => ({ N: String(n) });

// ---- the provider: its token endpoint over a keep-alive agent, its keys fetched once ----
const tokenUrl = new URL(cfg.tokenEndpoint);
const basic = `Basic ${Buffer.from(`${encodeURIComponent(cfg.clientId)}:${encodeURIComponent(cfg.clientSecret)}`).toString('base64')}`;
function providerRefresh(refreshToken: string): Promise<any> {
  const body = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(tokenUrl, {
      method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic, accept: 'application/json', 'content-length': Buffer.byteLength(body) },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? resolve(JSON.parse(Buffer.concat(chunks).toString('utf8'))) : reject(new Error(`provider ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end(body);
  });
}
const jwks = new Map<string, KeyObject>();
for (const jwk of ((await (await fetch(cfg.jwksUri)).json()) as { keys: (import('node:crypto').JsonWebKey & { kid: string })[] }).keys) {
  jwks.set(jwk.kid, createPublicKey({ key: jwk, format: 'jwk' }));
}
function checkIdToken(token: string, sub: string, now: number): void {
  const [h, p, s] = token.split('.') as [string, string, string];
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg: string; kid: string };
  const k = jwks.get(header.kid);
  if (header.alg !== 'RS256' || !k || !verify('sha256', Buffer.from(`${h}.${p}`), k, Buffer.from(s, 'base64url'))) throw new Error('bad signature');
  const c = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as { iss: string; aud: string; exp: number; iat: number; sub: string };
  if (c.iss !== cfg.issuer || c.aud !== cfg.clientId || c.exp + 60 < now || c.iat - 60 > now || c.sub !== sub) throw new Error('bad claims');
}
function idToken(claims: Record<string, unknown>): string {
  const input = `${Buffer.from('{"alg":"RS256","kid":"floor"}').toString('base64url')}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
  return `${input}.${sign('sha256', Buffer.from(input), signingKey).toString('base64url')}`;
}

// ---- the hot paths ----
const FAILED = 'ConditionalCheckFailedException';
async function refresh(handle: string, clientId: string): Promise<[number, string]> {
  const sid = handle.slice(0, 22);
  const pk = floorKey(sid);
  const now = Math.floor(Date.now() / 1000);
  const next = `${sid}.${randomBytes(32).toString('base64url')}`;
  const owner = randomBytes(12).toString('base64url');
  const claim = await ddb('UpdateItem', {
    TableName: cfg.table, Key: { pk: S(pk) }, ReturnValues: 'ALL_NEW',
    ConditionExpression: 'handleHash = :h AND clientId = :c AND hardExpiresAt > :now AND idleExpiresAt > :now AND (attribute_not_exists(leaseUntil) OR leaseUntil <= :now OR leaseAtExp <> atExpiresAt OR leaseAtExp > leaseFresh)',
    UpdateExpression: 'SET prevHandleHash = handleHash, handleHash = :nh, handleEnc = :he, idleExpiresAt = :idle, leaseOwner = :o, leaseUntil = :lu, leaseAtExp = atExpiresAt, leaseFresh = :fresh',
    ExpressionAttributeValues: {
      ':h': S(sha256(handle)), ':c': S(clientId), ':now': N(now), ':nh': S(sha256(next)), ':he': S(seal(key, next, `${pk}#handle`)),
      ':idle': N(now + cfg.idleSeconds), ':o': S(owner), ':lu': N(now + 12), ':fresh': N(now + cfg.minAccessTokenSeconds),
    },
  });
  if (claim.status !== 200) return claim.json.__type?.endsWith(FAILED) ? [400, '{"error":"invalid_grant"}'] : [503, '{"error":"temporarily_unavailable"}'];
  const item = claim.json.Attributes;
  let accessToken: string;
  let expiresAt = Number(item.atExpiresAt.N);
  if (expiresAt > now + cfg.minAccessTokenSeconds) {
    accessToken = open(key, item.accessToken.S, `${pk}#accessToken`);
  } else {
    const tokens = await providerRefresh(open(key, item.refreshToken.S, `${pk}#refreshToken`));
    checkIdToken(tokens.id_token, item.sub.S, now);
    accessToken = tokens.access_token;
    expiresAt = now + tokens.expires_in;
    const done = await ddb('UpdateItem', {
      TableName: cfg.table, Key: { pk: S(pk) },
      ConditionExpression: 'leaseOwner = :o',
      UpdateExpression: 'SET accessToken = :at, refreshToken = :rt, idToken = :it, atExpiresAt = :exp REMOVE leaseUntil, leaseAtExp, leaseFresh',
      ExpressionAttributeValues: {
        ':o': S(owner), ':exp': N(expiresAt), ':at': S(seal(key, accessToken, `${pk}#accessToken`)),
        ':rt': S(seal(key, tokens.refresh_token, `${pk}#refreshToken`)), ':it': S(seal(key, tokens.id_token, `${pk}#idToken`)),
      },
    });
    if (done.status !== 200) return [503, '{"error":"temporarily_unavailable"}'];
  }
  return [200, `{"access_token":${JSON.stringify(accessToken)},"token_type":"Bearer","expires_in":${expiresAt - now},"refresh_token":${JSON.stringify(next)}}`];
}

async function redeem(code: string, verifier: string, clientId: string, redirectUri: string): Promise<[number, string]> {
  const sid = code.slice(0, 22);
  const pk = floorKey(sid);
  const now = Math.floor(Date.now() / 1000);
  const handle = `${sid}.${randomBytes(32).toString('base64url')}`;
  const out = await ddb('UpdateItem', {
    TableName: cfg.table, Key: { pk: S(pk) }, ReturnValues: 'ALL_NEW',
    ConditionExpression: 'codeHash = :h AND attribute_not_exists(codeUsedAt) AND codeExpiresAt > :now AND clientId = :c AND codeRedirectUri = :r AND codeChallenge = :ch',
    UpdateExpression: 'SET codeUsedAt = :now, handleHash = :nh, handleEnc = :he, idleExpiresAt = :idle, leaseOwner = :o',
    ExpressionAttributeValues: {
      ':h': S(sha256(code)), ':now': N(now), ':c': S(clientId), ':r': S(redirectUri), ':ch': S(sha256(verifier)),
      ':nh': S(sha256(handle)), ':he': S(seal(key, handle, `${pk}#handle`)), ':idle': N(now + cfg.idleSeconds), ':o': S(randomBytes(12).toString('base64url')),
    },
  });
  if (out.status !== 200) return out.json.__type?.endsWith(FAILED) ? [400, '{"error":"invalid_grant"}'] : [503, '{"error":"temporarily_unavailable"}'];
  const item = out.json.Attributes;
  const accessToken = open(key, item.accessToken.S, `${pk}#accessToken`);
  const identity = JSON.parse(open(key, item.identity.S, `${pk}#identity`)) as { sub: string; auth_time: number; nonce: string; name: string };
  const token = idToken({ iss: cfg.selfIssuer, sub: sha256(`${cfg.issuer}\0${identity.sub}`), aud: clientId, exp: now + 300, iat: now, auth_time: identity.auth_time, nonce: identity.nonce, sid, name: identity.name });
  return [200, `{"access_token":${JSON.stringify(accessToken)},"token_type":"Bearer","expires_in":${Number(item.atExpiresAt.N) - now},"refresh_token":${JSON.stringify(handle)},"id_token":"${token}","scope":"openid profile"}`];
}

// ---- the API proxy ----
const apiUrl = new URL(cfg.apiUrl);
function proxied(path: string, cookie: string, res: http.ServerResponse): void {
  const value = /(?:^|;\s*)floor-session=([^;]+)/.exec(cookie)?.[1] ?? '';
  const sid = value.slice(0, 22);
  const pk = floorKey(sid);
  const now = Math.floor(Date.now() / 1000);
  const fail = (status: number) => res.writeHead(status, { 'content-type': 'application/json' }).end('{"error":"invalid_session"}');
  ddb('GetItem', { TableName: cfg.table, Key: { pk: S(pk) }, ConsistentRead: true }).then(({ status, json }) => {
    const item = json.Item;
    if (status !== 200 || !item || item.cookieHash?.S !== sha256(value) || Number(item.hardExpiresAt.N) <= now || Number(item.idleExpiresAt.N) <= now
      || Number(item.atExpiresAt.N) <= now + cfg.minAccessTokenSeconds) return fail(401);
    const token = open(key, item.accessToken.S, `${pk}#accessToken`);
    const up = http.request(new URL(`${apiUrl.pathname.replace(/\/$/, '')}${path}`, apiUrl), { method: 'GET', agent, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } }, (answer) => {
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        const body = Buffer.concat(chunks);
        res.writeHead(answer.statusCode ?? 502, { 'content-type': answer.headers['content-type'] ?? 'application/octet-stream', 'cache-control': 'no-store', 'content-length': body.length }).end(body);
      });
    });
    up.on('error', () => fail(502));
    up.end();
  }, () => fail(503));
}

const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url?.startsWith('/api/')) {
    req.resume();
    return proxied(req.url.slice('/api/echo'.length), req.headers.cookie ?? '', res);
  }
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const form = new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
    const clientId = form.get('client_id') ?? '';
    const work = form.get('grant_type') === 'refresh_token'
      ? refresh(form.get('refresh_token') ?? '', clientId)
      : redeem(form.get('code') ?? '', form.get('code_verifier') ?? '', clientId, form.get('redirect_uri') ?? '');
    work.then(([status, body]) => {
      res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) }).end(body);
    }, () => res.writeHead(500).end());
  });
});
answerBench({});
server.listen(0, '127.0.0.1', () => {
  process.send!({ kind: 'ready', url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});
