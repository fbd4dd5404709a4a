// The build (scripts/build.mjs): one ESM bundle per entry, native modules left to node_modules,
// rebuilds that rewrite nothing unchanged and remove what no entry produces any more.

import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { stageKinds } from '../../pipeline/stages.ts';
import { repoRoot } from '../support/runner/index.ts';

const dist = join(repoRoot, 'dist');

function build(): { status: number | null; out: string } {
  const r = spawnSync(process.execPath, ['scripts/build.mjs'], { cwd: repoRoot, encoding: 'utf8' });
  return { status: r.status, out: r.stdout + r.stderr };
}

beforeAll(() => {
  expect(inject('buildError'), 'the build must succeed').toBe('');
});

describe('scripts/build.mjs', () => {
  it('bundles every action, the CLI and the dev tools', () => {
    for (const kind of stageKinds.keys()) expect(existsSync(join(dist, 'actions', `${kind}.js`)), kind).toBe(true);
    expect(existsSync(join(dist, 'tools', 'gen-actions.js'))).toBe(true);
    expect(existsSync(join(dist, 'cli.js')), 'pipeline/cli/entry.ts → dist/cli.js').toBe(existsSync(join(repoRoot, 'pipeline/cli/entry.ts')));
  });

  it('bundles benchmarks under dist/bench/<name>.js', async () => {
    const sources = existsSync(join(repoRoot, 'bench')) ? (await readdir(join(repoRoot, 'bench'))).filter((f) => f.endsWith('.bench.ts')) : [];
    for (const s of sources) expect(existsSync(join(dist, 'bench', s.replace(/\.bench\.ts$/, '.js'))), s).toBe(true);
  });

  it('emits ESM with a require shim and source maps, and never bundles a native module', async () => {
    const files = (await readdir(dist, { recursive: true })).map(String).filter((f) => f.endsWith('.js'));
    expect(files.length).toBeGreaterThan(stageKinds.size);
    for (const f of files) {
      const text = await readFile(join(dist, f), 'utf8');
      expect(text.startsWith("import { createRequire as __skintwinCreateRequire } from 'node:module';"), f).toBe(true);
      const map = JSON.parse(await readFile(join(dist, `${f}.map`), 'utf8')) as { sources: string[] };
      const native = map.sources.filter((s) => /node_modules\/(sharp|onnxruntime-node|@img)\//.test(s));
      expect(native, f).toEqual([]);
    }
  });

  it('the bundled generator runs on its own (bundled CJS and ESM dependencies load)', () => {
    const r = spawnSync(process.execPath, [join(dist, 'tools', 'gen-actions.js'), '--check'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/stage actions up to date/);
  });

  it('a rebuild rewrites nothing unchanged and removes stale outputs', async () => {
    // Bring dist/ up to date with the sources as they are now, then rebuild.
    expect(build().status).toBe(0);
    const stale = join(dist, 'actions', 'removed-kind.js');
    await writeFile(stale, '// left over from a kind that no longer exists\n');
    const r = build();
    expect(r.status, r.out).toBe(0);
    expect(r.out).toMatch(/\(0 written, 1 removed\)/);
    expect(existsSync(stale)).toBe(false);
  });

  it('npm run bench refuses an unknown benchmark name and lists the built ones', async () => {
    const built = (await readdir(join(dist, 'bench')).catch(() => [] as string[])).filter((f) => f.endsWith('.js')).map((f) => f.slice(0, -3));
    const r = spawnSync(process.execPath, ['bench/run.mjs', 'no-such-bench'], { cwd: repoRoot, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/unknown benchmark\(s\) no-such-bench/);
    for (const name of built) expect(r.stderr).toContain(name);
  });
});
