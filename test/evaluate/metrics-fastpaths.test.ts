import { describe, expect, it } from 'vitest';
import {
  classificationMetricsWithAuc,
  compareClassification,
  compareDetection,
  groupedAuc,
  metricsOfRows,
  pairedBootstrapMany,
  prepareClassification,
  preparedDetectionHeadline,
  preparedHeadline,
  prepareDetections,
  rowTerms,
  scoreOrder,
  scorePrepared,
  seededRandom,
  type DetectionSample,
} from '../../pipeline/evaluate/metrics/index.ts';
import { CLASSIFICATION_HEADLINE, DETECTION_HEADLINE, type Metrics } from '../../pipeline/evaluate/types.ts';

const value = (m: Metrics, key: string): number => {
  const v = (m as unknown as Record<string, unknown>)[key];
  return typeof v === 'number' ? v : NaN;
};

/** n rows, C classes, probabilities leaning to the true class; `tieEvery` rows share rounded scores (tied AUC runs). */
function rows(n: number, C: number, seed: number, tieEvery = 0): { labels: Int32Array; a: Float64Array; b: Float64Array } {
  const random = seededRandom(seed);
  const labels = Int32Array.from({ length: n }, () => Math.floor(random() * C));
  const probs = (lean: number): Float64Array => {
    const p = new Float64Array(n * C);
    for (let r = 0; r < n; r++) {
      let s = 0;
      for (let k = 0; k < C; k++) {
        let v = random() + (k === labels[r] ? lean : 0);
        if (tieEvery && r % tieEvery === 0) v = Math.round(v * 4) / 4 + 0.01;
        p[r * C + k] = v;
        s += v;
      }
      for (let k = 0; k < C; k++) p[r * C + k]! /= s;
    }
    return p;
  };
  return { labels, a: probs(0.6), b: probs(0.3) };
}

describe('prepared classification headline', () => {
  it('equals classificationMetricsWithAuc with the same weights, bit for bit, ties and absent classes included', () => {
    // Class 5 of 6 never occurs in a 40-row sample half the time: its AUC is null there.
    for (const [n, C, tieEvery] of [[40, 6, 3], [500, 12, 0], [300, 4, 2]] as const) {
      const { labels, a } = rows(n, C, n + C, tieEvery);
      const classes = Array.from({ length: C }, (_, k) => `c${k}`);
      const prepared = prepareClassification(labels, a, classes);
      const random = seededRandom(9);
      const weights = new Int32Array(n);
      for (let trial = 0; trial < 20; trial++) {
        weights.fill(0);
        for (let i = 0; i < n; i++) weights[Math.floor(random() * n)]!++;
        const slow = classificationMetricsWithAuc(labels, a, classes, null, { weights });
        const fast = preparedHeadline(prepared, weights);
        for (const key of CLASSIFICATION_HEADLINE) expect([key, fast[key]]).toEqual([key, value(slow, key)]);
      }
    }
  });

  it('gives compareClassification the intervals of the full metrics on every resample (same seed, same numbers)', () => {
    const n = 200;
    const C = 7;
    const { labels, a, b } = rows(n, C, 3, 4);
    const classes = Array.from({ length: C }, (_, k) => `c${k}`);
    const o = { resamples: 60, seed: 11 };
    const weights = new Int32Array(n);
    const slow = pairedBootstrapMany(
      (idx) => {
        weights.fill(0);
        for (let i = 0; i < n; i++) weights[idx[i]!]!++;
        const ma = classificationMetricsWithAuc(labels, a, classes, null, { weights });
        const mb = classificationMetricsWithAuc(labels, b, classes, null, { weights });
        return CLASSIFICATION_HEADLINE.map((k) => value(ma, k) - value(mb, k));
      },
      n,
      o,
    );
    const fast = compareClassification(labels, a, b, classes, o).comparison.map((d) => d.ci95);
    expect(fast).toEqual(slow);
    expect(fast.every((ci) => ci !== null && ci[0] <= ci[1])).toBe(true);
  });
});

describe('metrics of a subset of rows from their terms', () => {
  it('equal classificationMetricsWithAuc on the rows copied out, bit for bit', () => {
    const n = 400;
    const C = 5;
    const { labels, a } = rows(n, C, 21, 3);
    const classes = Array.from({ length: C }, (_, k) => `c${k}`);
    const terms = rowTerms(labels, a, classes);
    const orders = Array.from({ length: C }, (_, k) => scoreOrder(a, n, C, k));
    const all = orders.map((o, k) => groupedAuc(labels, k, o, null, 1)[0] ?? null);
    expect(metricsOfRows(terms, classes, all, null)).toEqual(classificationMetricsWithAuc(labels, a, classes, null));
    const subset = Int32Array.from({ length: n }, (_, r) => r).filter((r) => r % 3 !== 1 && r % 7 !== 0);
    const subLabels = Int32Array.from(subset, (r) => labels[r]!);
    const subProbs = new Float64Array(subset.length * C);
    subset.forEach((r, i) => subProbs.set(a.subarray(r * C, (r + 1) * C), i * C));
    const aucs = [0.5, null, 0.25, 0.75, 1];
    const expected = classificationMetricsWithAuc(subLabels, subProbs, classes, aucs);
    expect(metricsOfRows(terms, classes, aucs, subset)).toEqual(expected);
    expect(expected.n).toBe(subset.length);
  });
});

describe('prepared detection headline', () => {
  const box = (x: number, y: number): [number, number, number, number] => [x, y, x + 20, y + 20];
  function images(seed: number, jitter: number): DetectionSample[] {
    const random = seededRandom(seed);
    const place = seededRandom(1);
    return Array.from({ length: 60 }, (_, i) => {
      const gt = Array.from({ length: 3 }, () => ({ cls: Math.floor(place() * 3), box: box(place() * 200, place() * 200) }));
      const pred = Array.from({ length: 8 }, (_, j) => {
        const g = gt[j % 3]!;
        const d = (random() - 0.5) * jitter * (j < 3 ? 1 : 4);
        return { cls: j < 5 ? g.cls : Math.floor(random() * 3), conf: Math.round(random() * 20) / 20, box: box(g.box[0] + d, g.box[1] + d) };
      });
      return { id: `i${i}`, gt: i % 7 === 0 ? [] : gt, pred };
    });
  }

  it('equals scorePrepared with the same image weights, bit for bit', () => {
    const prepared = prepareDetections(images(4, 12), 3);
    const random = seededRandom(5);
    const weights = new Int32Array(60);
    for (let trial = 0; trial < 30; trial++) {
      weights.fill(0);
      for (let i = 0; i < 60; i++) weights[Math.floor(random() * 60)]!++;
      const slow = scorePrepared(prepared, ['a', 'b', 'c'], { imageWeights: weights });
      const fast = preparedDetectionHeadline(prepared, weights);
      for (const key of DETECTION_HEADLINE) expect([key, fast[key]]).toEqual([key, value(slow, key)]);
    }
  });

  it('gives compareDetection the intervals of scorePrepared on every resample', () => {
    const a = images(4, 8);
    const b = images(6, 16);
    const pa = prepareDetections(a, 3);
    const pb = prepareDetections(b, 3);
    const o = { resamples: 80, seed: 3 };
    const weights = new Int32Array(60);
    const slow = pairedBootstrapMany(
      (idx) => {
        weights.fill(0);
        for (const i of idx) weights[i]!++;
        const ma = scorePrepared(pa, ['a', 'b', 'c'], { imageWeights: weights });
        const mb = scorePrepared(pb, ['a', 'b', 'c'], { imageWeights: weights });
        return DETECTION_HEADLINE.map((k) => value(ma, k) - value(mb, k));
      },
      60,
      o,
    );
    expect(compareDetection(a, b, ['a', 'b', 'c'], o).comparison.map((d) => d.ci95)).toEqual(slow);
  });
});
