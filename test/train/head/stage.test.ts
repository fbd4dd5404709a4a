import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../pipeline/core/fs.ts';
import { loadPipeline, repro } from '../../../pipeline/engine/index.ts';
import { encodeModel } from '../../../pipeline/onnx/index.ts';
import { modelCardProblems, type ModelCard } from '../../../pipeline/train/card.ts';
import { builtinExtractor, extractorModel } from '../../../pipeline/train/head/extractor.ts';
import { RecordingLogger } from '../../support/logger.ts';
import { writeDetectionPrepared, writePrepared } from './fixtures.ts';

const DEP = 'data/processed/skin-type';
const OUT = 'models/skin-type';
const FAST = { epochs: 40, patience: 10, 'batch-size': 8, 'head-learning-rate': 0.05 };

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'skintwin-head-stage-'));
  await writePrepared(join(base, 'prepared'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A temp repository with one train stage on a copy of the prepared image folder. */
async function repo(params: Record<string, unknown>, deps: string[] = [DEP]): Promise<string> {
  const root = await mkdtemp(join(base, 'repo-'));
  for (const split of ['train', 'val', 'test']) {
    await mkdir(join(root, DEP, split), { recursive: true });
    for (const f of ['images.u8', 'index.jsonl', 'meta.json']) await writeFile(join(root, DEP, split, f), await readFile(join(base, 'prepared', split, f)));
  }
  const yaml =
    'stages:\n  train-skin-type:\n    kind: train\n' +
    `    params: ${JSON.stringify({ model: 'skin-type', trainer: 'head', ...params })}\n` +
    `    deps: [${deps.join(', ')}]\n    outs: [${OUT}]\n`;
  await mkdir(join(root, 'pipeline'), { recursive: true });
  await writeFile(join(root, 'pipeline/pipeline.yaml'), yaml);
  return root;
}

async function run(root: string) {
  const logger = new RecordingLogger();
  const p = await loadPipeline({ root });
  const report = await repro(p, { logger, env: { GITHUB_SHA: 'c'.repeat(40) } });
  return { report, logger, stage: report.stages[0]! };
}

async function loadError(params: Record<string, unknown>, deps?: string[]): Promise<Error> {
  const root = await repo(params, deps);
  return (await loadPipeline({ root }).catch((e: unknown) => e)) as Error;
}

describe('train stage, head trainer', () => {
  it('trains skin-type from a prepared image folder: outputs, card, summary', async () => {
    const root = await repo({ ...FAST, 'execution-provider': 'cpu' });
    const { report, stage, logger } = await run(root);
    expect(stage.error).toBeUndefined();
    expect(report.ok).toBe(true);
    const card = JSON.parse(await readFile(join(root, OUT, 'model-card.json'), 'utf8')) as ModelCard;
    expect(modelCardProblems(card)).toEqual([]);
    expect(card.onnx.sha256).toBe(sha256(await readFile(join(root, OUT, 'model.onnx'))));
    expect(card.code.commit).toBe('c'.repeat(40));
    expect(card.trainingData).toMatchObject({ path: DEP, trainRows: 36, valRows: 18 });
    expect(card.trainingData.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(stage.outputs).toEqual({
      'model-dir': OUT,
      onnx: `${OUT}/model.onnx`,
      'onnx-sha256': card.onnx.sha256,
      card: `${OUT}/model-card.json`,
      'val-accuracy': String(card.metrics.validation!.accuracy),
      'val-log-loss': String(card.metrics.validation!.logLoss),
      'val-map50': '',
    });
    expect(card.metrics.validation!.accuracy).toBeGreaterThan(0.8);
    expect(stage.summary).toContain('### Trained `skin-type` (head)');
    expect(stage.summary).toMatch(/\| accuracy \| \d\.\d{4} \| 0\.3333 \|/);
    expect(stage.summary).toContain('| macro F1 |');
    expect(stage.summary).toContain('Extractor: built-in (40 channels, stride 16)');
    expect(stage.summary).toContain(card.onnx.sha256);
    expect(stage.summary).toContain('on cpu');
    expect(logger.messages('info').some((m) => m.includes('onnxruntime CPU'))).toBe(true);
    // A re-run with nothing changed does not train again.
    const again = await run(root);
    expect(again.stage.action).not.toBe('ran');
  });

  it('a backbone listed as a second dep trains from that file; skin-detection on classification data is refused', async () => {
    const fx = builtinExtractor(32);
    const root = await repo({ ...FAST, backbone: 'backbones/bb.onnx', 'backbone-output': fx.output }, [DEP, 'backbones/bb.onnx']);
    await mkdir(join(root, 'backbones'));
    await writeFile(join(root, 'backbones/bb.onnx'), encodeModel(extractorModel(fx)));
    const { stage } = await run(root);
    expect(stage.error).toBeUndefined();
    const card = JSON.parse(await readFile(join(root, OUT, 'model-card.json'), 'utf8')) as ModelCard;
    expect(card.extractor).toMatchObject({ kind: 'backbone', backbone: 'backbones/bb.onnx', output: fx.output, channels: fx.channels });
    expect(stage.summary).toContain('backbone `backbones/bb.onnx`');

    const det = await repo({ ...FAST, model: 'skin-detection' });
    const failed = (await run(det)).stage;
    expect(failed.action).toBe('failed');
    expect(failed.error).toContain('`skin-detection` needs a prepared detection image folder; this one is for task `classification`');
  });

  it('trains skin-detection from a prepared detection folder: val-map50 set, classifier outputs empty', async () => {
    const root = await mkdtemp(join(base, 'det-'));
    await writeDetectionPrepared(join(root, 'data/processed/skin-detection'));
    await mkdir(join(root, 'pipeline'), { recursive: true });
    const params = { model: 'skin-detection', trainer: 'head', epochs: 2, patience: 2, 'batch-size': 4, 'execution-provider': 'cpu' };
    await writeFile(
      join(root, 'pipeline/pipeline.yaml'),
      `stages:\n  train-skin-detection:\n    kind: train\n    params: ${JSON.stringify(params)}\n    deps: [data/processed/skin-detection]\n    outs: [models/skin-detection]\n`,
    );
    const { stage } = await run(root);
    expect(stage.error).toBeUndefined();
    const card = JSON.parse(await readFile(join(root, 'models/skin-detection/model-card.json'), 'utf8')) as ModelCard;
    expect(modelCardProblems(card)).toEqual([]);
    expect(card.task).toBe('object-detection');
    expect(stage.outputs['val-accuracy']).toBe('');
    expect(stage.outputs['val-log-loss']).toBe('');
    expect(stage.outputs['val-map50']).toBe(String(card.metrics.validation!.map50));
    expect(stage.outputs['onnx-sha256']).toBe(sha256(await readFile(join(root, 'models/skin-detection/model.onnx'))));
    expect(stage.summary).toContain('### Trained `skin-detection` (head)');
    expect(stage.summary).toMatch(/\| mAP@0\.5 \| \d\.\d{4} \|/);
  });

  it('params checked at load: head params on another trainer, head on a tabular model, backbone without its output', async () => {
    const gbdt = await loadError({ trainer: 'gbdt', model: 'context-correction', epochs: 5, head: 'mlp' });
    expect(gbdt.message).toContain('param `epochs` is for `trainer: head` only');
    expect(gbdt.message).toContain('param `head` is for `trainer: head` only');
    const tabular = await loadError({ model: 'context-correction' });
    expect(tabular.message).toContain('the head trainer trains image models');
    const backbone = await loadError({ backbone: 'models/bb.onnx' });
    expect(backbone.message).toContain('param `backbone` needs `backbone-output`');
    const hidden = await loadError({ 'hidden-units': 8 });
    expect(hidden.message).toContain('param `hidden-units` is for `head: mlp` only');
    const twoDeps = await loadError({}, [DEP, 'models/other.onnx']);
    expect(twoDeps.message).toContain('train needs exactly one dep');
    const provider = await loadError({ 'execution-provider': 'gpu' });
    expect(provider.message).toMatch(/execution-provider.*must be one of `auto`, `cpu`, `cuda`/);
  });
});
