/**
 * The setup every provider test shares: a local peer of the provider, started on the broker's
 * clock; the harness, configured with the peer's provider block; the clock (and the peer's test
 * switches) reset after each test; both closed at the end.
 */
import { afterAll, afterEach, beforeAll } from 'vitest';
import { startHarness, type Harness, type HarnessOptions } from './harness.js';

export interface ProviderSuiteOptions<P extends { close(): Promise<void> }> {
  /** Starts the peer; `now` is the broker's clock (epoch seconds), test offset included. */
  start(now: () => number): Promise<P>;
  /** Puts the peer's provider into the configuration document. */
  configure(doc: Parameters<NonNullable<HarnessOptions['configure']>>[0], peer: P): void;
  /** Hands the started peer and harness to the test file. */
  ready(peer: P, h: Harness): void;
  /** Puts back what a test switched on the peer. */
  reset?(peer: P): void;
}

export function providerSuite<P extends { close(): Promise<void> }>(options: ProviderSuiteOptions<P>): void {
  let peer: P | undefined;
  let h: Harness | undefined;
  beforeAll(async () => {
    const started = await options.start(() => Math.floor(Date.now() / 1000) + (h?.clockOffset ?? 0));
    peer = started;
    h = await startHarness({ configure: (doc) => options.configure(doc, started) });
    options.ready(started, h);
  });
  afterEach(() => {
    if (h) h.clockOffset = 0;
    if (peer) options.reset?.(peer);
  });
  afterAll(async () => {
    await h?.close();
    await peer?.close();
  });
}
