/**
 * The cold-start floor: what any Lambda function that reads its secrets at init must do before
 * its first request, written by hand, and nothing else. An ES module (as the functions are) that
 * loads Node.js's HTTP, HTTPS and crypto modules, reads the ids in `BROKER_SECRET_IDS` in one
 * `BatchGetSecretValue` (SigV4 by hand, a keep-alive agent, a time bound, as the functions'), and
 * parses what it read: JSON values parsed, the current token key made a `KeyObject`. No
 * configuration, no validation library, no framework. With no ids, it only loads the modules.
 *
 * bench/cold-start.ts bundles it with the functions' own esbuild options and times it in the same
 * rounds as each function, in that function's environment (so it reads the same secrets): the
 * broker's cold start over this floor is what the broker's own design costs, apart from what Node.js
 * costs any function reading its secrets.
 */
import { createHash, createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';

interface Answer {
  readonly SecretValues?: readonly { readonly Name: string; readonly SecretString?: string }[];
}

const env = process.env;
const region = env['AWS_REGION'] ?? 'us-east-1';
const endpoint = new URL(env['AWS_ENDPOINT_URL_SECRETS_MANAGER'] ?? `https://secretsmanager.${region}.amazonaws.com`);
const hex = (s: string) => createHash('sha256').update(s).digest('hex');
const hmac = (k: Buffer | string, s: string) => createHmac('sha256', k).update(s).digest();
const two = (n: number) => String(n).padStart(2, '0');

function readSecrets(ids: readonly string[]): Promise<Answer> {
  const body = JSON.stringify({ SecretIdList: ids });
  // From the UTC fields, as the functions' SigV4 does: a process's first toISOString costs 0.2-0.4 ms.
  const now = new Date();
  const amzDate = `${now.getUTCFullYear()}${two(now.getUTCMonth() + 1)}${two(now.getUTCDate())}T${two(now.getUTCHours())}${two(now.getUTCMinutes())}${two(now.getUTCSeconds())}Z`;
  const day = amzDate.slice(0, 8);
  const scope = `${day}/${region}/secretsmanager/aws4_request`;
  const headers: Record<string, string> = {
    'content-type': 'application/x-amz-json-1.1',
    host: endpoint.host,
    'x-amz-date': amzDate,
    'x-amz-security-token': env['AWS_SESSION_TOKEN'] ?? '',
    'x-amz-target': 'secretsmanager.BatchGetSecretValue',
  };
  const signed = Object.keys(headers).join(';');
  const canonical = `POST\n/\n\n${Object.entries(headers).map(([k, v]) => `${k}:${v}\n`).join('')}\n${signed}\n${hex(body)}`;
  const key = hmac(hmac(hmac(hmac(`AWS4${env['AWS_SECRET_ACCESS_KEY'] ?? ''}`, day), region), 'secretsmanager'), 'aws4_request');
  const signature = createHmac('sha256', key).update(`AWS4-HMAC-SHA256\n${amzDate}\n${scope}\n${hex(canonical)}`).digest('hex');
  headers['authorization'] = `AWS4-HMAC-SHA256 Credential=${env['AWS_ACCESS_KEY_ID'] ?? ''}/${scope}, SignedHeaders=${signed}, Signature=${signature}`;
  const lib = endpoint.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => req.destroy(new Error('Secrets Manager did not answer in time')), 5000);
    const req = lib.request(endpoint, { method: 'POST', headers, agent: new lib.Agent({ keepAlive: true }) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        if (res.statusCode !== 200) reject(new Error(`Secrets Manager answered ${res.statusCode}`));
        else resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')) as Answer);
      });
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

const ids = JSON.parse(env['BROKER_SECRET_IDS'] ?? '[]') as string[];
const secrets = new Map<string, unknown>();
let tokenKey: KeyObject | undefined;
if (ids.length > 0) {
  for (const { Name, SecretString = '' } of (await readSecrets(ids)).SecretValues ?? []) {
    const value: unknown = SecretString.startsWith('{') ? JSON.parse(SecretString) : SecretString;
    secrets.set(Name, value);
    const ring = value as { current?: string; keys?: Record<string, unknown> };
    if (tokenKey === undefined && typeof ring.current === 'string' && typeof ring.keys?.[ring.current] === 'string') {
      tokenKey = createSecretKey(Buffer.from(ring.keys[ring.current] as string, 'base64url'));
    }
  }
}

export const handler = async () => ({ statusCode: 204, body: '', secrets: secrets.size, keyed: tokenKey !== undefined });
