// Bundles each Lambda function on its own into dist/<name>/ with infra/bundle.ts, exactly as the
// CDK stack does. Prints sizes, and writes what went into each bundle (esbuild's metafile) to
// dist/<name>/meta.json for the bench.
import { statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { FUNCTION_NAMES } from '../functions/manifest.js';
import { bundleFunction, PROJECT_ROOT } from '../infra/bundle.js';

export function buildAll(root = PROJECT_ROOT): { function: string; kib: number; files: number }[] {
  return FUNCTION_NAMES.map((name) => {
    const outdir = path.join(root, 'dist', name);
    const metafile = bundleFunction(name, outdir);
    writeFileSync(path.join(outdir, 'meta.json'), JSON.stringify(metafile));
    const files = Object.keys(metafile.outputs).filter((f) => f.endsWith('.mjs'));
    return { function: name, kib: Math.round(files.reduce((n, f) => n + statSync(path.join(PROJECT_ROOT, f)).size, 0) / 1024), files: files.length };
  });
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) console.table(buildAll());
