// Champion / challenger comparison on the same rows: headline deltas with paired-bootstrap 95%
// intervals (both models scored on the same resampled rows or images, seeded) and McNemar's test
// on accuracy.

import { ConfigurationError, DataError } from '../../core/errors.ts';
import { CLASSIFICATION_HEADLINE, DETECTION_HEADLINE, type McNemarResult, type MetricDelta, type Metrics } from '../types.ts';
import { argmaxRow, classificationMetrics, prepareClassification, preparedHeadline } from './classification.ts';
import { preparedDetectionHeadline, prepareDetections, scorePrepared, type DetectionSample } from './detection.ts';

export const DEFAULT_RESAMPLES = 1000;
export const DEFAULT_SEED = 42;

/** mulberry32: a small, fast, seeded generator; the same seed gives the same intervals everywhere. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Linear-interpolated quantile of sorted values (numpy's default). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

function resamplesOf(o: { resamples?: number }): number {
  const resamples = o.resamples ?? DEFAULT_RESAMPLES;
  if (!Number.isInteger(resamples) || resamples < 1) throw new ConfigurationError(`bootstrap resamples must be an integer ≥ 1, got ${resamples}`, { field: 'resamples' });
  return resamples;
}

/**
 * Percentile intervals of several statistics over the same resamples: `stat` returns one value per
 * statistic for a resample of row indices (drawn with replacement). Resamples where a statistic is
 * not finite (e.g. an AUC with one class) are left out of that statistic; null when none is finite.
 */
export function pairedBootstrapMany(stat: (idx: Int32Array) => readonly number[], n: number, o: { resamples?: number; seed?: number } = {}): ([number, number] | null)[] {
  const resamples = resamplesOf(o);
  if (n < 1) throw new DataError('nothing to resample (no rows)');
  const random = seededRandom(o.seed ?? DEFAULT_SEED);
  const idx = new Int32Array(n);
  const draws: number[][] = [];
  for (let b = 0; b < resamples; b++) {
    for (let i = 0; i < n; i++) idx[i] = Math.floor(random() * n);
    const values = stat(idx);
    values.forEach((v, s) => {
      if (Number.isFinite(v)) (draws[s] ??= []).push(v);
    });
    if (b === 0) for (let s = 0; s < values.length; s++) draws[s] ??= [];
  }
  return draws.map((d) => {
    if (!d.length) return null;
    const sorted = Float64Array.from(d).sort();
    return [quantile(sorted, 0.025), quantile(sorted, 0.975)];
  });
}

/** Paired-bootstrap 95% percentile interval of one statistic; [NaN, NaN] when it is never finite. */
export function pairedBootstrap(stat: (idx: Int32Array) => number, n: number, o: { resamples?: number; seed?: number } = {}): [number, number] {
  return pairedBootstrapMany((idx) => [stat(idx)], n, o)[0] ?? [NaN, NaN];
}

/** Survival function of chi-square with 1 degree of freedom: erfc(√(x/2)). */
function chi2Sf1(x: number): number {
  const z = Math.sqrt(x / 2);
  // erfc by the Numerical Recipes Chebyshev fit (relative error < 1.2e-7).
  const t = 1 / (1 + 0.5 * z);
  const y =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return Math.min(1, y);
}

/** Two-sided exact binomial p of min(b, c) successes out of b + c at ½. */
function exactBinomialP(b: number, c: number): number {
  const m = b + c;
  const k = Math.min(b, c);
  let term = Math.pow(0.5, m);
  let tail = 0;
  for (let i = 0; i <= k; i++) {
    tail += term;
    term *= (m - i) / (i + 1);
  }
  return Math.min(1, 2 * tail);
}

/** McNemar's test on paired correctness; exact binomial p when there are fewer than 25 discordant pairs. */
export function mcnemar(challengerCorrect: ArrayLike<boolean | number>, championCorrect: ArrayLike<boolean | number>): McNemarResult {
  if (challengerCorrect.length !== championCorrect.length) {
    throw new DataError(`McNemar's test needs paired rows: ${challengerCorrect.length} challenger rows, ${championCorrect.length} champion rows`);
  }
  let b = 0;
  let c = 0;
  for (let i = 0; i < challengerCorrect.length; i++) {
    const x = Boolean(challengerCorrect[i]);
    const y = Boolean(championCorrect[i]);
    if (x && !y) b++;
    else if (y && !x) c++;
  }
  const m = b + c;
  const statistic = m ? (Math.max(0, Math.abs(b - c) - 1) ** 2) / m : 0;
  const pValue = m === 0 ? 1 : m < 25 ? exactBinomialP(b, c) : chi2Sf1(statistic);
  return { challengerOnly: b, championOnly: c, statistic, pValue };
}

function headline(m: Metrics, key: string): number | null {
  const v = (m as unknown as Record<string, unknown>)[key];
  return typeof v === 'number' ? v : null;
}

function deltas(keys: readonly string[], challenger: Metrics, champion: Metrics, intervals: ([number, number] | null)[] | null): MetricDelta[] {
  return keys.map((metric, i) => {
    const a = headline(challenger, metric);
    const b = headline(champion, metric);
    return { metric, challenger: a, champion: b, delta: a !== null && b !== null ? a - b : null, ci95: intervals?.[i] ?? null };
  });
}

/** Deltas of every classification headline metric with their intervals (resamples: 0 turns the bootstrap off), and McNemar on accuracy. */
export function compareClassification(
  labels: ArrayLike<number>,
  challenger: Float32Array | Float64Array,
  champion: Float32Array | Float64Array,
  classes: readonly string[],
  o: { resamples?: number; seed?: number } = {},
): { comparison: MetricDelta[]; mcnemar: McNemarResult } {
  const n = labels.length;
  const C = classes.length;
  if (challenger.length !== champion.length) throw new DataError(`challenger and champion probabilities differ in size (${challenger.length} vs ${champion.length}): they must score the same rows`);
  const a = classificationMetrics(labels, challenger, classes);
  const b = classificationMetrics(labels, champion, classes);
  const keys = CLASSIFICATION_HEADLINE;
  let intervals: ([number, number] | null)[] | null = null;
  if (o.resamples !== 0) {
    // A resample is a count per row: each model's rows are prepared once (predictions, loss
    // terms, score orders), so a resample costs one pass over the rows and one walk per class.
    const pa = prepareClassification(labels, challenger, classes);
    const pb = prepareClassification(labels, champion, classes);
    const weights = new Int32Array(n);
    intervals = pairedBootstrapMany(
      (idx) => {
        weights.fill(0);
        for (let i = 0; i < n; i++) weights[idx[i]!]!++;
        const ma = preparedHeadline(pa, weights);
        const mb = preparedHeadline(pb, weights);
        return keys.map((k) => ma[k] - mb[k]);
      },
      n,
      o,
    );
  }
  const correctA = new Uint8Array(n);
  const correctB = new Uint8Array(n);
  for (let r = 0; r < n; r++) {
    correctA[r] = argmaxRow(challenger, r, C) === labels[r] ? 1 : 0;
    correctB[r] = argmaxRow(champion, r, C) === labels[r] ? 1 : 0;
  }
  return { comparison: deltas(keys, a, b, intervals), mcnemar: mcnemar(correctA, correctB) };
}

/** Deltas of the detection headline metrics; the bootstrap resamples images (resamples: 0 turns it off). */
export function compareDetection(
  challenger: readonly DetectionSample[],
  champion: readonly DetectionSample[],
  classes: readonly string[],
  o: { resamples?: number; seed?: number } = {},
): { comparison: MetricDelta[] } {
  const byId = new Map(champion.map((s) => [s.id, s]));
  if (byId.size !== champion.length || champion.length !== challenger.length) {
    throw new DataError(`challenger and champion must score the same images (${challenger.length} vs ${champion.length}, ids unique)`);
  }
  const paired = challenger.map((s) => {
    const other = byId.get(s.id);
    if (!other) throw new DataError(`image \`${s.id}\` has challenger predictions but none from the champion`);
    return other;
  });
  if (classes.length === 0) throw new DataError('no classes to score');
  if (challenger.length === 0) throw new DataError('no images to score (empty test split)');
  // Boxes are matched once per model; a resample only reweights images.
  const pa = prepareDetections(challenger, classes.length);
  const pb = prepareDetections(paired, classes.length);
  const a = scorePrepared(pa, classes);
  const b = scorePrepared(pb, classes);
  const keys = DETECTION_HEADLINE;
  let intervals: ([number, number] | null)[] | null = null;
  if (o.resamples !== 0) {
    const weights = new Int32Array(challenger.length);
    intervals = pairedBootstrapMany(
      (idx) => {
        weights.fill(0);
        for (const i of idx) weights[i]!++;
        const ma = preparedDetectionHeadline(pa, weights);
        const mb = preparedDetectionHeadline(pb, weights);
        return keys.map((k) => ma[k] - mb[k]);
      },
      challenger.length,
      o,
    );
  }
  return { comparison: deltas(keys, a, b, intervals) };
}
