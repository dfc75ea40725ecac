/**
 * The newcomer's path in a real browser: `npm start`'s demo page, driven by headless Chromium
 * (Debian's package, never a downloaded one) through playwright-core. Without Chromium on a
 * developer machine the test is skipped with a message; under CI it must run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../support/harness.js';
import { waitForReady } from '../support/processes.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && process.env['CI']) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);
if (!available) console.warn(`browser tests skipped: no ${CHROMIUM} (apt-get install chromium)`);

const root = path.resolve(import.meta.dirname, '../..');
const output = path.join(root, 'test-output');
let runner: ChildProcess;
let browser: Browser;
let url: string;

beforeAll(async () => {
  if (!available) return;
  const port = await freePort();
  const providerPort = await freePort();
  runner = spawn(path.join(root, 'node_modules/.bin/tsx'), ['local/main.ts'], {
    cwd: root,
    env: { ...process.env, PORT: String(port), DEMO_PROVIDER_PORT: String(providerPort), BROKER_CONFIG: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // A cold tsx start of the runner with oidc-provider, beside the rest of the suite on two cores.
  ({ url } = await waitForReady(runner, { name: 'the demo runner', timeoutMs: 100_000 }));
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  mkdirSync(output, { recursive: true });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  runner?.kill('SIGTERM');
});

/** Logs in at the embedded provider's forms as alice, then consents. */
async function loginAsAlice(page: Page): Promise<void> {
  await page.waitForSelector('input[name="login"]');
  await page.fill('input[name="login"]', 'alice');
  await page.fill('input[name="password"]', 'any password');
  await page.click('button[type="submit"]');
  await page.waitForSelector('button[type="submit"]');
  await page.click('button[type="submit"]'); // consent
}

/**
 * A fresh browser context on the demo page, logged in as alice with `client` (the page's status
 * then says `status`); `watch` sees the page before it loads.
 */
async function loggedIn(client = 'web', status = 'Logged in as a web app', watch?: (page: Page) => void) {
  const page = await (await browser.newContext()).newPage();
  watch?.(page);
  await page.goto(`${url}/`);
  await page.selectOption('#client', client);
  await page.click('#login');
  await loginAsAlice(page);
  await page.waitForURL(`${url}/`);
  await expect.poll(() => page.textContent('#status')).toContain(status);
  return page;
}

describe.skipIf(!available)('the demo page in Chromium', () => {
  it('logs in as a web app, shows the session and token, refreshes, and logs out', async () => {
    const page = await loggedIn();
    // (v2) The session names the broker's subject and the provider's.
    expect(await page.textContent('#session')).toContain('"idp_sub": "alice"');
    expect(await page.textContent('#session')).toContain('"email": "alice@example.com"');

    await page.click('#refresh');
    await expect.poll(() => page.textContent('#token')).toContain('access_token: ');
    expect(await page.textContent('#status')).toContain('served from the stored token');
    // The demo provider issues JWT access tokens, so the page shows one decoded.
    expect(await page.textContent('#token')).toContain('"aud": "urn:broker:demo-api"');
    // (v2) And the broker's own ID token, decoded: issued by the broker to the web client.
    const idToken = await page.textContent('#idtoken');
    expect(idToken).toContain(`"iss": "${url}"`);
    expect(idToken).toContain('"aud": "web"');
    expect(idToken).toContain('"idp": "demo"');
    await page.screenshot({ path: path.join(output, 'demo-web.png'), fullPage: true });

    await page.click('#logout');
    await expect.poll(() => page.textContent('#status')).toContain('Logged out.');
    await page.reload();
    await expect.poll(() => page.textContent('#status')).toBe('Not logged in.');
  }, 60_000);

  it('(v2) ends a web session everywhere with RP-initiated logout: broker, provider, and back to the page', async () => {
    const page = await loggedIn();
    await page.click('#refresh');
    await expect.poll(() => page.isEnabled('#end-session')).toBe(true);
    await page.click('#end-session');
    // The provider asks whether to sign out of it too.
    await page.waitForSelector('button[type="submit"]');
    await page.click('button[type="submit"]');
    await page.waitForURL(new RegExp(`^${url}/`));
    await expect.poll(() => page.textContent('#status')).toContain('Logged out everywhere');
    const session = await page.evaluate(async () => (await fetch('/session')).status);
    expect(session).toBe(401);
  }, 60_000);

  it('(v2) as a web app in proxy mode, calls the demo API through the broker, and the page never holds a token', async () => {
    // Every answer the page receives from the broker, as the page's scripts could read it.
    const bodies: string[] = [];
    const page = await loggedIn('web-proxy', 'proxy mode', (p) => p.on('response', async (res) => {
      if (res.url().startsWith(url)) bodies.push(`${res.url()}\n${JSON.stringify(await res.allHeaders())}\n${await res.text().catch(() => '')}`);
    }));
    await expect.poll(() => page.isEnabled('#call-api')).toBe(true);

    await page.click('#call-api');
    await expect.poll(() => page.textContent('#api')).toContain('HTTP 200');
    expect(await page.textContent('#api')).toContain('Hello, alice!');
    expect(await page.textContent('#api')).toContain('verified your access token');
    expect(await page.textContent('#status')).toContain('The demo API answered through the broker');

    await page.click('#refresh');
    await expect.poll(() => page.textContent('#token')).toContain('this page holds no token');
    await page.click('#call-api');
    await expect.poll(() => page.textContent('#api')).toContain('HTTP 200');
    await page.screenshot({ path: path.join(output, 'demo-proxy.png'), fullPage: true });

    // No token anywhere the page can reach: its DOM, its storage, its cookies, what it received.
    const jwt = /eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\./;
    expect(await page.content()).not.toMatch(jwt);
    const storage = await page.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }) + document.cookie);
    expect(storage).not.toMatch(jwt);
    expect(await page.evaluate(() => document.cookie)).toBe(''); // the session cookie is HttpOnly
    expect(bodies.some((b) => b.includes('/api/demo/hello'))).toBe(true);
    for (const b of bodies) expect(b).not.toMatch(jwt);

    await page.click('#logout');
    await expect.poll(() => page.textContent('#status')).toContain('Logged out.');
    const after = await page.evaluate(async () => (await fetch('/api/demo/hello', { headers: { 'X-Broker-Csrf': '1' } })).status);
    expect(after).toBe(401);
    await page.context().close();
  }, 60_000);

  it('logs in as a native app (PKCE, one-time code, rotating handle) and refreshes', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${url}/`);
    await page.selectOption('#client', 'native');
    await page.selectOption('#provider', 'demo-post');
    await page.click('#login');
    await loginAsAlice(page);
    await page.waitForURL(`${url}/`);
    await expect.poll(() => page.textContent('#status')).toContain('Logged in as a native app');
    expect(await page.textContent('#token')).toContain('(an opaque access token)');
    const handle = await page.evaluate(() => sessionStorage.getItem('handle'));
    await page.click('#refresh');
    await expect.poll(() => page.textContent('#status')).toContain('Refreshed');
    expect(await page.evaluate(() => sessionStorage.getItem('handle'))).not.toBe(handle);
    await page.screenshot({ path: path.join(output, 'demo-native.png'), fullPage: true });
    await page.click('#logout');
    await expect.poll(() => page.textContent('#status')).toContain('Logged out.');
  }, 60_000);
});
