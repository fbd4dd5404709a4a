#!/usr/bin/env node
// `npm run bench`: runs each built benchmark (dist/bench/*.js) in turn, or only those named on
// the command line, streams their output, and writes reports/bench/summary.md with every result.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const built = join(root, 'dist', 'bench');
const reports = join(root, 'reports', 'bench');

async function available() {
  try {
    return (await readdir(built)).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3)).sort();
  } catch {
    return [];
  }
}

/** Run one benchmark with the repository root as cwd; echo and keep its output. */
function runOne(name) {
  return new Promise((resolvePromise) => {
    const started = performance.now();
    const child = spawn(process.execPath, [join(built, `${name}.js`)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk) => {
      process.stdout.write(chunk);
      output += chunk;
    });
    child.stderr.on('data', (chunk) => {
      process.stderr.write(chunk);
      output += chunk;
    });
    child.on('close', (code, signal) => {
      resolvePromise({ name, code: code ?? 1, signal, seconds: (performance.now() - started) / 1000, output });
    });
  });
}

/** A benchmark's JSON report as markdown lines, when it wrote one. */
async function jsonSection(name) {
  const path = join(reports, `${name}.json`);
  if (!existsSync(path)) return [];
  try {
    const text = await readFile(path, 'utf8');
    JSON.parse(text);
    return [`Raw results: [\`${name}.json\`](${name}.json)`, ''];
  } catch {
    return [`\`${name}.json\` is not valid JSON`, ''];
  }
}

const all = await available();
const wanted = process.argv.slice(2).map((a) => a.replace(/\.(bench\.ts|js)$/, ''));
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  console.error(`bench: unknown benchmark(s) ${unknown.join(', ')}; available: ${all.join(', ') || 'none (run npm run build)'}`);
  process.exit(2);
}
const names = wanted.length ? wanted : all;
if (!names.length) {
  console.error('bench: no benchmarks built under dist/bench (run `npm run build`)');
  process.exit(2);
}

const results = [];
for (const name of names) {
  console.log(`\n=== ${name} ===`);
  results.push(await runOne(name));
}

const lines = ['# Benchmarks', '', `Node ${process.version}, ${new Date().toISOString()}`, ''];
lines.push('| benchmark | result | seconds |', '|---|---|---|');
for (const r of results) lines.push(`| ${r.name} | ${r.code === 0 ? 'ok' : `failed (${r.signal ?? `exit ${r.code}`})`} | ${r.seconds.toFixed(1)} |`);
lines.push('');
for (const r of results) {
  lines.push(`## ${r.name}`, '', '```', r.output.trimEnd(), '```', '');
  lines.push(...(await jsonSection(r.name)));
}
await mkdir(reports, { recursive: true });
const summary = join(reports, 'summary.md');
const tmp = `${summary}.${process.pid}.tmp`;
await writeFile(tmp, lines.join('\n'));
await rename(tmp, summary);
console.log(`\nbench: summary written to reports/bench/summary.md`);
if (results.some((r) => r.code !== 0)) process.exitCode = 1;
