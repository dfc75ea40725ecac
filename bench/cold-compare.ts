/**
 * `npx tsx bench/cold-compare.ts <other-root> [...]`: cold starts of this checkout's bundles beside
 * other checkouts' (e.g. main's, built there with `npm run build`), function by function, all in
 * the same rounds on the same minutes of the machine (bench/cold-start.ts). `BENCH_SM_LATENCY_MS`
 * delays each Secrets Manager answer, as a network would.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUNCTION_NAMES } from '../functions/manifest.js';
import { coldStarts } from './cold-start.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const others = process.argv.slice(2);
if (others.length === 0) throw new TypeError('usage: tsx bench/cold-compare.ts <other checkout with dist/> [...]');
const runs = Number(process.env['BENCH_RUNS'] ?? 11);
const latencyMs = Number(process.env['BENCH_SM_LATENCY_MS'] ?? 0);
const rows = await coldStarts(root, FUNCTION_NAMES, runs, { others, latencyMs });
console.log(`cold start over node -e 0, this checkout beside ${others.join(', ')} (${runs} rounds; median of pairs; Secrets Manager answers after ${latencyMs} ms)`);
console.table(rows.map((r) => ({
  function: r.function,
  'this: delta ms': r['delta ms (median of pairs)'],
  ...Object.fromEntries(others.map((o) => [`${o}: delta ms`, r[`${o}: delta ms`]])),
})));
