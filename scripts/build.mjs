#!/usr/bin/env node
// The project's build: bundles the CLI, every stage action, the dev tools and the benchmarks
// into dist/ (ESM, Node 20+). Native modules stay external and load from the repo's node_modules.
// Writes only files whose bytes changed and removes stale ones, so re-running it is cheap and safe.

import { build } from 'esbuild';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist');

// Native addons cannot be bundled; every other dependency is, so a bundle needs only node_modules
// for these two.
const NATIVE = ['sharp', 'onnxruntime-node', '@julusian/jpeg-turbo', 'koffi'];

// Bundled CommonJS dependencies call `require`, which ESM output lacks.
const BANNER = "import { createRequire as __skintwinCreateRequire } from 'node:module';\n" +
  'const require = __skintwinCreateRequire(import.meta.url);';

/** Entry name (path under dist/, no extension) → source file, for everything that exists. */
async function entries() {
  const result = {};
  const missing = [];
  const cli = 'pipeline/cli/entry.ts';
  if (existsSync(join(root, cli))) result.cli = cli;
  else missing.push(cli);

  for (const dir of await listNames(join(root, 'actions'), (d) => d.isDirectory())) {
    const main = `actions/${dir}/main.ts`;
    if (existsSync(join(root, main))) result[`actions/${dir}`] = main;
  }
  // Worker threads load their own script: the preprocessing pool looks for it in dist/workers/.
  const preprocessWorker = 'pipeline/data/images/preprocess-worker.ts';
  if (existsSync(join(root, preprocessWorker))) result['workers/preprocess'] = preprocessWorker;
  const gen = 'actions/lib/gen-actions.ts';
  if (existsSync(join(root, gen))) result['tools/gen-actions'] = gen;

  for (const file of await listNames(join(root, 'bench'), (d) => d.isFile())) {
    const match = /^(.+)\.bench\.ts$/.exec(file);
    if (match) result[`bench/${match[1]}`] = `bench/${file}`;
  }
  return { entryPoints: result, missing };
}

/** Sorted names of the entries of `dir` that `keep` accepts; none when it does not exist. */
async function listNames(dir, keep) {
  try {
    return (await readdir(dir, { withFileTypes: true })).filter(keep).map((d) => d.name).sort();
  } catch {
    return [];
  }
}

async function walk(dir) {
  const out = [];
  let items;
  try {
    items = await readdir(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const item of items) {
    const path = join(dir, item.name);
    if (item.isDirectory()) out.push(...(await walk(path)));
    else out.push(path);
  }
  return out;
}

/** Write `data` to `path` unless it already holds exactly these bytes; temp file + rename. */
async function writeIfChanged(path, data) {
  try {
    const current = await readFile(path);
    if (Buffer.compare(current, data) === 0) return false;
  } catch {
    // absent: write it
  }
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data);
  await rename(tmp, path);
  return true;
}

export async function buildAll({ quiet = false } = {}) {
  const started = performance.now();
  const { entryPoints, missing } = await entries();
  const result = await build({
    absWorkingDir: root,
    entryPoints,
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    // esbuild itself is only imported when the preprocessing pool runs from the TypeScript sources
    // (tests), to bundle its worker; dist/ ships that worker prebuilt.
    external: [...NATIVE, 'esbuild', '*.node'],
    banner: { js: BANNER },
    chunkNames: 'chunks/[name]-[hash]',
    sourcemap: true,
    write: false,
    logLevel: 'warning',
    legalComments: 'none',
  });

  const produced = new Set();
  let written = 0;
  for (const file of result.outputFiles) {
    produced.add(file.path);
    if (await writeIfChanged(file.path, file.contents)) written++;
  }
  // Stale outputs (a removed action or benchmark, old chunks) must not survive a rebuild.
  let removed = 0;
  for (const path of await walk(outdir)) {
    if (!produced.has(path)) {
      await rm(path, { force: true });
      removed++;
    }
  }

  const ms = Math.round(performance.now() - started);
  if (!quiet) {
    const count = Object.keys(entryPoints).length;
    console.log(`build: ${count} entries → ${relative(root, outdir) || '.'}${sep} (${written} written, ${removed} removed) in ${ms} ms`);
  }
  for (const m of missing) console.warn(`build: warning: ${m} does not exist yet, skipped`);
  return { entryPoints, written, removed, ms };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    await buildAll({ quiet: process.argv.includes('--quiet') });
  } catch (error) {
    // esbuild already printed the located errors.
    if (!error?.errors) console.error(error);
    process.exitCode = 1;
  }
}
