import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { createRuntime } from '../../lib/runtime.js';
import { createTable } from '../../lib/store/table.js';
import { localTableClient } from '../../local/dynamo.js';
import { startBrokerServer, type BrokerServer } from '../../local/http-adapter.js';
import { browserHeaders, form, freePort, startHarness, type Harness } from '../support/harness.js';

let h: Harness;
let broken: BrokerServer;
const logs: string[] = [];
beforeAll(async () => {
  h = await startHarness({
    configure: (doc) => {
      // (v2) An API for the proxy; storage fails before it could ever be called.
      doc.apis = { echo: { url: 'http://127.0.0.1:9/v1', provider: 'op' } };
      doc.clients.web.apis = ['echo'];
    },
  });
  // The same broker, but its DynamoDB endpoint is a closed port: storage is down.
  const client = localTableClient(`http://127.0.0.1:${await freePort()}`);
  const runtime = createRuntime({ config: h.config, table: createTable('broker', client), log: createLogger({ sink: (l) => logs.push(l) }) });
  broken = await startBrokerServer(runtime, { port: 0 });
});
afterAll(async () => {
  await broken.close();
  await h.close();
});

describe('storage outage', () => {
  it('answers 503 temporarily_unavailable, never a bare 500, on every endpoint that needs storage', async () => {
    const handle = `${'A'.repeat(22)}.7.${'B'.repeat(43)}.k1`;
    const token = await fetch(`${broken.url}/token`, form({ grant_type: 'refresh_token', refresh_token: handle, client_id: 'app' }));
    expect(token.status).toBe(503);
    expect((await token.json()).error).toBe('temporarily_unavailable');
    const refresh = await fetch(`${broken.url}/refresh`, { method: 'POST', headers: { ...browserHeaders, cookie: `broker-session=${'A'.repeat(22)}.${'B'.repeat(43)}` } });
    expect(refresh.status).toBe(503);
    const proxied = await fetch(`${broken.url}/api/echo/things`, { headers: { ...browserHeaders, cookie: `broker-session=${'A'.repeat(22)}.${'B'.repeat(43)}` } });
    expect(proxied.status).toBe(503);
    expect((await proxied.json()).error).toBe('temporarily_unavailable');
    // /login has a trusted redirect URI by then: the browser goes back to the app with the error.
    const login = await fetch(`${broken.url}/login?client_id=web&state=s1`, { redirect: 'manual' });
    expect(login.status).toBe(302);
    const back = new URL(login.headers.get('location')!);
    expect(back.searchParams.get('error')).toBe('temporarily_unavailable');
    expect(back.searchParams.get('state')).toBe('s1');
    expect(back.searchParams.get('iss')).toBe(h.config.publicUrl);
    expect(logs.some((l) => JSON.parse(l).error === 'BrokerUnavailableError')).toBe(true);
  });
});
