// The trained gbdt model as plain JSON (what the model card and `model.json` hold), its
// TypeScript predictor and feature importance. Thresholds are float32 values compared with `<=`
// in float32, exactly as the exported ONNX TreeEnsembleClassifier compares them.

import { DataError } from '../../core/errors.ts';

export const GBDT_FORMAT = 'skintwin-gbdt';
export const GBDT_FORMAT_VERSION = 1;

/** One tree; node 0 is the root, `left[i] === -1` marks a leaf. */
export interface GbdtTree {
  /** Which raw score the tree adds to: 0 for binary, the class index for softmax. */
  group: number;
  feature: number[];
  /** float32 thresholds: `x <= threshold` goes left. */
  threshold: number[];
  /** Where a missing (NaN) value goes. */
  defaultLeft: boolean[];
  left: number[];
  right: number[];
  /** Leaf outputs (float32, learning rate applied); 0 on split nodes. */
  value: number[];
  /** Loss reduction of each split (0 on leaves). */
  gain: number[];
  /** Hessian sum of the training rows reaching each node. */
  cover: number[];
}

export interface FeatureImportance {
  feature: string;
  /** Total loss reduction of the splits on this feature. */
  gain: number;
  /** Total hessian cover of the splits on this feature. */
  cover: number;
  /** Number of splits on this feature. */
  splits: number;
  /** `gain` as a share of all features' gain (sums to 1 when any split exists). */
  gainShare: number;
}

export interface GbdtModel {
  format: typeof GBDT_FORMAT;
  version: typeof GBDT_FORMAT_VERSION;
  objective: 'binary:logistic' | 'multi:softprob';
  /** Input columns, in the order the model (and the ONNX input) expects them. */
  featureNames: string[];
  /** The caller's class ids; probability column k belongs to classLabels[k]. */
  classLabels: number[];
  /** Raw score every row starts from, one per tree group. */
  baseMargin: number[];
  /** The params the model was trained with. */
  params: Record<string, number | undefined>;
  /** Boosting rounds kept (the best iteration + 1 when early stopping ran). */
  rounds: number;
  bestIteration: number;
  trees: GbdtTree[];
  /** Log loss per round on the validation split (empty without one) and on the training split. */
  history: { validLogLoss: number[]; trainLogLoss: number[] };
  importance: FeatureImportance[];
}

/** Trees per round: one for binary, one per class for softmax. */
export function groupCount(model: Pick<GbdtModel, 'objective' | 'classLabels'>): number {
  return model.objective === 'binary:logistic' ? 1 : model.classLabels.length;
}

/** Raw scores, row-major nRows × groups. Features compared in float32, like ONNX. */
export function predictMargins(model: GbdtModel, x: ArrayLike<number>, nRows: number): Float64Array {
  const F = model.featureNames.length;
  if (x.length !== nRows * F) throw new DataError(`predict: expected ${nRows} × ${F} = ${nRows * F} values, got ${x.length}`);
  const K = groupCount(model);
  const out = new Float64Array(nRows * K);
  for (let r = 0; r < nRows; r++) for (let k = 0; k < K; k++) out[r * K + k] = model.baseMargin[k]!;
  for (const t of model.trees) {
    const k = t.group;
    for (let r = 0; r < nRows; r++) {
      const base = r * F;
      let node = 0;
      while (t.left[node]! >= 0) {
        const v = Math.fround(x[base + t.feature[node]!]!);
        const goLeft = v !== v ? t.defaultLeft[node]! : v <= t.threshold[node]!;
        node = goLeft ? t.left[node]! : t.right[node]!;
      }
      out[r * K + k]! += t.value[node]!;
    }
  }
  return out;
}

/** Turn raw scores into probabilities, row-major nRows × classes (binary: [1 − p, p]). */
export function marginsToProba(margins: Float64Array, nRows: number, nClasses: number, binary: boolean): Float64Array {
  const out = new Float64Array(nRows * nClasses);
  if (binary) {
    for (let r = 0; r < nRows; r++) {
      const p = 1 / (1 + Math.exp(-margins[r]!));
      out[2 * r] = 1 - p;
      out[2 * r + 1] = p;
    }
    return out;
  }
  for (let r = 0; r < nRows; r++) {
    const o = r * nClasses;
    let max = -Infinity;
    for (let k = 0; k < nClasses; k++) max = Math.max(max, margins[o + k]!);
    let sum = 0;
    for (let k = 0; k < nClasses; k++) sum += out[o + k] = Math.exp(margins[o + k]! - max);
    for (let k = 0; k < nClasses; k++) out[o + k]! /= sum;
  }
  return out;
}

/** Class probabilities, row-major nRows × classLabels.length, columns in classLabels order. */
export function predictProba(model: GbdtModel, rows: { x: ArrayLike<number>; nRows: number }): Float64Array {
  const margins = predictMargins(model, rows.x, rows.nRows);
  return marginsToProba(margins, rows.nRows, model.classLabels.length, model.objective === 'binary:logistic');
}

/** Predicted class label (from classLabels) per row. */
export function predictLabels(model: GbdtModel, rows: { x: ArrayLike<number>; nRows: number }): number[] {
  const p = predictProba(model, rows);
  const C = model.classLabels.length;
  const labels: number[] = [];
  for (let r = 0; r < rows.nRows; r++) {
    let best = 0;
    for (let k = 1; k < C; k++) if (p[r * C + k]! > p[r * C + best]!) best = k;
    labels.push(model.classLabels[best]!);
  }
  return labels;
}

/** Mean negative log-likelihood of the true class indices (probabilities clipped at 1e-15). */
export function logLoss(proba: Float64Array, y: ArrayLike<number>, nClasses: number): number {
  let sum = 0;
  for (let r = 0; r < y.length; r++) sum -= Math.log(Math.max(proba[r * nClasses + y[r]!]!, 1e-15));
  return y.length ? sum / y.length : 0;
}

/** Gain and cover per feature over all trees, sorted by gain, most important first. */
export function featureImportance(trees: GbdtTree[], featureNames: string[]): FeatureImportance[] {
  const gain = new Float64Array(featureNames.length);
  const cover = new Float64Array(featureNames.length);
  const splits = new Int32Array(featureNames.length);
  for (const t of trees)
    for (let i = 0; i < t.left.length; i++) {
      if (t.left[i]! < 0) continue;
      const f = t.feature[i]!;
      gain[f]! += t.gain[i]!;
      cover[f]! += t.cover[i]!;
      splits[f]!++;
    }
  const total = gain.reduce((a, b) => a + b, 0);
  return featureNames
    .map((feature, f) => ({ feature, gain: gain[f]!, cover: cover[f]!, splits: splits[f]!, gainShare: total > 0 ? gain[f]! / total : 0 }))
    .sort((a, b) => b.gain - a.gain || a.feature.localeCompare(b.feature));
}

/** Read a model back from its JSON text, checking the format and the shape of every tree. */
export function parseGbdtModel(text: string, file = 'model.json'): GbdtModel {
  let m: GbdtModel;
  try {
    m = JSON.parse(text) as GbdtModel;
  } catch (error) {
    throw new DataError(`not valid JSON: ${(error as Error).message}`, { file });
  }
  const fail = (why: string): never => {
    throw new DataError(`not a gbdt model: ${why}`, { file });
  };
  if (m?.format !== GBDT_FORMAT) fail(`format is ${JSON.stringify(m?.format)}, expected "${GBDT_FORMAT}"`);
  if (m.version !== GBDT_FORMAT_VERSION) fail(`version ${m.version} is not supported (expected ${GBDT_FORMAT_VERSION})`);
  if (m.objective !== 'binary:logistic' && m.objective !== 'multi:softprob') fail(`unknown objective ${JSON.stringify(m.objective)}`);
  if (!Array.isArray(m.featureNames) || !Array.isArray(m.classLabels) || m.classLabels.length < 2) fail('feature names or class labels missing');
  const K = groupCount(m);
  if (!Array.isArray(m.baseMargin) || m.baseMargin.length !== K) fail(`expected ${K} base margin(s)`);
  const F = m.featureNames.length;
  (Array.isArray(m.trees) ? m.trees : fail('trees missing')).forEach((t, i) => {
    const n = t.left?.length ?? 0;
    const keys = ['feature', 'threshold', 'defaultLeft', 'right', 'value', 'gain', 'cover'] as const;
    if (n === 0 || keys.some((k) => !Array.isArray(t[k]) || t[k].length !== n)) fail(`tree ${i}: node arrays missing or of different lengths`);
    if (!(t.group >= 0 && t.group < K)) fail(`tree ${i}: group ${t.group} out of range`);
    for (let j = 0; j < n; j++) {
      if (t.left[j]! < 0) continue;
      if (!(t.left[j]! > j && t.left[j]! < n && t.right[j]! > j && t.right[j]! < n)) fail(`tree ${i}, node ${j}: bad child index`);
      if (!(t.feature[j]! >= 0 && t.feature[j]! < F)) fail(`tree ${i}, node ${j}: feature ${t.feature[j]} out of range`);
    }
  });
  return m;
}
