import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { sha256 } from '../../pipeline/core/fs.ts';
import { DataError, ConfigurationError } from '../../pipeline/core/errors.ts';
import {
  gbdtToOnnx,
  gbdtToOnnxModel,
  logLoss,
  parseGbdtModel,
  predictLabels,
  predictProba,
  saveGbdt,
  trainGbdt,
  type GbdtData,
  type GbdtModel,
} from '../../pipeline/train/gbdt/index.ts';
import { binOf, fitQuantizer, splitPoint } from '../../pipeline/train/gbdt/quantize.ts';
import { sliceTable, syntheticTable, type SyntheticTable } from '../../pipeline/train/gbdt/synthetic.ts';
import { attribute, decodeModel } from '../../pipeline/onnx/model.ts';
import { RecordingLogger } from '../support/logger.ts';

const io = () => ({ logger: new RecordingLogger() });

function split(t: SyntheticTable, classLabels: number[], trainShare = 0.8): { train: GbdtData; test: GbdtData } {
  const n = Math.floor(t.nRows * trainShare);
  return { train: { ...sliceTable(t, 0, n), classLabels }, test: { ...sliceTable(t, n, t.nRows), classLabels } };
}

function priorLogLoss(train: GbdtData, test: GbdtData): number {
  const C = train.classLabels.length;
  const counts = new Array<number>(C).fill(0);
  for (let i = 0; i < train.nRows; i++) counts[train.y[i]!]!++;
  let loss = 0;
  for (let i = 0; i < test.nRows; i++) loss -= Math.log(Math.max(counts[test.y[i]!]! / train.nRows, 1e-15));
  return loss / test.nRows;
}

async function onnxProba(model: GbdtModel, data: GbdtData): Promise<{ proba: Float32Array; labels: number[]; dims: readonly number[] }> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(gbdtToOnnx(model));
  const out = await session.run({ input: new ort.Tensor('float32', data.x, [data.nRows, data.nFeatures]) });
  return {
    proba: out.probabilities!.data as Float32Array,
    labels: Array.from(out.label!.data as BigInt64Array, Number),
    dims: out.probabilities!.dims,
  };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

describe('quantisation', () => {
  it('puts float32 split points between adjacent values, so x <= cut separates them exactly', () => {
    const a = Math.fround(1.1);
    const b = Math.fround(1.1000001); // the next float32 above a
    const m = splitPoint(a, b);
    expect(Math.fround(m)).toBe(m);
    expect(a <= m && b > m).toBe(true);
    const q = fitQuantizer(Float32Array.from([3, 1, 2, NaN, 2, 5]), 6, 1, 256, 1);
    const cuts = q.cuts[0]!;
    expect(cuts.length).toBe(3);
    expect([1, 2, 3, 5].map((v) => binOf(cuts, v))).toEqual([0, 1, 2, 3]);
    expect(binOf(cuts, NaN)).toBe(4);
  });

  it('keeps at most max-bin bins on a continuous feature', () => {
    const x = Float32Array.from({ length: 5000 }, (_, i) => Math.sin(i) * 100);
    const q = fitQuantizer(x, 5000, 1, 16, 1);
    expect(q.cuts[0]!.length).toBeLessThanOrEqual(15);
    expect(q.cuts[0]!.length).toBeGreaterThan(10);
  });
});

describe('trainGbdt', () => {
  const six = syntheticTable({ nRows: 3000, nFeatures: 12, nClasses: 6, seed: 11, missing: 0.03 });
  const labels6 = [0, 1, 2, 3, 4, 5];

  it('learns a known rule well above the class-prior baseline', async () => {
    const { train, test } = split(six, labels6);
    const logger = new RecordingLogger();
    const model = await trainGbdt(train, undefined, { 'n-estimators': 25, 'learning-rate': 0.2, threads: 1 }, { logger });
    const p = predictProba(model, test);
    const loss = logLoss(p, test.y, 6);
    const base = priorLogLoss(train, test);
    expect(loss).toBeLessThan(base * 0.75);
    const pred = predictLabels(model, test);
    const acc = pred.filter((l, i) => l === test.y[i]).length / test.nRows;
    expect(acc).toBeGreaterThan(0.55);
    expect(model.trees.length).toBe(25 * 6);
    expect(model.history.trainLogLoss.length).toBe(25);
    expect(model.history.trainLogLoss.at(-1)!).toBeLessThan(model.history.trainLogLoss[0]!);
    expect(logger.progressDone[0]).toMatchObject({ label: 'gbdt: boosting rounds', done: 25, total: 25 });
  });

  it('is deterministic for a seed, with 1 or 2 threads, and changes with the seed', async () => {
    const { train, test } = split(six, labels6);
    const params = { 'n-estimators': 8, 'max-depth': 4 };
    const a = await trainGbdt(train, test, { ...params, threads: 1 }, io());
    const b = await trainGbdt(train, test, { ...params, threads: 1 }, io());
    const c = await trainGbdt(train, test, { ...params, threads: 2 }, io());
    const d = await trainGbdt(train, test, { ...params, threads: 2, seed: 7 }, io());
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(JSON.stringify(c)).toBe(JSON.stringify(a));
    expect(JSON.stringify(d.trees)).not.toBe(JSON.stringify(a.trees));
  });

  it('stops early on the validation loss and keeps the best iteration', async () => {
    // Pure noise labels: the validation loss soon rises while training keeps fitting.
    const noise = syntheticTable({ nRows: 1500, nFeatures: 6, nClasses: 3, seed: 3, noise: 1e3 });
    const { train, test } = split(noise, [0, 1, 2]);
    const logger = new RecordingLogger();
    const model = await trainGbdt(train, test, { 'n-estimators': 200, 'learning-rate': 0.5, 'early-stopping-rounds': 5, threads: 1 }, { logger });
    const v = model.history.validLogLoss;
    expect(v.length).toBeLessThan(200);
    expect(v.length).toBe(model.bestIteration + 1 + 5);
    expect(model.rounds).toBe(model.bestIteration + 1);
    expect(model.trees.length).toBe(model.rounds * 3);
    expect(Math.min(...v)).toBe(v[model.bestIteration]);
    expect(logger.messages('info').some((m) => /early stopping at round/.test(m))).toBe(true);
  });

  it('routes missing values by the learned default direction', async () => {
    // Class 1 whenever x0 is missing or large: NaNs must follow the "large" side.
    const n = 2000;
    const x = new Float32Array(n * 2);
    const y = new Int32Array(n);
    for (let i = 0; i < n; i++) {
      const missing = i % 3 === 0;
      const v = ((i * 7919) % 1000) / 100 - 5;
      x[2 * i] = missing ? NaN : v;
      x[2 * i + 1] = (i * 31) % 17;
      y[i] = missing || v > 2 ? 1 : 0;
    }
    const model = await trainGbdt({ x, y, nRows: n, nFeatures: 2, featureNames: ['a', 'b'], classLabels: [10, 20] }, undefined, { 'n-estimators': 20, 'learning-rate': 0.5, 'colsample-bytree': 1, threads: 1 }, io());
    const probe = Float32Array.from([NaN, 3, -4, 3, 4, 3]);
    const p = predictProba(model, { x: probe, nRows: 3 });
    expect(p[1]).toBeGreaterThan(0.9); // NaN → class 20
    expect(p[3]).toBeLessThan(0.1);
    expect(p[5]).toBeGreaterThan(0.9);
    expect(predictLabels(model, { x: probe, nRows: 3 })).toEqual([20, 10, 20]);
    const root = model.trees[0]!;
    expect(root.feature[0]).toBe(0);
    // The root splits "small go left"; missing values must go right with the large ones.
    expect(root.defaultLeft[0]).toBe(false);
  });

  it('round-trips the JSON model format and rejects a damaged one', async () => {
    const { train, test } = split(six, labels6);
    const model = await trainGbdt(train, undefined, { 'n-estimators': 3, threads: 1 }, io());
    const back = parseGbdtModel(JSON.stringify(model));
    expect(Array.from(predictProba(back, test))).toEqual(Array.from(predictProba(model, test)));
    const broken = JSON.parse(JSON.stringify(model)) as GbdtModel;
    broken.trees[2]!.right.pop();
    expect(() => parseGbdtModel(JSON.stringify(broken), 'm.json')).toThrow(/m.json: not a gbdt model: tree 2/);
    expect(() => parseGbdtModel('{"format":"other"}')).toThrow(DataError);
  });

  it('saves model.onnx and model.json with the ONNX hash', async () => {
    const { train } = split(six, labels6);
    const model = await trainGbdt(train, undefined, { 'n-estimators': 2, threads: 1 }, io());
    const dir = await mkdtemp(join(tmpdir(), 'gbdt-save-'));
    try {
      const saved = await saveGbdt(dir, model);
      const onnx = await readFile(saved.onnxPath);
      expect(saved.onnxSha256).toBe(sha256(onnx));
      expect(saved.onnxBytes).toBe(onnx.length);
      expect(parseGbdtModel(await readFile(saved.jsonPath, 'utf8')).trees.length).toBe(12);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports gain and cover importance that sums sensibly', async () => {
    const { train } = split(six, labels6);
    const model = await trainGbdt(train, undefined, { 'n-estimators': 10, threads: 1 }, io());
    const imp = model.importance;
    expect(imp.map((i) => i.feature).sort()).toEqual([...train.featureNames].sort());
    expect(imp.reduce((s, i) => s + i.gainShare, 0)).toBeCloseTo(1, 9);
    const splits = model.trees.reduce((s, t) => s + t.left.filter((l) => l >= 0).length, 0);
    expect(imp.reduce((s, i) => s + i.splits, 0)).toBe(splits);
    // f0 drives the rule directly; f11 is a distractor.
    const rank = (name: string) => imp.findIndex((i) => i.feature === name);
    expect(rank('f0')).toBeLessThan(rank('f11'));
    expect(imp.every((i) => i.gain >= 0 && i.cover >= 0)).toBe(true);
  });
});

describe('ONNX export', () => {
  it('binary: onnxruntime probabilities equal the TypeScript ones on the whole test split', async () => {
    const t = syntheticTable({ nRows: 2500, nFeatures: 10, nClasses: 2, seed: 5, missing: 0.05 });
    const { train, test } = split(t, [3, 9]);
    const model = await trainGbdt(train, undefined, { 'n-estimators': 30, threads: 2 }, io());
    expect(model.objective).toBe('binary:logistic');
    const ts = predictProba(model, test);
    const onnx = await onnxProba(model, test);
    expect(onnx.dims).toEqual([test.nRows, 2]);
    expect(maxAbsDiff(onnx.proba, ts)).toBeLessThanOrEqual(1e-5);
    expect(onnx.labels).toEqual(predictLabels(model, test));
    const node = decodeModel(gbdtToOnnx(model)).graph.nodes[0]!;
    expect(attribute(node, 'post_transform')).toMatchObject({ value: 'LOGISTIC' });
    expect(attribute(node, 'classlabels_int64s')).toMatchObject({ value: [3, 9] });
  });

  it('splits adjacent float32 values exactly as onnxruntime does (threshold equal to the lower value)', async () => {
    // a and the next float32 above it have no float32 strictly between them: the threshold is a itself,
    // so `<=` versus `<` decides the class of every row.
    const a = Math.fround(0.3);
    const b = new Float32Array(new Uint32Array([new Uint32Array(Float32Array.from([a]).buffer)[0]! + 1]).buffer)[0]!;
    expect(b).toBeGreaterThan(a);
    const n = 400;
    const x = Float32Array.from({ length: n }, (_, i) => (i % 2 ? b : a));
    const y = Int32Array.from({ length: n }, (_, i) => i % 2);
    const data = { x, y, nRows: n, nFeatures: 1, featureNames: ['v'], classLabels: [0, 1] };
    const model = await trainGbdt(data, undefined, { 'n-estimators': 10, 'learning-rate': 0.5, subsample: 1, 'colsample-bytree': 1, threads: 1 }, io());
    expect(model.trees[0]!.threshold[0]).toBe(a);
    const ts = predictProba(model, data);
    const onnx = await onnxProba(model, data);
    expect(maxAbsDiff(onnx.proba, ts)).toBeLessThanOrEqual(1e-5);
    expect(onnx.labels).toEqual(Array.from(y));
  });

  it('binary with only non-negative leaf weights still gets logistic probabilities', async () => {
    const model: GbdtModel = {
      format: 'skintwin-gbdt',
      version: 1,
      objective: 'binary:logistic',
      featureNames: ['a'],
      classLabels: [0, 1],
      baseMargin: [-0.25],
      params: {},
      rounds: 1,
      bestIteration: 0,
      trees: [
        { group: 0, feature: [0, 0, 0], threshold: [0.5, 0, 0], defaultLeft: [true, false, false], left: [1, -1, -1], right: [2, -1, -1], value: [0, 0.125, 2], gain: [1, 0, 0], cover: [2, 1, 1] },
      ],
      history: { validLogLoss: [], trainLogLoss: [] },
      importance: [],
    };
    const data = { x: Float32Array.from([0, 1, NaN]), nRows: 3, nFeatures: 1, y: [0, 1, 0], featureNames: ['a'], classLabels: [0, 1] };
    const ts = predictProba(model, data);
    const onnx = await onnxProba(model, data);
    expect(maxAbsDiff(onnx.proba, ts)).toBeLessThanOrEqual(1e-6);
    expect(onnx.labels).toEqual([0, 1, 0]);
    expect(gbdtToOnnxModel(model).graph.nodes[0]!.attributes.find((a) => a.name === 'class_weights')!.value).toContain(-1e-30);
  });

  it('6 classes with NaNs: onnxruntime equals TypeScript, softmax, feature order recorded', async () => {
    const t = syntheticTable({ nRows: 3000, nFeatures: 12, nClasses: 6, seed: 21, missing: 0.05 });
    const { train, test } = split(t, [0, 1, 2, 3, 4, 5]);
    const model = await trainGbdt(train, test, { 'n-estimators': 15, threads: 2 }, io());
    const ts = predictProba(model, test);
    const onnx = await onnxProba(model, test);
    expect(onnx.dims).toEqual([test.nRows, 6]);
    expect(maxAbsDiff(onnx.proba, ts)).toBeLessThanOrEqual(1e-5);
    const decoded = decodeModel(gbdtToOnnx(model));
    expect(JSON.parse(decoded.metadata!.feature_names!)).toEqual(train.featureNames);
    expect(decoded.graph.inputs[0]).toEqual({ name: 'input', elemType: 1, shape: ['N', 12] });
    expect(attribute(decoded.graph.nodes[0]!, 'post_transform')).toMatchObject({ value: 'SOFTMAX' });
  });

  it('79 classes with non-contiguous original ids: onnxruntime equals TypeScript, labels are the ids', async () => {
    const C = 79;
    const ids = Array.from({ length: C }, (_, k) => 1000 + k * 7 + (k % 3));
    const t = syntheticTable({ nRows: 4000, nFeatures: 8, nClasses: C, seed: 9, missing: 0.02, noise: 0.3 });
    const { train, test } = split(t, ids, 0.85);
    // A class present only in the test split would be an error: keep the test rows whose class was trained on.
    const trained = new Set(Array.from(train.y));
    const keep = Array.from({ length: test.nRows }, (_, i) => i).filter((i) => trained.has(test.y[i]!));
    const x = new Float32Array(keep.length * 8);
    keep.forEach((r, i) => x.set(test.x.subarray(r * 8, r * 8 + 8), i * 8));
    const evalSet: GbdtData = { ...test, x, nRows: keep.length, y: Int32Array.from(keep, (r) => test.y[r]!) };
    const model = await trainGbdt(train, undefined, { 'n-estimators': 6, 'max-depth': 4, threads: 2 }, io());
    const ts = predictProba(model, evalSet);
    const onnx = await onnxProba(model, evalSet);
    expect(onnx.dims).toEqual([evalSet.nRows, C]);
    expect(maxAbsDiff(onnx.proba, ts)).toBeLessThanOrEqual(1e-5);
    expect(onnx.labels).toEqual(predictLabels(model, evalSet));
    expect(onnx.labels.every((l) => ids.includes(l))).toBe(true);
  });
});

describe('bad inputs', () => {
  const good = (): GbdtData => ({
    x: Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]),
    nRows: 4,
    nFeatures: 2,
    y: Int32Array.from([0, 1, 0, 1]),
    featureNames: ['a', 'b'],
    classLabels: [5, 6],
  });
  const train = (d: GbdtData, v?: GbdtData, p: Record<string, unknown> = {}) => trainGbdt(d, v, { 'n-estimators': 2, threads: 1, ...p }, io());

  it('trains on the good fixture (so the failures below are about the one change each makes)', async () => {
    await expect(train(good(), good())).resolves.toMatchObject({ rounds: 2 });
  });

  it('rejects empty data', async () => {
    await expect(train({ ...good(), x: new Float32Array(0), nRows: 0, y: new Int32Array(0) })).rejects.toThrow(DataError);
    await expect(train({ ...good(), x: new Float32Array(0), nRows: 0, y: new Int32Array(0) })).rejects.toThrow(/empty/);
  });

  it('rejects a single class', async () => {
    await expect(train({ ...good(), y: Int32Array.from([1, 1, 1, 1]) })).rejects.toThrow(/single class \(6\)/);
  });

  it('rejects a validation class absent from training', async () => {
    const three = { ...good(), classLabels: [5, 6, 7] };
    const valid = { ...three, y: Int32Array.from([0, 1, 2, 0]) };
    await expect(train(three, valid)).rejects.toThrow(/validation has class\(es\) 7 that never occur in training/);
  });

  it('rejects NaN or infinite labels and labels outside the classes', async () => {
    await expect(train({ ...good(), y: [0, NaN, 1, 0] })).rejects.toThrow(/row 2: label NaN/);
    await expect(train({ ...good(), y: [0, Infinity, 1, 0] })).rejects.toThrow(DataError);
    await expect(train({ ...good(), y: [0, 2, 1, 0] })).rejects.toThrow(/label 2 is not a class index 0…1/);
  });

  it('rejects infinite features but accepts NaN as missing', async () => {
    const x = Float32Array.from([0, 1, 2, -Infinity, 4, 5, 6, 7]);
    await expect(train({ ...good(), x })).rejects.toThrow(/row 2, feature `b`: value is -Infinity/);
    const withNaN = Float32Array.from([0, 1, 2, NaN, 4, 5, NaN, 7]);
    await expect(train({ ...good(), x: withNaN })).resolves.toBeDefined();
  });

  it('rejects mismatched shapes, duplicate labels and bad params', async () => {
    await expect(train({ ...good(), x: new Float32Array(7) })).rejects.toThrow(/expected 4 × 2 = 8/);
    await expect(train({ ...good(), featureNames: ['a'] })).rejects.toThrow(ConfigurationError);
    await expect(train({ ...good(), classLabels: [5, 5] })).rejects.toThrow(/distinct integers/);
    await expect(train(good(), undefined, { 'max-depth': 0 })).rejects.toThrow(/max-depth/);
    await expect(train(good(), undefined, { 'n-estimator': 3 })).rejects.toThrow(/unknown param `n-estimator`.*n-estimators/);
    await expect(train(good(), { ...good(), featureNames: ['b', 'a'] })).rejects.toThrow(/validation features differ/);
  });

  it('stops when the signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(trainGbdt(good(), undefined, { threads: 1 }, { logger: new RecordingLogger(), signal: controller.signal })).rejects.toThrow(/interrupted/);
  });
});
