#!/usr/bin/env node
// Bundles each Lambda function on its own (dist/<name>/index.mjs): only what its routes use,
// minified, ESM, with source maps; the same esbuild options the CDK stack uses. Prints sizes, and
// writes what went into each bundle (esbuild's metafile) to dist/<name>/meta.json for the bench.
import { build } from 'esbuild';
import { readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export const ESBUILD_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minify: true,
  sourcemap: true,
  // As the CDK stack builds them: line mappings only (the sources are in the repository).
  sourcesContent: false,
  mainFields: ['module', 'main'],
  // Some dependencies still call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
};

const names = readdirSync(path.join(root, 'functions')).filter((n) => statSync(path.join(root, 'functions', n)).isDirectory());
const sizes = [];
for (const name of names) {
  const outfile = path.join(root, 'dist', name, 'index.mjs');
  const { metafile } = await build({ ...ESBUILD_OPTIONS, metafile: true, entryPoints: [path.join(root, 'functions', name, 'index.ts')], outfile });
  writeFileSync(path.join(root, 'dist', name, 'meta.json'), JSON.stringify(metafile));
  sizes.push({ function: name, kib: Math.round(statSync(outfile).size / 1024) });
}
console.table(sizes);
