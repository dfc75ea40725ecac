/** Bundle sizes per function (dist/<name>/: the entry, its chunks and their source maps), and what weighs most in each (esbuild's metafile). */
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { Metafile } from 'esbuild';
import { loadedWithEntry } from '../infra/bundle.js';

export interface BundleRow {
  readonly function: string;
  readonly 'bundle KiB': number;
  /** The entry and what it imports statically: what loads before the secret reads start. */
  readonly 'before the reads KiB': number;
  readonly files: number;
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
    const meta = JSON.parse(readFileSync(path.join(root, 'dist', fn, 'meta.json'), 'utf8')) as Metafile;
    const code = Object.entries(meta.outputs).filter(([file]) => file.endsWith('.mjs'));
    const parts = new Map<string, number>();
    for (const [, out] of code) {
      for (const [input, { bytesInOutput }] of Object.entries(out.inputs)) parts.set(owner(input), (parts.get(owner(input)) ?? 0) + bytesInOutput);
    }
    const early = loadedWithEntry(meta);
    const kib = (bytes: number) => Math.round(bytes / 1024);
    const largest = [...parts].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, bytes]) => `${name} ${kib(bytes)}`).join(', ');
    const maps = code.map(([file]) => path.join(root, `${file}.map`)).filter((map) => existsSync(map));
    return {
      function: fn,
      'bundle KiB': kib(code.reduce((n, [, out]) => n + out.bytes, 0)),
      'before the reads KiB': kib(early.reduce((n, file) => n + meta.outputs[file]!.bytes, 0)),
      files: code.length,
      'source map KiB': kib(maps.reduce((n, map) => n + statSync(map).size, 0)),
      'largest parts (KiB)': largest,
    };
  });
}
