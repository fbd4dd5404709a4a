// Feature quantisation: per-feature cut points from quantiles of a row sample, then every value
// mapped once to a Uint8 bin code. Cut points are float32 values, and a value goes to the left of
// cut c exactly when `v <= c` in float32: the same test ONNX's BRANCH_LEQ makes, so the trees'
// thresholds route every value identically in training, in TypeScript prediction and in ONNX.

/** Largest number of real bins: the code after the last real bin is the missing-value bin. */
export const MAX_REAL_BINS = 255;
const SAMPLE_ROWS = 200_000;

export interface Quantizer {
  /** Ascending float32 cut points per feature; feature f has cuts[f].length + 1 real bins. */
  cuts: Float32Array[];
}

/** A float32 strictly between... or rather: the float32 `m` with a ≤ m < b, near their midpoint. */
export function splitPoint(a: number, b: number): number {
  const m = Math.fround(a + (b - a) / 2);
  return m >= a && m < b ? m : a;
}

/** Deterministic sample of row indices (every row when there are few). */
function sampleRows(nRows: number, seed: number): Uint32Array {
  if (nRows <= SAMPLE_ROWS) return Uint32Array.from({ length: nRows }, (_, i) => i);
  // Partial Fisher–Yates with a seeded generator, then sorted for cache-friendly reads.
  const idx = Uint32Array.from({ length: nRows }, (_, i) => i);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < SAMPLE_ROWS; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const j = i + (s % (nRows - i));
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
  }
  return idx.subarray(0, SAMPLE_ROWS).sort();
}

export function fitQuantizer(x: Float32Array, nRows: number, nFeatures: number, maxBin: number, seed: number): Quantizer {
  const realBins = Math.min(maxBin, MAX_REAL_BINS);
  const rows = sampleRows(nRows, seed);
  const values = new Float32Array(rows.length);
  const cuts: Float32Array[] = [];
  for (let f = 0; f < nFeatures; f++) {
    let n = 0;
    for (let i = 0; i < rows.length; i++) {
      const v = x[rows[i]! * nFeatures + f]!;
      if (v === v) values[n++] = v;
    }
    const sorted = values.subarray(0, n).sort();
    let distinct = 0;
    for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) distinct++;
    const out: number[] = [];
    if (distinct <= realBins) {
      for (let i = 1; i < n; i++) if (sorted[i] !== sorted[i - 1]) out.push(splitPoint(sorted[i - 1]!, sorted[i]!));
    } else {
      // Quantile boundaries: values ≤ sorted[q] go left; the cut sits between it and the next distinct value.
      let upper = 0;
      for (let k = 1; k < realBins; k++) {
        const q = Math.floor((k * n) / realBins);
        const v = sorted[Math.min(q, n - 1)]!;
        if (upper < q) upper = q;
        while (upper < n && sorted[upper]! <= v) upper++;
        if (upper >= n) break;
        const c = splitPoint(v, sorted[upper]!);
        if (out.length === 0 || c > out[out.length - 1]!) out.push(c);
      }
    }
    cuts.push(Float32Array.from(out));
  }
  return { cuts };
}

/** Number of real bins per feature (its missing bin code equals this number). */
export function realBinCounts(q: Quantizer): Int32Array {
  return Int32Array.from(q.cuts, (c) => c.length + 1);
}

/** Bin code of one value: first cut with v ≤ cut, the last real bin beyond all cuts, or missing. */
export function binOf(cuts: Float32Array, v: number): number {
  if (v !== v) return cuts.length + 1;
  let lo = 0;
  let hi = cuts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (v <= cuts[mid]!) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** Quantise a row-major matrix into `out` (row-major Uint8 codes, same shape). */
export function quantize(q: Quantizer, x: Float32Array, nRows: number, nFeatures: number, out: Uint8Array): void {
  for (let f = 0; f < nFeatures; f++) {
    const c = q.cuts[f]!;
    for (let r = 0, p = f; r < nRows; r++, p += nFeatures) out[p] = binOf(c, x[p]!);
  }
}
