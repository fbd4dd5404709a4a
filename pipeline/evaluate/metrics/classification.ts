// Classification metrics from true labels and class probabilities held in typed arrays: the
// scikit-learn figures the original reported (zero_division = 0) plus ranking and calibration.
// One pass over the rows for counts, one sort per class for ROC-AUC; no per-row objects.

import { DataError } from '../../core/errors.ts';
import type { CLASSIFICATION_HEADLINE, ClassificationMetrics, ClassScores, ReliabilityBin } from '../types.ts';

/** Bins of the expected calibration error and the reliability diagram. */
export const ECE_BINS = 15;
/** Log loss clips probabilities to [EPS, 1 − EPS], as scikit-learn. */
export const LOG_LOSS_EPS = 1e-15;

const ratio = (num: number, den: number): number => (den > 0 ? num / den : 0);

/**
 * Top-1 class of row `r` (ties go to the earlier class) — the prediction every count-based
 * metric uses.
 */
export function argmaxRow(probs: ArrayLike<number>, r: number, C: number): number {
  const base = r * C;
  let best = 0;
  let bestP = probs[base]!;
  for (let k = 1; k < C; k++) {
    const p = probs[base + k]!;
    if (p > bestP) {
      best = k;
      bestP = p;
    }
  }
  return best;
}

/** Equal-width bin of a top-1 confidence: bin i holds (i/B, (i+1)/B]; 0 goes to the first. */
export function confidenceBin(conf: number, bins = ECE_BINS): number {
  const b = Math.ceil(conf * bins) - 1;
  return b < 0 ? 0 : b >= bins ? bins - 1 : b;
}

/**
 * Row indices in ascending order of class `k`'s score, ranked at float32 precision (the models'
 * output precision): an LSD radix sort over the float bits, several times faster than a typed
 * array sort, and one order serves every slice.
 */
export interface ScoreOrder {
  /** Row indices, lowest score first. */
  order: Uint32Array;
  /** The scores in that order as order-preserving integers: equal keys are tied scores. */
  keys: Uint32Array;
}

export function scoreOrder(probs: Float32Array | Float64Array, n: number, C: number, k: number): ScoreOrder {
  const f = new Float32Array(n);
  for (let r = 0; r < n; r++) f[r] = probs[r * C + k]! + 0; // + 0 turns −0 into 0
  const bits = new Uint32Array(f.buffer);
  let keys = new Uint32Array(n);
  // Order-preserving map of IEEE bits to unsigned integers (negatives reversed below positives).
  for (let r = 0; r < n; r++) {
    const b = bits[r]!;
    keys[r] = b & 0x80000000 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
  }
  let idx = new Uint32Array(n);
  for (let r = 0; r < n; r++) idx[r] = r;
  let keys2 = new Uint32Array(n);
  let idx2 = new Uint32Array(n);
  const count = new Uint32Array(2048);
  for (const shift of [0, 11, 22]) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(keys[i]! >>> shift) & 2047]!++;
    if (count[(keys[0]! >>> shift) & 2047] === n) continue; // every key shares this digit
    let sum = 0;
    for (let d = 0; d < 2048; d++) {
      const c = count[d]!;
      count[d] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const key = keys[i]!;
      const at = count[(key >>> shift) & 2047]!++;
      keys2[at] = key;
      idx2[at] = idx[i]!;
    }
    [keys, keys2] = [keys2, keys];
    [idx, idx2] = [idx2, idx];
  }
  return { order: idx, keys };
}

/**
 * One-vs-rest ROC-AUC of class `k` per group of rows (`codes[r]`: the row's group, −1: none; null
 * codes: one group of every row), from the rows in score order: the Mann–Whitney U with average
 * ranks for ties, in one walk. null for a group where the class is absent or is every row.
 */
export function groupedAuc(
  labels: ArrayLike<number>,
  k: number,
  ranked: ScoreOrder,
  codes: Int32Array | null,
  groups: number,
  weights: ArrayLike<number> | null = null,
): (number | null)[] {
  if (!codes) return [aucAll(labels, k, ranked, weights)];
  const { order, keys } = ranked;
  const n = order.length;
  const pos = new Float64Array(groups);
  const neg = new Float64Array(groups);
  const posRun = new Float64Array(groups);
  const negRun = new Float64Array(groups);
  const u = new Float64Array(groups);
  let i = 0;
  while (i < n) {
    const key = keys[i]!;
    if (i + 1 === n || keys[i + 1] !== key) {
      // An untied score: a positive beats every negative below it.
      const r = order[i]!;
      const g = codes ? codes[r]! : 0;
      const w = weights ? weights[r]! : 1;
      if (g >= 0 && w !== 0) {
        if (labels[r] === k) {
          u[g]! += w * neg[g]!;
          pos[g]! += w;
        } else neg[g]! += w;
      }
      i++;
      continue;
    }
    let j = i;
    // A run of tied scores: each positive beats the negatives below it and half of those tied.
    while (j < n && keys[j] === key) {
      const r = order[j]!;
      const g = codes ? codes[r]! : 0;
      const w = weights ? weights[r]! : 1;
      if (g >= 0) {
        if (labels[r] === k) posRun[g]! += w;
        else negRun[g]! += w;
      }
      j++;
    }
    for (let t = i; t < j; t++) {
      const g = codes ? codes[order[t]!]! : 0;
      if (g < 0 || (posRun[g] === 0 && negRun[g] === 0)) continue;
      u[g]! += posRun[g]! * (neg[g]! + negRun[g]! / 2);
      pos[g]! += posRun[g]!;
      neg[g]! += negRun[g]!;
      posRun[g] = 0;
      negRun[g] = 0;
    }
    i = j;
  }
  return Array.from(u, (v, g) => (pos[g]! > 0 && neg[g]! > 0 ? v / (pos[g]! * neg[g]!) : null));
}

/** groupedAuc for one group of every row: scalars and no branch on the weight (bootstrap resamples run it thousands of times). */
function aucAll(labels: ArrayLike<number>, k: number, ranked: ScoreOrder, weights: ArrayLike<number> | null): number | null {
  const { order, keys } = ranked;
  const n = order.length;
  let pos = 0;
  let neg = 0;
  let u = 0;
  let i = 0;
  while (i < n) {
    const key = keys[i]!;
    let posRun = 0;
    let negRun = 0;
    do {
      const r = order[i]!;
      const w = weights ? weights[r]! : 1;
      const p = labels[r] === k ? w : 0;
      posRun += p;
      negRun += w - p;
      i++;
    } while (i < n && keys[i] === key);
    u += posRun * (neg + negRun / 2);
    pos += posRun;
    neg += negRun;
  }
  return pos > 0 && neg > 0 ? u / (pos * neg) : null;
}

/** One-vs-rest ROC-AUC of class `k` over all rows; null when the class is absent or is every row. */
export function rocAucOneVsRest(labels: ArrayLike<number>, probs: Float32Array | Float64Array, C: number, k: number): number | null {
  return groupedAuc(labels, k, scoreOrder(probs, labels.length, C, k), null, 1)[0] ?? null;
}

/** The figures above from `labels` (true class index per row) and `probs` (n × C, row-major). */
export function classificationMetrics(labels: ArrayLike<number>, probs: Float32Array | Float64Array, classes: readonly string[]): ClassificationMetrics {
  return classificationMetricsWithAuc(labels, probs, classes, null);
}

/**
 * classificationMetrics with the per-class one-vs-rest AUCs already computed (slices compute
 * them for every value from one ordering of all rows); null: compute them here. `o.weights`:
 * how many times each row counts (a bootstrap resample without copying rows; 0 leaves a row
 * out); `o.orders`: each class's scoreOrder over these rows, reused across resamples.
 */
export function classificationMetricsWithAuc(
  labels: ArrayLike<number>,
  probs: Float32Array | Float64Array,
  classes: readonly string[],
  aucs: readonly (number | null)[] | null,
  o: { weights?: ArrayLike<number>; orders?: readonly ScoreOrder[] } = {},
): ClassificationMetrics {
  const rows = labels.length;
  const weights = o.weights ?? null;
  if (weights && weights.length !== rows) throw new DataError(`${weights.length} weights for ${rows} rows`);
  const C = classes.length;
  if (C === 0) throw new DataError('no classes to score');
  if (rows === 0) throw new DataError('no rows to score (empty test split)');
  if (probs.length !== rows * C) throw new DataError(`probabilities hold ${probs.length} values, expected ${rows} rows × ${C} classes`);

  const cm = new Float64Array(C * C);
  const binCount = new Float64Array(ECE_BINS);
  const binConf = new Float64Array(ECE_BINS);
  const binCorrect = new Float64Array(ECE_BINS);
  let logLoss = 0;
  let brier = 0;
  let top2 = 0;
  let n = 0;
  for (let r = 0; r < rows; r++) {
    const y = labels[r]!;
    if (!(y >= 0 && y < C) || !Number.isInteger(y)) throw new DataError(`row ${r + 1}: label index ${y} is not one of the ${C} classes`);
    const w = weights ? weights[r]! : 1;
    if (w === 0) continue;
    const base = r * C;
    let best = 0;
    let bestP = -Infinity;
    let sq = 0;
    const py = probs[base + y]!;
    // Rank of the true class: classes scoring higher, or equal and earlier (ties by class order).
    let ahead = 0;
    for (let k = 0; k < C; k++) {
      const p = probs[base + k]!;
      if (Number.isNaN(p)) throw new DataError(`row ${r + 1}: probability of \`${classes[k]}\` is NaN`);
      if (p > bestP) {
        best = k;
        bestP = p;
      }
      const d = k === y ? p - 1 : p;
      sq += d * d;
      if (p > py || (p === py && k < y)) ahead++;
    }
    n += w;
    cm[y * C + best]! += w;
    brier += w * sq;
    if (ahead < 2) top2 += w;
    logLoss -= w * Math.log(Math.min(Math.max(py, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS));
    const b = confidenceBin(bestP);
    binCount[b]! += w;
    binConf[b]! += w * bestP;
    if (best === y) binCorrect[b]! += w;
  }

  if (n === 0) throw new DataError('no rows to score (every weight is 0)');
  return summarize({ cm, binCount, binConf, binCorrect, logLoss, brier, top2, n }, classes, (k) =>
    aucs ? (aucs[k] ?? null) : (groupedAuc(labels, k, o.orders?.[k] ?? scoreOrder(probs, rows, C, k), null, 1, weights)[0] ?? null),
  );
}

/** Sums over the scored rows, from which every figure follows. */
interface Tallies {
  /** C × C confusion counts, true class by row. */
  cm: Float64Array;
  binCount: Float64Array;
  binConf: Float64Array;
  binCorrect: Float64Array;
  logLoss: number;
  brier: number;
  top2: number;
  n: number;
}

function summarize(t: Tallies, classes: readonly string[], aucOf: (k: number) => number | null): ClassificationMetrics {
  const { cm, binCount, binConf, binCorrect, logLoss, brier, top2, n } = t;
  const C = classes.length;
  const support = new Float64Array(C);
  const predicted = new Float64Array(C);
  let correct = 0;
  for (let t = 0; t < C; t++) {
    for (let p = 0; p < C; p++) {
      const v = cm[t * C + p]!;
      support[t]! += v;
      predicted[p]! += v;
    }
    correct += cm[t * C + t]!;
  }

  const perClass: Record<string, ClassScores> = {};
  let pMacro = 0;
  let rMacro = 0;
  let fMacro = 0;
  let pW = 0;
  let rW = 0;
  let fW = 0;
  let recallSum = 0;
  let present = 0;
  let aucSum = 0;
  let aucCount = 0;
  for (let k = 0; k < C; k++) {
    const tp = cm[k * C + k]!;
    const precision = ratio(tp, predicted[k]!);
    const recall = ratio(tp, support[k]!);
    // 2tp / (2tp + fp + fn): equal to the harmonic mean where that is defined, 0 otherwise.
    const f1 = ratio(2 * tp, predicted[k]! + support[k]!);
    const auc = aucOf(k);
    perClass[classes[k]!] = { precision, recall, f1, support: support[k]!, roc_auc: auc };
    pMacro += precision;
    rMacro += recall;
    fMacro += f1;
    pW += precision * support[k]!;
    rW += recall * support[k]!;
    fW += f1 * support[k]!;
    if (support[k]! > 0) {
      recallSum += recall;
      present++;
    }
    if (auc !== null) {
      aucSum += auc;
      aucCount++;
    }
  }

  // Every prediction is one of the classes, so micro precision = micro recall = accuracy.
  const accuracy = correct / n;
  const reliability: ReliabilityBin[] = [];
  let ece = 0;
  for (let b = 0; b < ECE_BINS; b++) {
    const count = binCount[b]!;
    const confidence = ratio(binConf[b]!, count);
    const acc = ratio(binCorrect[b]!, count);
    reliability.push({ lo: b / ECE_BINS, hi: (b + 1) / ECE_BINS, count, confidence, accuracy: acc });
    ece += (count / n) * Math.abs(acc - confidence);
  }
  const confusion: number[][] = [];
  for (let t = 0; t < C; t++) confusion.push(Array.from(cm.subarray(t * C, (t + 1) * C)));

  return {
    task: 'classification',
    n,
    classes: [...classes],
    accuracy,
    // scikit-learn's balanced accuracy: mean recall over the classes present in the labels.
    balanced_accuracy: ratio(recallSum, present),
    precision_macro: pMacro / C,
    recall_macro: rMacro / C,
    f1_macro: fMacro / C,
    precision_micro: accuracy,
    recall_micro: accuracy,
    f1_micro: accuracy,
    precision_weighted: pW / n,
    recall_weighted: rW / n,
    f1_weighted: fW / n,
    roc_auc_ovr: aucCount ? aucSum / aucCount : null,
    log_loss: logLoss / n,
    brier: brier / n,
    ece,
    top2_accuracy: top2 / n,
    per_class: perClass,
    confusion_matrix: confusion,
    reliability,
  };
}

/**
 * Everything the bootstrap needs from the rows, computed once: each row's prediction and its
 * additive terms (log loss, Brier, top-2, calibration bin), and each class's score order with
 * the labels folded in. A resample then costs one pass over the rows plus one walk per class,
 * with no Math.log, no n × C loop and no sort.
 */
/** Per-row terms of the metrics: computed once, they serve every slice and every resample. */
export interface RowTerms {
  labels: Int32Array;
  /** Top-1 class per row. */
  predicted: Int32Array;
  /** −log of the clipped probability of the true class. */
  logTerm: Float64Array;
  /** Squared error of the probability vector against the one-hot label. */
  sq: Float64Array;
  /** Top-1 confidence and its calibration bin. */
  conf: Float64Array;
  bin: Uint8Array;
  /** 1 where the true class is among the top two. */
  top2: Uint8Array;
}

export interface PreparedClassification extends RowTerms {
  rows: number;
  classes: number;
  /**
   * Class k's score order at [k·rows, (k+1)·rows), one word per entry (one load in the hot
   * loop): row index << 2, bit 0 set where the row is of class k, bit 1 where the next entry ties.
   */
  entries: Uint32Array;
}

/**
 * RowTerms of every row, checking labels and NaNs as classificationMetricsWithAuc does (same
 * messages, same first bad row); the arithmetic is its own, so the terms are equal to the bit.
 */
export function rowTerms(labels: ArrayLike<number>, probs: Float32Array | Float64Array, classes: readonly string[]): RowTerms {
  const rows = labels.length;
  const C = classes.length;
  if (C === 0) throw new DataError('no classes to score');
  if (rows === 0) throw new DataError('no rows to score (empty test split)');
  if (probs.length !== rows * C) throw new DataError(`probabilities hold ${probs.length} values, expected ${rows} rows × ${C} classes`);
  const t: RowTerms = {
    labels: new Int32Array(rows),
    predicted: new Int32Array(rows),
    logTerm: new Float64Array(rows),
    sq: new Float64Array(rows),
    conf: new Float64Array(rows),
    bin: new Uint8Array(rows),
    top2: new Uint8Array(rows),
  };
  for (let r = 0; r < rows; r++) {
    const y = labels[r]!;
    if (!(y >= 0 && y < C) || !Number.isInteger(y)) throw new DataError(`row ${r + 1}: label index ${y} is not one of the ${C} classes`);
    const base = r * C;
    let best = 0;
    let bestP = -Infinity;
    let sq = 0;
    const py = probs[base + y]!;
    let ahead = 0;
    for (let k = 0; k < C; k++) {
      const q = probs[base + k]!;
      if (Number.isNaN(q)) throw new DataError(`row ${r + 1}: probability of \`${classes[k]}\` is NaN`);
      if (q > bestP) {
        best = k;
        bestP = q;
      }
      const d = k === y ? q - 1 : q;
      sq += d * d;
      if (q > py || (q === py && k < y)) ahead++;
    }
    t.labels[r] = y;
    t.predicted[r] = best;
    t.sq[r] = sq;
    t.top2[r] = ahead < 2 ? 1 : 0;
    t.logTerm[r] = Math.log(Math.min(Math.max(py, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS));
    t.conf[r] = bestP;
    t.bin[r] = confidenceBin(bestP);
  }
  return t;
}

/**
 * classificationMetricsWithAuc of the rows `rows` (ascending; null: every row) from their terms,
 * equal to it on those rows copied out: the same sums in the same order, without the copy or
 * another pass over the probabilities.
 */
export function metricsOfRows(t: RowTerms, classes: readonly string[], aucs: readonly (number | null)[], rows: Int32Array | null): ClassificationMetrics {
  const C = classes.length;
  const m = rows ? rows.length : t.labels.length;
  if (m === 0) throw new DataError('no rows to score (empty test split)');
  const cm = new Float64Array(C * C);
  const binCount = new Float64Array(ECE_BINS);
  const binConf = new Float64Array(ECE_BINS);
  const binCorrect = new Float64Array(ECE_BINS);
  const { labels, predicted, logTerm, sq, conf, bin, top2: t2 } = t;
  let logLoss = 0;
  let brier = 0;
  let top2 = 0;
  for (let i = 0; i < m; i++) {
    const r = rows ? rows[i]! : i;
    const y = labels[r]!;
    const best = predicted[r]!;
    const b = bin[r]!;
    cm[y * C + best]! += 1;
    brier += 1 * sq[r]!;
    if (t2[r]) top2 += 1;
    logLoss -= 1 * logTerm[r]!;
    binCount[b]! += 1;
    binConf[b]! += 1 * conf[r]!;
    if (best === y) binCorrect[b]! += 1;
  }
  return summarize({ cm, binCount, binConf, binCorrect, logLoss, brier, top2, n: m }, classes, (k) => aucs[k] ?? null);
}

export function prepareClassification(labels: ArrayLike<number>, probs: Float32Array | Float64Array, classes: readonly string[]): PreparedClassification {
  const terms = rowTerms(labels, probs, classes);
  const rows = labels.length;
  const C = classes.length;
  if (rows >= 2 ** 30) throw new DataError(`${rows} rows: the bootstrap takes fewer than 2³⁰`);
  const p: PreparedClassification = { ...terms, rows, classes: C, entries: new Uint32Array(rows * C) };
  for (let k = 0; k < C; k++) {
    const { order, keys } = scoreOrder(probs, rows, C, k);
    const at = k * rows;
    for (let i = 0; i < rows; i++) {
      const r = order[i]!;
      p.entries[at + i] = ((r << 2) | (p.labels[r] === k ? 1 : 0) | (i + 1 < rows && keys[i + 1] === keys[i] ? 2 : 0)) >>> 0;
    }
  }
  return p;
}

export type ClassificationHeadline = Record<(typeof CLASSIFICATION_HEADLINE)[number], number>;

/**
 * The headline metrics of prepared rows counted `weights[r]` times each (integer counts, as a
 * bootstrap resample): equal to classificationMetricsWithAuc's with the same weights, bit for
 * bit (NaN where that gives null). Scratch buffers are reused between calls.
 */
export function preparedHeadline(p: PreparedClassification, weights: ArrayLike<number>): ClassificationHeadline {
  const { rows, classes: C } = p;
  if (weights.length !== rows) throw new DataError(`${weights.length} weights for ${rows} rows`);
  const s = scratchFor(C);
  const { support, predicted, tp, binCount, binConf, binCorrect } = s;
  support.fill(0);
  predicted.fill(0);
  tp.fill(0);
  binCount.fill(0);
  binConf.fill(0);
  binCorrect.fill(0);
  const { labels, predicted: pred, logTerm, sq, conf, bin, top2: t2 } = p;
  let n = 0;
  let logLoss = 0;
  let brier = 0;
  let top2 = 0;
  for (let r = 0; r < rows; r++) {
    const w = weights[r]!;
    if (w === 0) continue;
    const y = labels[r]!;
    const b = pred[r]!;
    const c = bin[r]!;
    n += w;
    support[y]! += w;
    predicted[b]! += w;
    brier += w * sq[r]!;
    if (t2[r]) top2 += w;
    logLoss -= w * logTerm[r]!;
    binCount[c]! += w;
    binConf[c]! += w * conf[r]!;
    if (b === y) {
      tp[y]! += w;
      binCorrect[c]! += w;
    }
  }
  if (n === 0) throw new DataError('no rows to score (every weight is 0)');
  let correct = 0;
  for (let k = 0; k < C; k++) correct += tp[k]!;

  const { entries } = p;
  let pMacro = 0;
  let rMacro = 0;
  let fMacro = 0;
  let pW = 0;
  let rW = 0;
  let fW = 0;
  let recallSum = 0;
  let present = 0;
  let aucSum = 0;
  let aucCount = 0;
  for (let k = 0; k < C; k++) {
    const precision = ratio(tp[k]!, predicted[k]!);
    const recall = ratio(tp[k]!, support[k]!);
    const f1 = ratio(2 * tp[k]!, predicted[k]! + support[k]!);
    pMacro += precision;
    rMacro += recall;
    fMacro += f1;
    pW += precision * support[k]!;
    rW += recall * support[k]!;
    fW += f1 * support[k]!;
    if (support[k]! > 0) {
      recallSum += recall;
      present++;
    }
    // aucAll over the folded flags, with the same sums in the same order. An untied entry is a
    // run of one: a negative adds w to neg, a positive adds w · neg to u (terms of 0 change no sum).
    let pos = 0;
    let neg = 0;
    let u = 0;
    const end = (k + 1) * rows;
    for (let i = k * rows; i < end; i++) {
      const e = entries[i]!;
      const f = e & 3;
      const w = weights[e >>> 2]!;
      if (f === 0) {
        neg += w;
        continue;
      }
      if (f === 1) {
        u += w * neg;
        pos += w;
        continue;
      }
      let posRun = 0;
      let negRun = 0;
      let g = e;
      for (;;) {
        const v = weights[g >>> 2]!;
        const q = g & 1 ? v : 0;
        posRun += q;
        negRun += v - q;
        if (!(g & 2)) break;
        g = entries[++i]!;
      }
      u += posRun * (neg + negRun / 2);
      pos += posRun;
      neg += negRun;
    }
    if (pos > 0 && neg > 0) {
      aucSum += u / (pos * neg);
      aucCount++;
    }
  }
  const accuracy = correct / n;
  let ece = 0;
  for (let b = 0; b < ECE_BINS; b++) {
    const count = binCount[b]!;
    ece += (count / n) * Math.abs(ratio(binCorrect[b]!, count) - ratio(binConf[b]!, count));
  }
  return {
    accuracy,
    balanced_accuracy: ratio(recallSum, present),
    precision_macro: pMacro / C,
    recall_macro: rMacro / C,
    f1_macro: fMacro / C,
    precision_micro: accuracy,
    recall_micro: accuracy,
    f1_micro: accuracy,
    precision_weighted: pW / n,
    recall_weighted: rW / n,
    f1_weighted: fW / n,
    roc_auc_ovr: aucCount ? aucSum / aucCount : NaN,
    log_loss: logLoss / n,
    brier: brier / n,
    ece,
    top2_accuracy: top2 / n,
  };
}

interface Scratch {
  support: Float64Array;
  predicted: Float64Array;
  tp: Float64Array;
  binCount: Float64Array;
  binConf: Float64Array;
  binCorrect: Float64Array;
}
let scratch: Scratch | undefined;
function scratchFor(C: number): Scratch {
  if (!scratch || scratch.support.length !== C) {
    scratch = {
      support: new Float64Array(C),
      predicted: new Float64Array(C),
      tp: new Float64Array(C),
      binCount: new Float64Array(ECE_BINS),
      binConf: new Float64Array(ECE_BINS),
      binCorrect: new Float64Array(ECE_BINS),
    };
  }
  return scratch;
}
