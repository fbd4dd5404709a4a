import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../pipeline/core/fs.ts';
import { openImageTensorFile } from '../../../pipeline/data/images/tensor-file.ts';
import { DataType, decodeModel, encodeModel, type OnnxModel } from '../../../pipeline/onnx/index.ts';
import { modelCardProblems, type ModelCard } from '../../../pipeline/train/card.ts';
import {
  classificationMetrics,
  fitClassificationHead,
  HEAD_DEFAULTS,
  logLoss,
  pooledFeatures,
  predictHead,
  trainHead,
} from '../../../pipeline/train/head/classifier.ts';
import { backboneExtractor, builtinExtractor } from '../../../pipeline/train/head/extractor.ts';
import { inverseFrequencyWeights } from '../../../pipeline/train/head/optim.ts';
import type { FeatureExtractor, HeadFitOptions, HeadParams } from '../../../pipeline/train/head/types.ts';
import { RecordingLogger } from '../../support/logger.ts';
import { labels, writePrepared, writeSplit, CLASS_NAMES } from './fixtures.ts';

let base: string;
let data: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'skintwin-head-cls-'));
  data = join(base, 'prepared');
  await writePrepared(data);
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

const FAST: HeadParams = { ...HEAD_DEFAULTS, epochs: 60, patience: 15, 'batch-size': 8, 'head-learning-rate': 0.05 };

function options(o: Partial<HeadFitOptions> & { dataDir?: string; outDir?: string } = {}): HeadFitOptions {
  return {
    model: 'skin-type',
    dataDir: o.dataDir ?? data,
    dataDisplay: 'data/processed/skin-type',
    outDir: o.outDir ?? join(base, 'out'),
    outDisplay: 'models/skin-type',
    params: FAST,
    extractor: builtinExtractor(32),
    provider: 'cpu',
    trainingData: { path: 'data/processed/skin-type', sha256: 'a'.repeat(64), files: 9 },
    commit: 'b'.repeat(40),
    now: () => new Date('2026-01-02T03:04:05Z'),
    logger: new RecordingLogger(),
    ...o,
  };
}

/** Gaussian blobs around K well-separated centres in F dimensions. */
function blobs(n: number, F: number, K: number, seed: number): { x: Float64Array; y: Int32Array } {
  let s = seed;
  const rnd = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 32);
  const x = new Float64Array(n * F);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const k = i % K;
    y[i] = k;
    // Offset of 3 on feature k, noise everywhere; features ≥ K are pure noise on another scale.
    for (let j = 0; j < F; j++) x[i * F + j] = (j === k ? 3 : 0) + (rnd() - 0.5) * 2 * (j >= K ? 100 : 1) + 50;
  }
  return { x, y };
}

describe('classification head training', () => {
  it('linear and mlp heads learn a separable set, deterministically for a seed', () => {
    const train = blobs(300, 6, 3, 1);
    const val = blobs(90, 6, 3, 2);
    for (const head of ['linear', 'mlp'] as const) {
      const params = { ...HEAD_DEFAULTS, head, 'hidden-units': 16, epochs: 80, patience: 80, 'head-learning-rate': 0.02 };
      const a = trainHead(train.x, train.y, val.x, val.y, 6, 3, { params, logger: new RecordingLogger() });
      const p = predictHead(a, val.x, 90);
      const m = classificationMetrics(p, val.y, train.y, 3);
      expect(m.accuracy).toBeGreaterThan(0.95);
      expect(m.f1Macro).toBeGreaterThan(0.95);
      expect(logLoss(p, val.y, 3)).toBeLessThan(0.3);
      const b = trainHead(train.x, train.y, val.x, val.y, 6, 3, { params, logger: new RecordingLogger() });
      expect(b.blocks.map((x) => Array.from(x.value))).toEqual(a.blocks.map((x) => Array.from(x.value)));
      const other = trainHead(train.x, train.y, val.x, val.y, 6, 3, { params: { ...params, seed: 7 }, logger: new RecordingLogger() });
      expect(other.blocks.map((x) => Array.from(x.value))).not.toEqual(a.blocks.map((x) => Array.from(x.value)));
    }
  });

  it('stops early once the validation loss stops improving and keeps the best epoch', () => {
    const train = blobs(120, 4, 2, 3);
    // Validation labels are noise: the loss stops improving quickly.
    const val = blobs(60, 4, 2, 4);
    val.y.reverse();
    const logger = new RecordingLogger();
    const h = trainHead(train.x, train.y, val.x, val.y, 4, 2, { params: { ...HEAD_DEFAULTS, epochs: 500, patience: 5 }, logger });
    expect(h.epochs).toBeLessThan(500);
    expect(h.epochs - h.bestEpoch).toBe(5);
    expect(logger.messages('info').some((m) => m.includes(`early stop at epoch ${h.epochs}`))).toBe(true);
  });

  it('class weights are inverse frequencies; absent classes weigh nothing', () => {
    expect(Array.from(inverseFrequencyWeights(Int32Array.from([0, 0, 0, 1]), 3))).toEqual([4 / 6, 2, 0]);
  });

  it('metrics: accuracy, macro F1 and the majority baseline', () => {
    // Predictions 0, 1, 1, 2 for truths 0, 1, 2, 2.
    const p = Float64Array.from([0.9, 0.05, 0.05, 0.1, 0.8, 0.1, 0.2, 0.5, 0.3, 0.1, 0.1, 0.8]);
    const m = classificationMetrics(p, Int32Array.from([0, 1, 2, 2]), Int32Array.from([2, 2, 1]), 3);
    expect(m.accuracy).toBe(0.75);
    expect(m.f1Macro).toBeCloseTo((1 + 2 / 3 + 2 / 3) / 3, 12);
    expect(m.baselineAccuracy).toBe(0.5);
  });
});

describe('fitClassificationHead', () => {
  it('writes one model.onnx (images → probabilities) equal to the trainer, and a valid card', async () => {
    const outDir = join(base, 'out-ok');
    const o = options({ outDir });
    const result = await fitClassificationHead(o);
    expect((await readdir(outDir)).sort()).toEqual(['model-card.json', 'model.onnx']);
    const bytes = await readFile(join(outDir, 'model.onnx'));
    expect(result.onnxSha256).toBe(sha256(bytes));
    const card = JSON.parse(await readFile(join(outDir, 'model-card.json'), 'utf8')) as ModelCard;
    expect(modelCardProblems(card)).toEqual([]);
    expect(card).toEqual(result.card);
    expect(card.task).toBe('image-classification');
    expect(card.classes).toEqual(CLASS_NAMES.map((name, index) => ({ index, id: index, name })));
    expect(card.input).toEqual({ name: 'images', dtype: 'float32', shape: ['N', 3, 32, 32], features: [] });
    expect(card.preprocessing).toMatchObject({ type: 'image', size: 32, resize: 'fill', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    expect(card.output).toEqual({ probabilities: { name: 'probabilities', dtype: 'float32', shape: ['N', 3] } });
    expect(card.extractor).toMatchObject({ kind: 'builtin', stride: 16 });
    expect(card.trainer).toMatchObject({ name: 'head', params: { head: 'linear', epochs: 60, seed: 42, backbone: null } });
    expect(card.training.executionProvider).toBe('cpu');
    expect(card.trainingData).toMatchObject({ trainRows: 36, valRows: 18 });
    const v = card.metrics.validation!;
    expect(v.rows).toBe(18);
    expect(v.accuracy).toBeGreaterThanOrEqual(0.9);
    expect(v.accuracy!).toBeGreaterThan(v.baselineAccuracy! + 0.4);
    expect(v.f1Macro).toBeGreaterThanOrEqual(0.9);
    expect(result.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    expect(card.onnx.maxAbsDiffVsTrainer).toBe(result.maxAbsDiff);

    // The file alone, in onnxruntime, on the test split: probabilities [N, 3] summing to 1, and
    // the same probabilities as the trainer's head on the pooled features.
    const model = decodeModel(bytes);
    expect(model.graph.inputs).toEqual([{ name: 'images', elemType: DataType.FLOAT, shape: ['N', 3, 32, 32] }]);
    expect(model.graph.outputs.map((x) => x.name)).toEqual(['probabilities']);
    expect(model.opsets).toEqual([{ domain: '', version: 17 }]);
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(bytes);
    const test = await openImageTensorFile(data, 'test');
    try {
      const first = await test.batches(100).next();
      if (first.done) throw new Error('no test batch');
      const batch = first.value;
      const out = await session.run({ images: new ort.Tensor('float32', batch.data, [6, 3, 32, 32]) });
      expect(out.probabilities!.dims).toEqual([6, 3]);
      const probs = out.probabilities!.data as Float32Array;
      for (let i = 0; i < 6; i++) expect(probs[i * 3]! + probs[i * 3 + 1]! + probs[i * 3 + 2]!).toBeCloseTo(1, 5);
      const predicted = Array.from({ length: 6 }, (_, i) => [0, 1, 2].reduce((b, k) => (probs[i * 3 + k]! > probs[i * 3 + b]! ? k : b), 0));
      expect(predicted).toEqual(batch.items.map((item) => item.label));
    } finally {
      await test.close();
      await session.release();
    }
  });

  it('an mlp head on a backbone: same contract, backbone recorded', async () => {
    const builtin = builtinExtractor(32);
    const src: OnnxModel = {
      irVersion: 8,
      opsets: [{ domain: '', version: 17 }],
      producerName: 'test',
      graph: { name: 'bb', nodes: builtin.nodes, initializers: builtin.initializers, inputs: [{ name: 'images', elemType: 1, shape: ['N', 3, 32, 32] }], outputs: [{ name: builtin.output, elemType: 1, shape: [] }] },
    };
    await writeFile(join(base, 'bb.onnx'), encodeModel(src));
    const ex = await backboneExtractor(join(base, 'bb.onnx'), 'bb.onnx', builtin.output, 32);
    const outDir = join(base, 'out-mlp');
    const r = await fitClassificationHead(options({ outDir, extractor: ex, params: { ...FAST, head: 'mlp', 'hidden-units': 8, backbone: 'bb.onnx', 'backbone-output': builtin.output } }));
    expect(r.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    expect(r.card.extractor).toMatchObject({ kind: 'backbone', backbone: 'bb.onnx', output: builtin.output });
    expect(r.card.trainer.params).toMatchObject({ head: 'mlp', 'hidden-units': 8, backbone: 'bb.onnx' });
    expect(r.card.metrics.validation!.accuracy).toBeGreaterThanOrEqual(0.8);
    expect(modelCardProblems(r.card)).toEqual([]);
  });

  describe('bad input: a clear error, and nothing previously written is touched', () => {
    async function failing(name: string, o: { train?: (number | undefined)[]; val?: (number | undefined)[]; extractor?: FeatureExtractor; outDir?: string }) {
      const dir = join(base, `bad-${name}`);
      await writePrepared(dir, { ...(o.train ? { train: o.train } : {}), ...(o.val ? { val: o.val } : {}) });
      const outDir = o.outDir ?? join(base, `bad-out-${name}`);
      if (!o.outDir) {
        await mkdir(outDir, { recursive: true });
        await writeFile(join(outDir, 'model.onnx'), 'previous model');
        await writeFile(join(outDir, 'model-card.json'), '{"previous":true}');
      }
      const error = await fitClassificationHead(options({ dataDir: dir, outDir, ...(o.extractor ? { extractor: o.extractor } : {}) })).catch((e: unknown) => e);
      if (!o.outDir) {
        expect((await readdir(outDir)).sort()).toEqual(['model-card.json', 'model.onnx']);
        expect(await readFile(join(outDir, 'model.onnx'), 'utf8')).toBe('previous model');
        expect(await readFile(join(outDir, 'model-card.json'), 'utf8')).toBe('{"previous":true}');
      }
      return error as Error;
    }

    it('empty training split', async () => {
      const e = await failing('empty', { train: [] });
      expect(e.name).toBe('DataError');
      expect(e.message).toBe('data/processed/skin-type/train/index.jsonl: training split is empty (no images)');
    });

    it('a single class in training', async () => {
      const e = await failing('single', { train: labels(6, [1]), val: labels(3, [1]) });
      expect(e.name).toBe('DataError');
      expect(e.message).toMatch(/train\/index\.jsonl: training data has a single class \(Normal\)/);
    });

    it('a validation class absent from training', async () => {
      const e = await failing('unseen', { train: labels(6, [0, 1]), val: labels(3, [0, 1, 2]) });
      expect(e.name).toBe('DataError');
      expect(e.message).toMatch(/val\/index\.jsonl: validation has class\(es\) Oily that never occur in training/);
    });

    it('an image without a label', async () => {
      const e = await failing('nolabel', { train: [0, 1, 2, undefined, 1] });
      expect(e.name).toBe('DataError');
      expect(e.message).toMatch(/train\/index\.jsonl:4: train\/images\/img-3\.jpg has no label/);
    });

    it('non-finite features', async () => {
      const nan: OnnxModel = {
        irVersion: 8,
        opsets: [{ domain: '', version: 17 }],
        producerName: 'test',
        graph: {
          name: 'nan',
          nodes: [{ opType: 'Log', inputs: ['images'], outputs: ['y'], attributes: [] }],
          initializers: [],
          inputs: [{ name: 'images', elemType: DataType.FLOAT, shape: ['N', 3, 32, 32] }],
          outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: ['N', 3, 32, 32] }],
        },
      };
      await writeFile(join(base, 'log.onnx'), encodeModel(nan));
      const extractor = await backboneExtractor(join(base, 'log.onnx'), 'log.onnx', 'y', 32);
      const e = await failing('nan', { extractor });
      expect(e.name).toBe('DataError');
      expect(e.message).toMatch(/^train\/images\/img-0\.jpg: backbone log\.onnx \(cut at y\) gives a non-finite feature/);
    });

    it('an output folder that cannot be written', async () => {
      await writeFile(join(base, 'a-file'), 'x');
      const e = await failing('unwritable', { outDir: join(base, 'a-file', 'model') });
      expect(e.name).toBe('ConfigurationError');
      expect(e.message).toBe('models/skin-type: cannot write the model there (ENOTDIR): the output folder must be writable');
    });

    it('a prepared folder without splits', async () => {
      await mkdir(join(base, 'not-prepared'), { recursive: true });
      const e = await fitClassificationHead(options({ dataDir: join(base, 'not-prepared'), outDir: join(base, 'np-out') })).then(() => new Error('resolved'), (x: unknown) => x as Error);
      expect(e.name).toBe('DataError');
      expect(e.message).toMatch(/prepared split `train` is missing or incomplete/);
    });
  });

  it('pools each channel by mean and max, streaming one batch at a time', async () => {
    const dir = join(base, 'pool');
    await writeSplit(dir, 'train', { labels: labels(2) }, 32);
    const file = await openImageTensorFile(dir, 'train');
    try {
      const ex = builtinExtractor(32);
      const { x, provider } = await pooledFeatures(ex, file, { batchSize: 4, provider: 'cpu', logger: new RecordingLogger() });
      expect(provider).toBe('cpu');
      expect(x).toHaveLength(6 * 2 * ex.channels);
      for (let c = 0; c < ex.channels; c++) expect(x[ex.channels + c]!).toBeGreaterThanOrEqual(x[c]! - 1e-7);
    } finally {
      await file.close();
    }
  });
});
