import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseParams } from '../../pipeline/core/params.ts';
import type { AnyStageKind, StageContext } from '../../pipeline/core/stage.ts';
import { buildFusionDataStage } from '../../pipeline/data/build-fusion-data.ts';
import { openImageTensorFile } from '../../pipeline/data/images/tensor-file.ts';
import { prepareDataStage } from '../../pipeline/data/prepare-data.ts';
import { synthesize, synthParams } from '../../pipeline/data/synthetic/index.ts';
import { RecordingLogger } from '../support/logger.ts';

// The default pipeline's data stages over the embedded synthetic dataset (tiny preset).

let root: string;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'prepare-synth-'));
  await mkdir(join(root, 'data', 'raw'), { recursive: true });
  const params = parseParams(synthParams, { size: 'tiny', seed: 42 }, { what: 'synthetic' });
  await synthesize(join(root, 'data', 'raw', 'synthetic'), params, { logger: new RecordingLogger() });
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function ctx(kind: AnyStageKind, params: Record<string, unknown>, dep: string, out: string): StageContext<any> {
  return {
    name: out,
    kind: kind.kind,
    params: parseParams(kind.params, params, { what: out }),
    settings: { seed: 42, cacheDir: '.cache', jobs: 2 },
    root,
    deps: [dep],
    outs: [out],
    path: (rel: string) => join(root, rel),
    out: (rel: string) => join(root, rel),
    tmpDir: join(root, 'tmp'),
    logger: new RecordingLogger(),
    now: () => new Date(0),
    signal: new AbortController().signal,
    env: {},
  };
}

describe('data stages on the synthetic dataset', () => {
  it('builds the fusion table and prepares it', async () => {
    const built = await buildFusionDataStage.run!(ctx(buildFusionDataStage as AnyStageKind, {}, 'data/raw/synthetic', 'data/fusion/synthetic'));
    expect(built.outputs.rows).toBe(built.outputs.encoded);
    expect(Number(built.outputs.rows)).toBeGreaterThan(1000);
    const prepared = await prepareDataStage.run!(ctx(prepareDataStage as AnyStageKind, { task: 'tabular' }, 'data/fusion/synthetic', 'data/processed/fusion'));
    expect(prepared.outputs.quarantined).toBe('0');
    const total = ['train', 'val', 'test'].reduce((a, s) => a + Number(prepared.outputs[s]), 0);
    expect(total).toBe(Number(built.outputs.rows));
    expect(Number(prepared.outputs.train) / total).toBeGreaterThan(0.65);
  });

  it('prepares the detection and skin-type datasets with no quarantine and no leakage', async () => {
    for (const [task, out, size] of [
      ['detection', 'data/processed/face-troubles', 640],
      ['classification', 'data/processed/skin-type', 224],
    ] as const) {
      const r = await prepareDataStage.run!(ctx(prepareDataStage as AnyStageKind, { task }, 'data/raw/synthetic', out));
      const report = JSON.parse(await readFile(join(root, out, 'validation.json'), 'utf8'));
      expect(report.quarantined, JSON.stringify(report.quarantinedByReason)).toBe(0);
      expect(report.nearDuplicates.crossSplitPairs).toBe(0);
      expect(report.kept).toBe(40);
      const train = await openImageTensorFile(join(root, out), 'train');
      try {
        expect(train.meta.shape).toEqual([Number(r.outputs.train), size, size, 3]);
        expect(train.items.every((i) => i.skin_tone && i.source === 'synthetic')).toBe(true);
      } finally {
        await train.close();
      }
      const profile = JSON.parse(await readFile(join(root, out, 'reference-profile.json'), 'utf8'));
      expect(profile.count).toBe(Number(r.outputs.train));
    }
  });
});
