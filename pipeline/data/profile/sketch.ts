// Mergeable statistics for the reference profile: fixed-edge histograms (shards add up exactly),
// category counts, and the profile document that drift detection later compares against.

export interface HistogramSketch {
  /** Bin edges, ascending; bin i is [edges[i], edges[i+1]) and the last bin includes its right edge. */
  edges: number[];
  counts: number[];
  /** Values below the first edge / above the last one. */
  underflow: number;
  overflow: number;
  count: number;
  sum: number;
  sumSquares: number;
  min: number | null;
  max: number | null;
}

export interface CategorySketch {
  counts: Record<string, number>;
  count: number;
}

export function evenEdges(lo: number, hi: number, bins: number): number[] {
  const edges: number[] = [];
  for (let i = 0; i <= bins; i++) edges.push(i === bins ? hi : lo + ((hi - lo) * i) / bins);
  return edges;
}

export function newHistogram(edges: readonly number[]): HistogramSketch {
  if (edges.length < 2) throw new Error('a histogram needs at least two edges');
  return {
    edges: [...edges],
    counts: new Array<number>(edges.length - 1).fill(0),
    underflow: 0,
    overflow: 0,
    count: 0,
    sum: 0,
    sumSquares: 0,
    min: null,
    max: null,
  };
}

/** Index of the bin holding `x` (binary search; fixed edges make this the same on every shard). */
function binOf(edges: readonly number[], x: number): number {
  let lo = 0;
  let hi = edges.length - 1;
  if (x === edges[hi]) return hi - 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (x >= edges[mid]!) lo = mid;
    else hi = mid;
  }
  return lo;
}

export function addValue(h: HistogramSketch, x: number): void {
  if (!Number.isFinite(x)) return;
  h.count++;
  h.sum += x;
  h.sumSquares += x * x;
  h.min = h.min === null ? x : Math.min(h.min, x);
  h.max = h.max === null ? x : Math.max(h.max, x);
  if (x < h.edges[0]!) h.underflow++;
  else if (x > h.edges[h.edges.length - 1]!) h.overflow++;
  else h.counts[binOf(h.edges, x)]!++;
}

export function mergeHistograms(a: HistogramSketch, b: HistogramSketch): HistogramSketch {
  if (a.edges.length !== b.edges.length || a.edges.some((e, i) => e !== b.edges[i])) {
    throw new Error('cannot merge histograms with different bin edges');
  }
  const min = a.min === null ? b.min : b.min === null ? a.min : Math.min(a.min, b.min);
  const max = a.max === null ? b.max : b.max === null ? a.max : Math.max(a.max, b.max);
  return {
    edges: [...a.edges],
    counts: a.counts.map((c, i) => c + b.counts[i]!),
    underflow: a.underflow + b.underflow,
    overflow: a.overflow + b.overflow,
    count: a.count + b.count,
    sum: a.sum + b.sum,
    sumSquares: a.sumSquares + b.sumSquares,
    min,
    max,
  };
}

export const PROFILE_QUANTILES = [0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1] as const;

/** Key of a quantile in the profile: `p0`, `p1`, `p50`, `p99`, `p100` (strings keep their order in JSON). */
export function quantileKey(q: number): string {
  return `p${Math.round(q * 1000) / 10}`;
}

/**
 * Quantiles interpolated within the fixed bins (exact at 0 and 1 from min/max; elsewhere off by
 * at most one bin width). Derived from the histogram so they survive merging.
 */
export function quantiles(h: HistogramSketch, qs: readonly number[] = PROFILE_QUANTILES): Record<string, number | null> {
  const out: Record<string, number | null> = {};
  for (const q of qs) {
    if (h.count === 0 || h.min === null || h.max === null) {
      out[quantileKey(q)] = null;
      continue;
    }
    if (q <= 0) {
      out[quantileKey(q)] = h.min;
      continue;
    }
    if (q >= 1) {
      out[quantileKey(q)] = h.max;
      continue;
    }
    const target = q * h.count;
    let seen = h.underflow;
    let value: number = h.min;
    if (target > seen) {
      value = h.max;
      for (let i = 0; i < h.counts.length; i++) {
        const c = h.counts[i]!;
        if (seen + c >= target && c > 0) {
          const lo = Math.max(h.edges[i]!, h.min);
          const hi = Math.min(h.edges[i + 1]!, h.max);
          value = lo + ((hi - lo) * (target - seen)) / c;
          break;
        }
        seen += c;
      }
    }
    out[quantileKey(q)] = Math.min(h.max, Math.max(h.min, value));
  }
  return out;
}

export function newCategories(): CategorySketch {
  return { counts: {}, count: 0 };
}

export function addCategory(s: CategorySketch, value: string, n = 1): void {
  s.counts[value] = (s.counts[value] ?? 0) + n;
  s.count += n;
}

export function mergeCategories(a: CategorySketch, b: CategorySketch): CategorySketch {
  const out = newCategories();
  for (const [k, v] of Object.entries(a.counts)) addCategory(out, k, v);
  for (const [k, v] of Object.entries(b.counts)) addCategory(out, k, v);
  return out;
}

export function frequencies(s: CategorySketch): Record<string, number> {
  return Object.fromEntries(Object.entries(s.counts).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)).map(([k, v]) => [k, s.count ? v / s.count : 0]));
}
