/**
 * How a function is bundled, in one place: the CDK stack's code assets (infra/constructs/
 * broker-function.ts) and `npm run build` (dist/, which the benchmarks measure) both call
 * `bundleFunction`, so the benchmarks time exactly what deploys.
 *
 * Each function is bundled on its own, only what its routes use: minified ESM with line-only
 * source maps. A function that reads secrets is two files: `index.mjs`, the entry, with what
 * starts the cold start's read (the AWS JSON client, SigV4, the Secrets Manager adapter), and a
 * chunk with everything else (the configuration's parser, the routes, the runtime), loaded by a
 * dynamic import once the read is on the wire (functions/handler.ts). The entry imports nothing
 * the chunk imports, so there is no third file of shared code. The others are one file.
 */
import { buildSync, type BuildOptions, type Metafile } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseConfigText } from '../lib/config/parse.js';
import { prepareConfig } from '../lib/config/prepared.js';

/** The repository root: where `package-lock.json`, `functions/` and `lib/` are. */
export const PROJECT_ROOT = fileURLToPath(new URL('../', import.meta.url));

export const ESBUILD_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  // The functions run on Lambda's newest Node.js (infra/constructs/broker-function.ts); the
  // local runner and the benchmarks on Node.js 20, which runs this output too.
  target: 'node22',
  minify: true,
  sourcemap: true,
  // Line mappings only: the sources are in the repository, and a smaller map loads faster. The
  // functions do not set --enable-source-maps (it parses the map at every cold start); the map is
  // for reading a crash's stack offline.
  sourcesContent: false,
  splitting: true,
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  mainFields: ['module', 'main'],
  legalComments: 'none',
  logLevel: 'warning',
} as const satisfies BuildOptions;

/**
 * Bundles `functions/<name>/index.ts` into `outdir` (emptied first): `index.mjs`, its chunks and
 * their maps. Returns esbuild's metafile (what went into each file).
 */
export function bundleFunction(name: string, outdir: string): Metafile {
  rmSync(outdir, { recursive: true, force: true });
  const { metafile } = buildSync({
    ...ESBUILD_OPTIONS,
    absWorkingDir: PROJECT_ROOT,
    entryPoints: { index: path.join(PROJECT_ROOT, 'functions', name, 'index.ts') },
    outdir,
    metafile: true,
  });
  return metafile;
}

/**
 * The output files that load before the entry's code runs: the entry and every file it imports
 * statically, transitively (a dynamic import's chunk loads later). For a function that reads
 * secrets, what loads before its reads start.
 */
export function loadedWithEntry(metafile: Pick<Metafile, 'outputs'>): string[] {
  const seen = new Set<string>();
  const visit = (file: string) => {
    if (seen.has(file) || !metafile.outputs[file]) return;
    seen.add(file);
    for (const i of metafile.outputs[file]!.imports) if (i.kind === 'import-statement') visit(i.path);
  };
  const entry = Object.keys(metafile.outputs).find((file) => metafile.outputs[file]!.entryPoint);
  if (entry !== undefined) visit(entry);
  return [...seen];
}

/** The configuration document's name inside every code asset; `BROKER_CONFIG` names it. */
export const BUNDLED_CONFIG_FILE = 'broker.config.json';

/** Its prepared form (lib/config/prepared.ts) beside it; `BROKER_CONFIG_PREPARED` names it. */
export const PREPARED_CONFIG_FILE = 'broker.config.prepared.json';

/**
 * Writes a configuration document and its prepared form into `dir` (a code asset): the document
 * parsed for AWS Lambda here, once, so that no cold start parses it again. Throws the parser's
 * `ConfigError` for a document that is not valid in Lambda.
 */
export function writeConfigFiles(dir: string, text: string): void {
  writeFileSync(path.join(dir, BUNDLED_CONFIG_FILE), text);
  writeFileSync(path.join(dir, PREPARED_CONFIG_FILE), prepareConfig(text, parseConfigText(text, { runtime: 'lambda' }), 'lambda'));
}
