/**
 * The example SPA (examples/spa/) as a newcomer uses it: `npm run example:spa`'s three parts
 * (provider, broker, page server) on free ports, the page on another origin of the same site as
 * the broker, driven in headless Chromium (Debian's package).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSpaExample, type RunningExample } from '../../local/example-spa.js';
import { freePort } from '../support/harness.js';

const CHROMIUM = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const available = existsSync(CHROMIUM);
if (!available && process.env['CI']) throw new Error(`${CHROMIUM} is missing: .ci/run installs Debian's chromium`);

let example: RunningExample;
let browser: Browser;

beforeAll(async () => {
  if (!available) return;
  example = await startSpaExample({ ports: { broker: await freePort(), provider: await freePort(), page: await freePort() } });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await example?.close();
});

const status = (page: Page) => page.textContent('#status');

/** Logs in at the provider's forms (its login form only when it has no session of its own yet). */
async function logIn(page: Page): Promise<void> {
  await page.click('#login');
  await page.waitForURL((url) => !url.href.startsWith(example.pageUrl));
  for (let step = 0; step < 5 && !page.url().startsWith(example.pageUrl); step++) {
    await page.waitForSelector('button[type="submit"], #status');
    if (page.url().startsWith(example.pageUrl)) break;
    if (await page.isVisible('input[name="login"]')) {
      await page.fill('input[name="login"]', 'alice');
      await page.fill('input[name="password"]', 'any password');
    }
    await page.click('button[type="submit"]'); // sign in, then consent
    await page.waitForLoadState();
  }
  await page.waitForURL(example.pageUrl);
  await expect.poll(() => status(page)).toContain('Logged in as');
}

describe.skipIf(!available)('the example SPA in Chromium', () => {
  it('logs in, calls the API, survives a reload, notices a broker restart, and logs out through the provider', async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(example.pageUrl);
    await expect.poll(() => status(page)).toBe('You are not logged in.');

    await logIn(page);
    expect(await page.textContent('#session')).toContain('"idp_sub": "alice"');
    await page.click('#call-api');
    await expect.poll(() => page.textContent('#api')).toContain('Authorization: Bearer ');
    // The page reads the header the broker exposes to it (docs/spa.md §6).
    expect(await page.textContent('#log')).toContain('POST /refresh → 200');

    await page.reload();
    await expect.poll(() => status(page)).toContain('Logged in as');
    await page.click('#call-api-3');
    await expect.poll(() => page.textContent('#api')).toContain('Three callers, one POST /refresh');

    // A restarted local broker has a new key ring: the session is over, and the page shows no
    // token of it any more.
    await example.restartBroker();
    await page.click('#call-api-3');
    await expect.poll(() => status(page)).toContain('Your session has ended');
    expect(await page.textContent('#api')).toBe('—');
    expect(await page.isVisible('#login')).toBe(true);

    await logIn(page);
    await page.click('#logout');
    // The provider asks whether to sign out there too; then it sends the browser back.
    await page.waitForSelector('button[type="submit"]');
    await page.click('button[type="submit"]');
    await page.waitForURL(example.pageUrl);
    await expect.poll(() => status(page)).toBe('Logged out, at the broker and at the provider.');
    expect(await page.textContent('#session')).toBe('—');
  }, 90_000);
});
