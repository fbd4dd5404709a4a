// Scoring the original chain per bucket (acne, wrinkles, dark_spots, redness): `detected` against
// whether the image has a ground-truth box of a class of that bucket, and the severity the chain
// gives against the severity it gives when fed the ground-truth boxes as detections of confidence 1.

import type { ChainMetrics } from './types.ts';

export type Severity = 'HIGH' | 'MODERATE' | 'LOW' | 'NONE';

/** One bucket of the chain's output (the shape of pipeline/inference/chain.ts buckets). */
export interface BucketOutput {
  detected: boolean;
  severity: Severity;
  confidence: number;
}

export type Buckets = Readonly<Record<string, BucketOutput>>;

/** The chain's buckets, in report order. */
export const BUCKETS = ['acne', 'wrinkles', 'dark_spots', 'redness'] as const;

/**
 * The chain's per-class scores for ground-truth boxes taken as detections of confidence 1:
 * every class with a box scores 1, then the scores are normalised to sum 1 as the chain does.
 */
export function groundTruthClassScores(gtClasses: Iterable<number>, nClasses: number): Float64Array {
  const scores = new Float64Array(nClasses);
  for (const c of gtClasses) if (c >= 0 && c < nClasses) scores[c] = 1;
  let sum = 0;
  for (const s of scores) sum += s;
  if (sum > 0) for (let c = 0; c < nClasses; c++) scores[c] = scores[c]! / sum;
  return scores;
}

/** Per-class scores from decoded detections: the highest confidence per class at ≥ `confidence`, normalised to sum 1. */
export function detectionClassScores(detections: readonly { cls: number; confidence: number }[], nClasses: number, confidence: number): Float64Array {
  const scores = new Float64Array(nClasses);
  const threshold = Math.fround(confidence);
  for (const d of detections) if (d.cls >= 0 && d.cls < nClasses && d.confidence >= threshold && d.confidence > scores[d.cls]!) scores[d.cls] = d.confidence;
  let sum = 0;
  for (const s of scores) sum += s;
  if (sum > 0) for (let c = 0; c < nClasses; c++) scores[c] = scores[c]! / sum;
  return scores;
}

/** One image: what the chain said, and what it says for the ground truth (whose `detected` = bucket present). */
export interface ChainPair {
  predicted: Buckets;
  reference: Buckets;
}

/**
 * Per-bucket precision / recall / F1 of `detected` (support = images where the bucket is present),
 * per-bucket and overall severity agreement, and the macro F1 over the four buckets
 * (zero_division = 0, as everywhere else).
 */
export function scoreChain(pairs: readonly ChainPair[]): ChainMetrics {
  const buckets: ChainMetrics['buckets'] = {};
  let agreeAll = 0;
  let f1Sum = 0;
  for (const b of BUCKETS) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    let agree = 0;
    for (const p of pairs) {
      const pred = p.predicted[b]?.detected ?? false;
      const truth = p.reference[b]?.detected ?? false;
      if (pred && truth) tp++;
      else if (pred) fp++;
      else if (truth) fn++;
      if ((p.predicted[b]?.severity ?? 'NONE') === (p.reference[b]?.severity ?? 'NONE')) agree++;
    }
    const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
    const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
    const f1 = precision + recall > 0 ? (2 * precision * recall) / (precision + recall) : 0;
    buckets[b] = { precision, recall, f1, support: tp + fn, severity_agreement: pairs.length ? agree / pairs.length : 0 };
    agreeAll += agree;
    f1Sum += f1;
  }
  return {
    task: 'chain',
    n: pairs.length,
    buckets,
    f1_macro: f1Sum / BUCKETS.length,
    severity_agreement: pairs.length ? agreeAll / (pairs.length * BUCKETS.length) : 0,
  };
}
