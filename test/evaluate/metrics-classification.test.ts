import { describe, expect, it } from 'vitest';
import { classificationMetrics, classificationMetricsWithAuc, confidenceBin, groupedAuc, rocAucOneVsRest, scoreOrder } from '../../pipeline/evaluate/metrics/index.ts';

const CLASSES = ['a', 'b', 'c'];
// Five rows worked by hand: row 1 ties a/b (goes to a, the earlier class), row 3 is wrong (b → a).
const LABELS = [0, 0, 1, 1, 2];
const PROBS = Float64Array.from([0.7, 0.2, 0.1, 0.4, 0.4, 0.2, 0.3, 0.6, 0.1, 0.5, 0.3, 0.2, 0.2, 0.2, 0.6]);

describe('classificationMetrics on a hand-computed case', () => {
  const m = classificationMetrics(LABELS, PROBS, CLASSES);

  it('counts the confusion matrix with ties going to the earlier class', () => {
    expect(m.confusion_matrix).toEqual([
      [2, 0, 0],
      [1, 1, 0],
      [0, 0, 1],
    ]);
    expect(m.n).toBe(5);
    expect(m.accuracy).toBeCloseTo(0.8, 12);
  });

  it('gives per-class, macro, micro and weighted precision / recall / F1', () => {
    expect(m.per_class.a).toMatchObject({ precision: 2 / 3, recall: 1, support: 2 });
    expect(m.per_class.a!.f1).toBeCloseTo(0.8, 12);
    expect(m.per_class.b).toMatchObject({ precision: 1, recall: 0.5, support: 2 });
    expect(m.per_class.b!.f1).toBeCloseTo(2 / 3, 12);
    expect(m.per_class.c).toMatchObject({ precision: 1, recall: 1, f1: 1, support: 1 });
    expect(m.precision_macro).toBeCloseTo(8 / 9, 12);
    expect(m.recall_macro).toBeCloseTo(5 / 6, 12);
    expect(m.f1_macro).toBeCloseTo(0.8222222222222223, 12);
    expect([m.precision_micro, m.recall_micro, m.f1_micro].map((v) => v.toFixed(12))).toEqual(Array(3).fill((0.8).toFixed(12)));
    expect(m.precision_weighted).toBeCloseTo(13 / 15, 12);
    expect(m.recall_weighted).toBeCloseTo(0.8, 12);
    expect(m.f1_weighted).toBeCloseTo(0.7866666666666667, 12);
    expect(m.balanced_accuracy).toBeCloseTo(5 / 6, 12);
  });

  it('gives one-vs-rest ROC-AUC, log loss, Brier, ECE and top-2', () => {
    expect(m.per_class.a!.roc_auc).toBeCloseTo(5 / 6, 12);
    expect(m.per_class.b!.roc_auc).toBeCloseTo(5 / 6, 12);
    expect(m.per_class.c!.roc_auc).toBe(1);
    expect(m.roc_auc_ovr).toBeCloseTo(8 / 9, 12);
    expect(m.log_loss).toBeCloseTo(0.6997179455341609, 12);
    expect(m.brier).toBeCloseTo(1.98 / 5, 12);
    // Bins: 0.7 ✓ | 0.4 ✓ | 0.6 ✓ 0.6 ✓ | 0.5 ✗.
    expect(m.ece).toBeCloseTo((0.3 + 0.6 + 2 * 0.4 + 0.5) / 5, 12);
    expect(m.top2_accuracy).toBe(1);
    expect(m.reliability).toHaveLength(15);
    expect(m.reliability.reduce((s, b) => s + b.count, 0)).toBe(5);
  });

  it('uses every given class for macro averages, zero_division = 0 for a class never predicted nor present', () => {
    const four = classificationMetrics([0, 1], Float64Array.from([0.9, 0.1, 0, 0, 0.2, 0.8, 0, 0]), ['a', 'b', 'c', 'd']);
    expect(four.per_class.c).toEqual({ precision: 0, recall: 0, f1: 0, support: 0, roc_auc: null });
    expect(four.f1_macro).toBe(0.5);
    expect(four.balanced_accuracy).toBe(1); // mean recall over classes present in the labels, as scikit-learn
    expect(four.roc_auc_ovr).toBe(1);
  });
});

describe('ties', () => {
  it('ROC-AUC gives tied scores half a win (Mann–Whitney average ranks)', () => {
    const probs = Float64Array.from([0.5, 0.5, 0.5, 0.5, 0.2, 0.8, 0.8, 0.2]);
    // Class 1 scores: positives 0.5, 0.8; negatives 0.5, 0.2 → (1.5 + 2) / 4.
    expect(rocAucOneVsRest([1, 0, 1, 0], probs, 2, 1)).toBe(0.875);
    expect(classificationMetrics([1, 0, 1, 0], probs, ['x', 'y']).roc_auc_ovr).toBe(0.875);
    // All scores equal: 0.5.
    expect(rocAucOneVsRest([1, 0, 1, 0], Float64Array.from(Array(8).fill(0.5)), 2, 1)).toBe(0.5);
  });

  it('top-2 breaks ties by class order', () => {
    const probs = Float64Array.from([0.4, 0.3, 0.3]);
    expect(classificationMetrics([2], probs, CLASSES).top2_accuracy).toBe(0); // a and b (tied with c, earlier) rank first
    expect(classificationMetrics([1], probs, CLASSES).top2_accuracy).toBe(1);
  });

  it('orders scores at float32 precision, stably, with negative scores below positive ones', () => {
    const probs = Float64Array.from([0.3, -1, 0, 2, 0.3, 1e-9]);
    const { order } = scoreOrder(probs, 6, 1, 0);
    expect(Array.from(order)).toEqual([1, 2, 5, 0, 4, 3]);
  });
});

describe('edge cases', () => {
  it('a single-class set has no defined ROC-AUC', () => {
    const m = classificationMetrics([0, 0], Float64Array.from([0.9, 0.1, 0.6, 0.4]), ['x', 'y']);
    expect(m.roc_auc_ovr).toBeNull();
    expect(m.per_class.x!.roc_auc).toBeNull();
    expect(m.accuracy).toBe(1);
  });

  it('clips probabilities for the log loss', () => {
    const m = classificationMetrics([1], Float64Array.from([1, 0]), ['x', 'y']);
    expect(m.log_loss).toBeCloseTo(-Math.log(1e-15), 6);
  });

  it('puts a top-1 confidence in the equal-width bin (lo, hi]', () => {
    expect(confidenceBin(0)).toBe(0);
    expect(confidenceBin(0.05)).toBe(0);
    expect(confidenceBin(0.07)).toBe(1);
    expect(confidenceBin(1)).toBe(14);
    const m = classificationMetrics([0, 1], Float64Array.from([0.95, 0.05, 0.55, 0.45]), ['x', 'y']);
    expect(m.reliability[14]).toMatchObject({ count: 1, accuracy: 1, confidence: 0.95 });
    expect(m.reliability[8]).toMatchObject({ count: 1, accuracy: 0, confidence: 0.55 });
    expect(m.ece).toBeCloseTo((0.05 + 0.55) / 2, 12);
  });

  it('refuses no rows, NaN probabilities and a wrong array size', () => {
    expect(() => classificationMetrics([], new Float64Array(0), CLASSES)).toThrow(/no rows to score/);
    expect(() => classificationMetrics([0], Float64Array.from([NaN, 0.5, 0.5]), CLASSES)).toThrow(/row 1: probability of `a` is NaN/);
    expect(() => classificationMetrics([0], Float64Array.from([1, 0]), CLASSES)).toThrow(/1 rows × 3 classes/);
    expect(() => classificationMetrics([3], Float64Array.from([1, 0, 0]), CLASSES)).toThrow(/label index 3/);
  });

  it('gives the same figures from Float32Array probabilities', () => {
    const m32 = classificationMetrics(LABELS, Float32Array.from(PROBS), CLASSES);
    const m64 = classificationMetrics(LABELS, PROBS, CLASSES);
    expect(m32.confusion_matrix).toEqual(m64.confusion_matrix);
    expect(m32.roc_auc_ovr).toBeCloseTo(m64.roc_auc_ovr!, 12);
    expect(m32.log_loss).toBeCloseTo(m64.log_loss, 6);
  });
});

describe('weighted rows (bootstrap resamples)', () => {
  it('equal the metrics of the rows repeated that many times', () => {
    const weights = [2, 0, 1, 3, 1];
    const labels: number[] = [];
    const probs: number[] = [];
    weights.forEach((w, r) => {
      for (let i = 0; i < w; i++) {
        labels.push(LABELS[r]!);
        probs.push(...PROBS.subarray(r * 3, r * 3 + 3));
      }
    });
    const repeated = classificationMetrics(labels, Float64Array.from(probs), CLASSES);
    const orders = [0, 1, 2].map((k) => scoreOrder(PROBS, 5, 3, k));
    const weighted = classificationMetricsWithAuc(LABELS, PROBS, CLASSES, null, { weights, orders });
    expect(weighted.n).toBe(7);
    expect(weighted.confusion_matrix).toEqual(repeated.confusion_matrix);
    for (const key of ['accuracy', 'f1_macro', 'f1_weighted', 'roc_auc_ovr', 'log_loss', 'brier', 'ece', 'top2_accuracy'] as const) {
      expect(weighted[key], key).toBeCloseTo(repeated[key]!, 12);
    }
    expect(weighted.per_class.b!.roc_auc).toBeCloseTo(repeated.per_class.b!.roc_auc!, 12);
    expect(() => classificationMetricsWithAuc(LABELS, PROBS, CLASSES, null, { weights: [0, 0, 0, 0, 0] })).toThrow(/every weight is 0/);
  });
});

describe('groupedAuc', () => {
  it('gives each group the AUC of its rows alone, ties included', () => {
    // Scores on a 0.1 grid: many ties inside and across groups.
    const n = 60;
    const labels = Int32Array.from({ length: n }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);
    const probs = new Float64Array(n * 2);
    for (let i = 0; i < n; i++) {
      const s = ((i * 13) % 11) / 10;
      probs[i * 2] = 1 - s;
      probs[i * 2 + 1] = s;
    }
    const codes = Int32Array.from({ length: n }, (_, i) => (i % 4 === 3 ? -1 : i % 4));
    const got = groupedAuc(labels, 1, scoreOrder(probs, n, 2, 1), codes, 3);
    for (let g = 0; g < 3; g++) {
      const rows = Array.from({ length: n }, (_, i) => i).filter((i) => codes[i] === g);
      const sub = Float64Array.from(rows.flatMap((i) => [probs[i * 2]!, probs[i * 2 + 1]!]));
      expect(got[g]).toBeCloseTo(rocAucOneVsRest(rows.map((i) => labels[i]!), sub, 2, 1)!, 12);
    }
  });
});
