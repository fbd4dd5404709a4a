// Classification metrics from true labels and class probabilities held in typed arrays: the
// scikit-learn figures the original reported (zero_division = 0) plus ranking and calibration.
// One pass over the rows for counts, one sort per class for ROC-AUC; no per-row objects.

import { DataError } from '../../core/errors.ts';
import type { ClassificationMetrics, ClassScores, ReliabilityBin } from '../types.ts';

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
 * One-vs-rest ROC-AUC of `scores` for the rows whose label is `k` (the Mann–Whitney U with
 * average ranks for ties); null when the class is absent or is every row.
 */
export function rocAucOneVsRest(labels: ArrayLike<number>, probs: Float32Array | Float64Array, C: number, k: number): number | null {
  const n = labels.length;
  let P = 0;
  for (let r = 0; r < n; r++) if (labels[r] === k) P++;
  const N = n - P;
  if (P === 0 || N === 0) return null;
  const Ctor = probs instanceof Float32Array ? Float32Array : Float64Array;
  const pos = new Ctor(P);
  const neg = new Ctor(N);
  let ip = 0;
  let ineg = 0;
  for (let r = 0; r < n; r++) {
    const s = probs[r * C + k]!;
    if (labels[r] === k) pos[ip++] = s;
    else neg[ineg++] = s;
  }
  pos.sort();
  neg.sort();
  // U = Σ over positives of (negatives strictly below) + ½ (negatives equal): a merge walk over
  // the two sorted arrays counts both without ranking the whole column.
  let u = 0;
  let below = 0;
  let i = 0;
  while (i < P) {
    const s = pos[i]!;
    let run = 1;
    while (i + run < P && pos[i + run] === s) run++;
    while (below < N && neg[below]! < s) below++;
    let equal = 0;
    while (below + equal < N && neg[below + equal] === s) equal++;
    u += run * (below + equal / 2);
    i += run;
  }
  return u / (P * N);
}

/** The figures above from `labels` (true class index per row) and `probs` (n × C, row-major). */
export function classificationMetrics(labels: ArrayLike<number>, probs: Float32Array | Float64Array, classes: readonly string[]): ClassificationMetrics {
  const n = labels.length;
  const C = classes.length;
  if (C === 0) throw new DataError('no classes to score');
  if (n === 0) throw new DataError('no rows to score (empty test split)');
  if (probs.length !== n * C) throw new DataError(`probabilities hold ${probs.length} values, expected ${n} rows × ${C} classes`);

  const cm = new Float64Array(C * C);
  const binCount = new Float64Array(ECE_BINS);
  const binConf = new Float64Array(ECE_BINS);
  const binCorrect = new Float64Array(ECE_BINS);
  let logLoss = 0;
  let brier = 0;
  let top2 = 0;
  for (let r = 0; r < n; r++) {
    const y = labels[r]!;
    if (!(y >= 0 && y < C) || !Number.isInteger(y)) throw new DataError(`row ${r + 1}: label index ${y} is not one of the ${C} classes`);
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
    cm[y * C + best]!++;
    brier += sq;
    if (ahead < 2) top2++;
    logLoss -= Math.log(Math.min(Math.max(py, LOG_LOSS_EPS), 1 - LOG_LOSS_EPS));
    const b = confidenceBin(bestP);
    binCount[b]!++;
    binConf[b]! += bestP;
    if (best === y) binCorrect[b]!++;
  }

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
    const auc = rocAucOneVsRest(labels, probs, C, k);
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
