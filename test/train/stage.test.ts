import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../pipeline/core/fs.ts';
import { parseParams } from '../../pipeline/core/params.ts';
import type { StageContext } from '../../pipeline/core/stage.ts';
import { DEFAULT_SETTINGS, loadPipeline, repro } from '../../pipeline/engine/index.ts';
import { FEATURES } from '../../pipeline/data/fusion/schema.ts';
import { modelCardProblems, type TabularModelCard } from '../../pipeline/train/card.ts';
import { parseGbdtModel, predictProba } from '../../pipeline/train/gbdt/index.ts';
import { trainStage } from '../../pipeline/train/stage.ts';
import { fitTabularGbdt, onnxMaxAbsDiff, ONNX_TOLERANCE, readNumericTable } from '../../pipeline/train/trainers.ts';
import { snapshot } from '../engine/helpers.ts';
import { RecordingLogger } from '../support/logger.ts';
import { fusionRows, prepareFusion } from './stage-fixtures.ts';

const FAST = { 'n-estimators': 12, 'max-depth': 3, 'early-stopping-rounds': 5 };
const DEP = 'data/processed/fusion';
const OUT = 'models/context-correction';

let base: string;
let prepared: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'skintwin-train-'));
  prepared = join(base, 'prepared');
  await prepareFusion(join(base, 'raw'), fusionRows(1500), prepared);
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** A temp repository whose only stage trains on a copy of the prepared folder. */
async function repo(params: Record<string, unknown> = {}): Promise<string> {
  const root = await mkdtemp(join(base, 'repo-'));
  await mkdir(join(root, DEP), { recursive: true });
  for (const f of ['train.csv', 'val.csv', 'test.csv', 'schema.json', 'dataset.json']) {
    await writeFile(join(root, DEP, f), await readFile(join(prepared, f)));
  }
  const yaml =
    'stages:\n  train-context-correction:\n    kind: train\n' +
    `    params: ${JSON.stringify({ model: 'context-correction', trainer: 'gbdt', ...FAST, ...params })}\n` +
    `    deps: [${DEP}]\n    outs: [${OUT}]\n`;
  await mkdir(join(root, 'pipeline'), { recursive: true });
  await writeFile(join(root, 'pipeline/pipeline.yaml'), yaml);
  return root;
}

async function run(root: string) {
  const logger = new RecordingLogger();
  const p = await loadPipeline({ root });
  const report = await repro(p, { logger, env: { GITHUB_SHA: 'a'.repeat(40) } });
  return { report, logger, stage: report.stages[0]! };
}

/** The stage's run() called directly, for error classes. */
function context(root: string, raw: Record<string, unknown>, outRoot: string): StageContext<never> {
  const params = parseParams(trainStage.params, { model: 'context-correction', trainer: 'gbdt', ...FAST, ...raw }, { what: 'train' });
  return {
    name: 'train-context-correction',
    kind: 'train',
    params: params as never,
    settings: DEFAULT_SETTINGS,
    root,
    deps: [DEP],
    outs: [OUT],
    path: (rel) => join(root, rel),
    out: (rel) => join(outRoot, rel),
    tmpDir: join(outRoot, 'tmp'),
    logger: new RecordingLogger(),
    now: () => new Date('2026-01-02T03:04:05Z'),
    signal: new AbortController().signal,
    env: {},
  };
}

describe('train stage, gbdt trainer', () => {
  it('trains context-correction from the prepared fusion data: card valid, ONNX = trainer, better than the baseline', async () => {
    const root = await repo();
    const { report, stage } = await run(root);
    expect(stage.error).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(stage.action).toBe('ran');
    const dir = join(root, OUT);
    const card = JSON.parse(await readFile(join(dir, 'model-card.json'), 'utf8')) as TabularModelCard;
    expect(modelCardProblems(card)).toEqual([]);
    const onnx = await readFile(join(dir, 'model.onnx'));
    expect(card.onnx.sha256).toBe(sha256(onnx));
    expect(stage.outputs['onnx-sha256']).toBe(card.onnx.sha256);
    expect(stage.outputs).toMatchObject({ 'model-dir': OUT, onnx: `${OUT}/model.onnx`, card: `${OUT}/model-card.json` });
    expect(card.model).toBe('context-correction');
    expect(card.task).toBe('tabular-classification');
    expect(card.classes).toEqual([
      { index: 0, id: 3, name: '3' },
      { index: 1, id: 17, name: '17' },
      { index: 2, id: 42, name: '42' },
    ]);
    expect(card.input).toEqual({ name: 'input', dtype: 'float32', shape: ['N', 27], features: [...FEATURES] });
    expect(card.output.probabilities.shape).toEqual(['N', 3]);
    expect(card.preprocessing.type).toBe('fusion-one-hot');
    expect(card.code.commit).toBe('a'.repeat(40));
    expect(card.training.executionProvider).toBe('cpu');
    expect(card.trainer.params['n-estimators']).toBe(12);
    expect(card.trainingData.path).toBe(DEP);
    expect(card.trainingData.sha256).toMatch(/^[0-9a-f]{64}$/);
    const v = card.metrics.validation;
    expect(v.accuracy).toBeGreaterThan(v.baselineAccuracy + 0.2);
    expect(v.accuracy).toBeGreaterThan(0.85);
    expect(Number(stage.outputs['val-accuracy'])).toBe(v.accuracy);
    expect(card.onnx.maxAbsDiffVsTrainer).toBeLessThanOrEqual(1e-5);
    // tr_p0 and skin_type_Oily drive the target: they lead the importance list.
    expect(card.featureImportance.slice(0, 2).map((f) => f.feature).sort()).toEqual(['skin_type_Oily', 'tr_p0']);
    expect(stage.summary).toContain('majority-class baseline');
    expect(stage.summary).toContain('`tr_p0`');

    // The ONNX file in onnxruntime gives the saved model's own probabilities on the test split.
    const model = parseGbdtModel(await readFile(join(dir, 'model.json'), 'utf8'));
    const test = await readNumericTable(join(root, DEP, 'test.csv'), 'test.csv', { features: FEATURES, target: 'target', targetRequired: true, allowMissing: false });
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(onnx);
    const out = await session.run({ input: new ort.Tensor('float32', test.x, [test.nRows, 27]) });
    const ts = predictProba(model, test);
    const ox = out.probabilities!.data as Float32Array;
    let worst = 0;
    for (let i = 0; i < ts.length; i++) worst = Math.max(worst, Math.abs(ts[i]! - ox[i]!));
    expect(worst).toBeLessThanOrEqual(1e-5);
    expect(Array.from(out.label!.data as BigInt64Array, Number).every((l) => [3, 17, 42].includes(l))).toBe(true);
  });

  it('rejects gbdt for an image model when the pipeline loads', async () => {
    const root = await repo({ model: 'skin-type' });
    await expect(loadPipeline({ root })).rejects.toThrow(/gbdt trainer trains tabular models/);
  });

  it('a failing train leaves the existing model folder and lock entry as they were', async () => {
    const root = await repo();
    expect((await run(root)).stage.action).toBe('ran');
    const before = await snapshot(join(root, OUT));
    const lockBefore = await readFile(join(root, 'pipeline/pipeline.lock'), 'utf8');
    // Training data with a single class: the stage re-runs (dep changed) and fails.
    const lines = (await readFile(join(root, DEP, 'train.csv'), 'utf8')).trim().split('\n');
    await writeFile(join(root, DEP, 'train.csv'), [lines[0], ...lines.slice(1).map((l) => l.replace(/,\d+$/, ',3'))].join('\n') + '\n');
    const { stage } = await run(root);
    expect(stage.action).toBe('failed');
    expect(stage.error).toContain(`${DEP}/train.csv`);
    expect(stage.error).toContain('single class (3)');
    expect(await snapshot(join(root, OUT))).toEqual(before);
    expect(await readFile(join(root, 'pipeline/pipeline.lock'), 'utf8')).toBe(lockBefore);
  });

  it('bad prepared data: each a DataError naming the file (and line and column where there is one)', async () => {
    const cases: [string, (text: string) => string, RegExp][] = [
      ['empty training split', (t) => t.split('\n')[0] + '\n', /train\.csv: training data is empty/],
      ['NaN feature', (t) => t.replace(/\n[^,\n]+,/, '\nNaN,'), /train\.csv:2: age is `NaN`/],
      ['infinite feature', (t) => t.replace(/\n([^,\n]+),[^,\n]+,/, '\n$1,Infinity,'), /train\.csv:2: sleep_hours is `Infinity`: features must be finite/],
      ['text in a feature', (t) => t.replace(/\n[^,\n]+,/, '\nold,'), /train\.csv:2: age is `old`, not a number/],
    ];
    for (const [what, edit, message] of cases) {
      const root = await repo();
      const file = join(root, DEP, 'train.csv');
      await writeFile(file, edit(await readFile(file, 'utf8')));
      const error = await trainStage.run!(context(root, {}, join(root, '.staging'))).catch((e: unknown) => e);
      expect(error, what).toMatchObject({ name: 'DataError' });
      expect((error as Error).message, what).toMatch(message);
    }
  });

  it('a validation class that never occurs in training is an error naming the val file', async () => {
    const root = await repo();
    const file = join(root, DEP, 'val.csv');
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    lines[1] = lines[1]!.replace(/,\d+$/, ',99');
    await writeFile(file, lines.join('\n') + '\n');
    const error = await trainStage.run!(context(root, {}, join(root, '.staging'))).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'DataError' });
    expect((error as Error).message).toMatch(/val\.csv: validation has class\(es\) 99 that never occur in training/);
  });

  it('a missing schema.json says the dep is not prepared tabular data', async () => {
    const root = await repo();
    await rm(join(root, DEP, 'schema.json'));
    await expect(trainStage.run!(context(root, {}, join(root, '.staging')))).rejects.toThrow(/schema\.json: cannot read the prepared schema: missing/);
  });

  it('an out folder that cannot be written is a ConfigurationError naming it', async () => {
    const root = await repo();
    const blocker = join(root, 'blocker');
    await writeFile(blocker, 'a file, not a folder');
    const opt = { features: FEATURES, target: 'target', targetRequired: true, allowMissing: false };
    const train = await readNumericTable(join(root, DEP, 'train.csv'), 'train.csv', opt);
    const val = await readNumericTable(join(root, DEP, 'val.csv'), 'val.csv', opt);
    const error = await fitTabularGbdt({
      model: 'context-correction',
      train,
      val,
      params: { 'n-estimators': 2, 'max-depth': 2 },
      outDir: join(blocker, 'model'),
      outDisplay: 'blocker/model',
      preprocessing: { type: 'numeric', target: 'target' },
      trainingData: { path: DEP, sha256: 'f'.repeat(64), files: 3 },
      commit: null,
      now: () => new Date(),
      logger: new RecordingLogger(),
    }).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'ConfigurationError' });
    expect((error as Error).message).toMatch(/blocker\/model: cannot write the model there \(ENOTDIR\)/);
  });
});

describe('ONNX check', () => {
  it('reports the largest probability difference, so a model that disagrees with the trainer is caught', async () => {
    const root = await repo();
    expect((await run(root)).stage.action).toBe('ran');
    const model = parseGbdtModel(await readFile(join(root, OUT, 'model.json'), 'utf8'));
    const val = await readNumericTable(join(root, DEP, 'val.csv'), 'val.csv', { features: FEATURES, target: 'target', targetRequired: true, allowMissing: false });
    const proba = predictProba(model, val);
    expect(await onnxMaxAbsDiff(join(root, OUT, 'model.onnx'), model, val, proba)).toBeLessThanOrEqual(ONNX_TOLERANCE);
    proba[7] = proba[7]! + 1e-3;
    const off = await onnxMaxAbsDiff(join(root, OUT, 'model.onnx'), model, val, proba);
    expect(off).toBeGreaterThan(ONNX_TOLERANCE);
    expect(off).toBeCloseTo(1e-3, 5);
  });
});

describe('model card schema', () => {
  it('rejects a card with a missing field, a wrong type or a bad hash', () => {
    expect(modelCardProblems({})).toEqual(expect.arrayContaining([expect.stringContaining("must have required property 'classes'")]));
    const minimal = {
      format: 'skintwin-model-card',
      version: 1,
      model: 'm',
      task: 'tabular-classification',
      createdAt: '2026-01-02T03:04:05.000Z',
      classes: [
        { index: 0, id: 0, name: 'a' },
        { index: 1, id: 1, name: 'b' },
      ],
      input: { name: 'input', dtype: 'float32', shape: ['N', 2], features: ['x', 'y'] },
      preprocessing: { type: 'numeric', target: 't' },
      output: { label: { name: 'label', dtype: 'int64', shape: ['N'] }, probabilities: { name: 'probabilities', dtype: 'float32', shape: ['N', 2] } },
      trainer: { name: 'gbdt', params: { 'n-estimators': 10, 'early-stopping-rounds': null } },
      trainingData: { path: 't.csv', sha256: 'a'.repeat(64), files: 1, trainRows: 10, valRows: 2 },
      code: { commit: null },
      training: { startedAt: '2026-01-02T03:04:05.000Z', seconds: 1.5, executionProvider: 'cpu' },
      metrics: { validation: { rows: 2, accuracy: 1, logLoss: 0.1, baselineAccuracy: 0.5 } },
      featureImportance: [{ feature: 'x', gain: 1, cover: 2 }],
      onnx: { file: 'model.onnx', sha256: 'b'.repeat(64), bytes: 100 },
    };
    expect(modelCardProblems(minimal)).toEqual([]);
    expect(modelCardProblems({ ...minimal, onnx: { ...minimal.onnx, sha256: 'xyz' } }).join()).toContain('/onnx/sha256');
    expect(modelCardProblems({ ...minimal, metrics: { validation: { ...minimal.metrics.validation, accuracy: 1.5 } } }).join()).toContain('/metrics/validation/accuracy');
    expect(modelCardProblems({ ...minimal, extra: 1 }).join()).toContain('additional properties');
  });
});
