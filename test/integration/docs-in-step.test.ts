/**
 * The documents say what the code does: the headers and error codes docs/api.md and docs/spa.md
 * name exist in the code (and the other way round), the header an app is told it can read is
 * exposed to it, and the statuses the `/refresh` table of docs/spa.md lists are what the broker
 * answers.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../lib/errors.js';
import { corsHeaders } from '../../lib/http/cors.js';
import { browserHeaders, go, startHarness, webLogin, WEB_ORIGIN, type Harness } from '../support/harness.js';

const root = path.resolve(import.meta.dirname, '../..');
const doc = (name: string) => readFileSync(path.join(root, 'docs', name), 'utf8');
const api = doc('api.md');
const spa = doc('spa.md');

function sources(dir: string): string {
  return readdirSync(dir).map((name) => {
    const file = path.join(dir, name);
    return statSync(file).isDirectory() ? sources(file) : name.endsWith('.ts') ? readFileSync(file, 'utf8') : '';
  }).join('\n');
}
const code = sources(path.join(root, 'lib'));
const brokerHeaders = (text: string) => new Set([...text.matchAll(/x-broker-[a-z-]+/gi)].map((m) => m[0].toLowerCase()));

describe('headers and error codes', () => {
  it('every X-Broker-* header the docs name is one the code uses, and every one the code uses is documented', () => {
    const documented = new Set([...brokerHeaders(api), ...brokerHeaders(spa)]);
    expect([...documented].sort()).toEqual([...brokerHeaders(code)].sort());
  });

  it('X-Broker-Token-Source, which docs/spa.md tells apps to read, is exposed to an allowed origin', () => {
    expect(spa).toContain("res.headers.get('X-Broker-Token-Source')");
    const headers = corsHeaders({ headers: { origin: 'https://app.example.com' } } as never, new Set(['https://app.example.com']), true);
    expect(headers['access-control-expose-headers']?.toLowerCase().split(/,\s*/)).toContain('x-broker-token-source');
  });

  it('every OAuth error code in docs/api.md and docs/spa.md is one the broker can answer', () => {
    const named = new Set([...`${api}\n${spa}`.matchAll(/`(?:\d{3} )?(invalid_[a-z_]+|unauthorized_client|unsupported_[a-z_]+|access_denied|server_error|temporarily_unavailable)`/g)].map((m) => m[1]!));
    for (const name of named) expect(ERROR_CODES as readonly string[], name).toContain(name);
  });
});

describe('the /refresh status table of docs/spa.md', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness();
  });
  afterAll(() => h.close());

  const row = (status: number) => new RegExp(`^\\| \`${status}\` \\|\\s*(?:\`([a-z_]+)\`)?\\s*\\|`, 'm').exec(spa.slice(spa.indexOf('### Status codes of `/refresh`')));

  it('200, 401 invalid_grant and 403 access_denied are what the broker answers in those cases', async () => {
    const { jar } = await webLogin(h);
    const ok = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(row(200)).not.toBeNull();
    expect(ok.status).toBe(200);

    const noCsrf = await go(jar, `${h.url}/refresh`, { method: 'POST', headers: { origin: WEB_ORIGIN } });
    expect(noCsrf.status).toBe(403);
    expect((await noCsrf.json()).error).toBe(row(403)![1]);

    const noCookie = await go(undefined, `${h.url}/refresh`, { method: 'POST', headers: browserHeaders });
    expect(noCookie.status).toBe(401);
    expect((await noCookie.json()).error).toBe(row(401)![1]);
  });
});
