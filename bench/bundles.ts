/** Bundle sizes per function (dist/<name>/index.mjs and its source map), and what weighs most in each (esbuild's metafile). */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

interface Metafile {
  outputs: Record<string, { entryPoint?: string; bytes: number; inputs: Record<string, { bytesInOutput: number }> }>;
}

export interface BundleRow {
  readonly function: string;
  readonly 'bundle KiB': number;
  readonly 'source map KiB': number;
  readonly 'largest parts (KiB)': string;
}

/** Who an input file belongs to: its npm package, or the broker's own folder (`lib/store`, ...). */
function owner(file: string): string {
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (m) return m[1]!;
  const parts = file.split('/').filter((p) => p !== '..' && p !== '.');
  return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]!;
}

export function bundleRows(root: string, functions: readonly string[], top = 5): BundleRow[] {
  return functions.map((fn) => {
    const dir = path.join(root, 'dist', fn);
    const file = path.join(dir, 'index.mjs');
    const parts = new Map<string, number>();
    const metaFile = path.join(dir, 'meta.json');
    if (existsSync(metaFile)) {
      const meta = JSON.parse(readFileSync(metaFile, 'utf8')) as Metafile;
      const out = Object.values(meta.outputs).find((o) => o.entryPoint);
      for (const [input, { bytesInOutput }] of Object.entries(out?.inputs ?? {})) parts.set(owner(input), (parts.get(owner(input)) ?? 0) + bytesInOutput);
    }
    const largest = [...parts].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, bytes]) => `${name} ${Math.round(bytes / 1024)}`).join(', ');
    const map = `${file}.map`;
    return {
      function: fn,
      'bundle KiB': Math.round(statSync(file).size / 1024),
      'source map KiB': existsSync(map) ? Math.round(statSync(map).size / 1024) : 0,
      'largest parts (KiB)': largest,
    };
  });
}
