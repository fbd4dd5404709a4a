import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../pipeline/core/fs.ts';
import { trainGbdt } from '../../pipeline/train/gbdt/index.ts';
import { syntheticTable } from '../../pipeline/train/gbdt/synthetic.ts';
import { RecordingLogger } from '../support/logger.ts';

const gbdtIndex = fileURLToPath(new URL('../../pipeline/train/gbdt/index.ts', import.meta.url));
const synthetic = fileURLToPath(new URL('../../pipeline/train/gbdt/synthetic.ts', import.meta.url));

describe('gbdt worker threads inside an esbuild bundle', () => {
  it('trains with 2 workers from a minified bundle and matches the in-process model', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gbdt-bundle-'));
    try {
      const entry = join(dir, 'entry.ts');
      await writeFile(
        entry,
        `import { trainGbdt } from ${JSON.stringify(gbdtIndex)};
import { syntheticTable } from ${JSON.stringify(synthetic)};
import { createHash } from 'node:crypto';
const t = syntheticTable({ nRows: 600, nFeatures: 5, nClasses: 3, seed: 4, missing: 0.05 });
const logger = { debug() {}, info() {}, warn() {}, error() {}, group: (_t, f) => f(), progress: () => ({ tick() {}, set() {}, done() {} }), secret() {} };
const model = await trainGbdt({ ...t, classLabels: [0, 1, 2] }, undefined, { 'n-estimators': 5, threads: 2 }, { logger });
console.log(createHash('sha256').update(JSON.stringify(model.trees)).digest('hex'));
`,
      );
      const out = join(dir, 'out.mjs');
      // keepNames makes esbuild insert a naming helper into nested functions: the worker source must cope.
      await build({ entryPoints: [entry], outfile: out, bundle: true, format: 'esm', platform: 'node', minify: true, keepNames: true, logLevel: 'silent' });
      const { stdout } = await promisify(execFile)(process.execPath, [out], { cwd: dir });

      const t = syntheticTable({ nRows: 600, nFeatures: 5, nClasses: 3, seed: 4, missing: 0.05 });
      const model = await trainGbdt({ ...t, classLabels: [0, 1, 2] }, undefined, { 'n-estimators': 5, threads: 1 }, { logger: new RecordingLogger() });
      expect(stdout.trim()).toBe(sha256(JSON.stringify(model.trees)));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
