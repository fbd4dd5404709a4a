import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadPipeline, repro } from '../../pipeline/engine/index.ts';
import { readDatasetManifest } from '../../pipeline/data/layout/index.ts';
import { RecordingLogger } from '../support/logger.ts';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'fetch-engine-'));
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('fetch-dataset through the engine', () => {
  it('places the dataset atomically, records outputs, and skips an unchanged re-run', async () => {
    await mkdir(join(root, 'incoming/Dry'), { recursive: true });
    await mkdir(join(root, 'incoming/Oily'), { recursive: true });
    await writeFile(join(root, 'incoming/Dry/a.jpg'), 'a');
    await writeFile(join(root, 'incoming/Oily/b.jpg'), 'b');
    await writeFile(
      join(root, 'pipeline.yaml'),
      [
        'stages:',
        '  fetch-local:',
        '    kind: fetch-dataset',
        '    params: { source: path, path: incoming }',
        '    deps: [incoming]',
        '    outs: [data/raw/local]',
        '',
      ].join('\n'),
    );
    const pipeline = await loadPipeline({ root, file: 'pipeline.yaml' });
    const logger = new RecordingLogger();
    const first = await repro(pipeline, { logger, env: {} });
    expect(first.ok).toBe(true);
    expect(first.stages[0]).toMatchObject({ action: 'ran', outputs: { layout: 'class-folders', files: '2', 'dataset-dir': 'data/raw/local' } });
    const manifest = await readDatasetManifest(join(root, 'data/raw/local'));
    expect(manifest.labelCounts.classification).toEqual({ all: { Dry: 1, Oily: 1 } });

    const second = await repro(await loadPipeline({ root, file: 'pipeline.yaml' }), { logger, env: {} });
    expect(second.stages[0]?.action).toBe('skipped');

    await writeFile(join(root, 'incoming/Oily/c.jpg'), 'c');
    const third = await repro(await loadPipeline({ root, file: 'pipeline.yaml' }), { logger, env: {} });
    expect(third.stages[0]).toMatchObject({ action: 'ran', outputs: { files: '3' } });
    expect(await readFile(join(root, 'data/raw/local/Oily/c.jpg'), 'utf8')).toBe('c');
  }, 60_000);

  it('reports a bad source definition at load time, naming the field', async () => {
    await writeFile(join(root, 'pipeline.yaml'), 'stages:\n  f:\n    kind: fetch-dataset\n    params: { source: kaggle }\n    outs: [data/raw/k]\n');
    await expect(loadPipeline({ root, file: 'pipeline.yaml' })).rejects.toThrow(/`source: kaggle` needs `dataset: owner\/slug`/);
  });
});
