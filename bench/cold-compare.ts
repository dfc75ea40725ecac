/**
 * `npx tsx bench/cold-compare.ts <other-root>`: cold starts of this checkout's bundles beside
 * another checkout's (e.g. main's, built there with `node scripts/build.mjs`), function by
 * function, alternating which goes first, on the same machine in the same minutes
 * (bench/cold-start.ts measures each). The other checkout's bundles run as they were deployed
 * there, so its "with source maps" column is its deployed shape when it set NODE_OPTIONS.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUNCTION_NAMES } from '../functions/manifest.js';
import { coldStarts } from './cold-start.js';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const other = process.argv[2];
if (!other) throw new TypeError('usage: tsx bench/cold-compare.ts <other checkout with dist/>');
const runs = Number(process.env['BENCH_RUNS'] ?? 11);
const rows = [];
for (const [i, fn] of FUNCTION_NAMES.entries()) {
  const order = i % 2 ? [['other', other], ['this', root]] : [['this', root], ['other', other]];
  const out: Record<string, number> = {};
  for (const [label, dir] of order as [string, string][]) {
    const [row] = await coldStarts(dir, [fn], runs);
    out[`${label}: delta ms`] = row!['delta ms (median of pairs)'];
    out[`${label}: with source maps`] = row!['delta with --enable-source-maps'];
    out[`${label}: in process`] = row!['import + init ms (in process)'];
  }
  rows.push({ function: fn, ...out });
}
console.log(`cold start over node -e 0, this checkout beside ${other} (${runs} pairs each; median of pairs)`);
console.table(rows);
