// The reference profile: per-feature and per-image statistics of the training split, built from
// mergeable sketches so sharded runs combine to the single-machine result. Baseline for drift.

import {
  addCategory,
  addValue,
  evenEdges,
  frequencies,
  mergeCategories,
  mergeHistograms,
  newCategories,
  newHistogram,
  quantiles,
  type CategorySketch,
  type HistogramSketch,
} from './sketch.ts';

export interface NumericProfile extends HistogramSketch {
  /** Derived from the histogram on finalisation: recomputed after a merge. */
  quantiles?: Record<string, number | null>;
  mean?: number | null;
  std?: number | null;
}

export interface CategoryProfile extends CategorySketch {
  frequencies?: Record<string, number>;
}

export interface ReferenceProfile {
  version: 1;
  task: string;
  split: string;
  count: number;
  numeric: Record<string, NumericProfile>;
  categorical: Record<string, CategoryProfile>;
  labels: CategoryProfile;
}

/** Fixed edges for the image statistics, chosen once so every shard bins alike. */
export const IMAGE_STAT_EDGES: Readonly<Record<string, number[]>> = {
  brightness: evenEdges(0, 255, 51),
  contrast: evenEdges(0, 128, 64),
  mean_r: evenEdges(0, 255, 51),
  mean_g: evenEdges(0, 255, 51),
  mean_b: evenEdges(0, 255, 51),
  // Laplacian variance spans orders of magnitude: log-spaced bins from 1 to 1e5.
  sharpness: [0, ...Array.from({ length: 51 }, (_, i) => 10 ** (i / 10))],
};

/** Edges for a tabular feature from its known range (probabilities, one-hot, age…). */
export function featureEdges(range: readonly [number, number] | undefined, binary: boolean): number[] {
  if (binary) return [0, 0.5, 1];
  const [lo, hi] = range ?? [0, 1];
  return evenEdges(lo, hi, 50);
}

export class ProfileBuilder {
  readonly profile: ReferenceProfile;
  constructor(task: string, split: string) {
    this.profile = { version: 1, task, split, count: 0, numeric: {}, categorical: {}, labels: newCategories() };
  }

  numeric(name: string, edges: readonly number[], value: number): void {
    let h = this.profile.numeric[name];
    if (!h) h = this.profile.numeric[name] = newHistogram(edges);
    addValue(h, value);
  }

  category(name: string, value: string): void {
    let c = this.profile.categorical[name];
    if (!c) c = this.profile.categorical[name] = newCategories();
    addCategory(c, value);
  }

  label(value: string, n = 1): void {
    addCategory(this.profile.labels, value, n);
  }

  item(): void {
    this.profile.count++;
  }

  finish(): ReferenceProfile {
    return finalizeProfile(this.profile);
  }
}

/** Add derived fields (quantiles, mean, std, frequencies): always recomputed from the sketches. */
export function finalizeProfile(p: ReferenceProfile): ReferenceProfile {
  const numeric: Record<string, NumericProfile> = {};
  for (const [name, h] of Object.entries(p.numeric)) {
    const mean = h.count ? h.sum / h.count : null;
    const variance = h.count > 1 && mean !== null ? Math.max(0, (h.sumSquares - h.count * mean * mean) / (h.count - 1)) : null;
    numeric[name] = { ...stripNumeric(h), quantiles: quantiles(h), mean, std: variance === null ? null : Math.sqrt(variance) };
  }
  const categorical: Record<string, CategoryProfile> = {};
  for (const [name, c] of Object.entries(p.categorical)) categorical[name] = { counts: c.counts, count: c.count, frequencies: frequencies(c) };
  return {
    ...p,
    numeric,
    categorical,
    labels: { counts: p.labels.counts, count: p.labels.count, frequencies: frequencies(p.labels) },
  };
}

function stripNumeric(h: NumericProfile): HistogramSketch {
  const { edges, counts, underflow, overflow, count, sum, sumSquares, min, max } = h;
  return { edges, counts, underflow, overflow, count, sum, sumSquares, min, max };
}

/** Merge two profiles of the same task (shards of one split): sketches add, derived fields are recomputed. */
export function mergeProfiles(a: ReferenceProfile, b: ReferenceProfile): ReferenceProfile {
  if (a.task !== b.task) throw new Error(`cannot merge profiles of different tasks (${a.task}, ${b.task})`);
  const numeric: Record<string, NumericProfile> = {};
  for (const name of new Set([...Object.keys(a.numeric), ...Object.keys(b.numeric)])) {
    const x = a.numeric[name];
    const y = b.numeric[name];
    numeric[name] = x && y ? mergeHistograms(stripNumeric(x), stripNumeric(y)) : stripNumeric((x ?? y)!);
  }
  const categorical: Record<string, CategoryProfile> = {};
  for (const name of new Set([...Object.keys(a.categorical), ...Object.keys(b.categorical)])) {
    categorical[name] = mergeCategories(a.categorical[name] ?? newCategories(), b.categorical[name] ?? newCategories());
  }
  return finalizeProfile({
    version: 1,
    task: a.task,
    split: a.split,
    count: a.count + b.count,
    numeric,
    categorical,
    labels: mergeCategories(a.labels, b.labels),
  });
}
