// A generated classification table with a known non-linear rule plus noise, for the gbdt tests and
// benchmark: deterministic for a seed, features in float32, optional missing values.

export interface SyntheticTable {
  x: Float32Array;
  y: Int32Array;
  nRows: number;
  nFeatures: number;
  featureNames: string[];
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Rows whose class is the argmax of per-class scores built from thresholds, products and smooth
 * functions of the first dozen features, plus Gumbel noise (so the Bayes error is not zero).
 * The remaining features are distractors; a share of values is NaN when `missing` > 0.
 */
export function syntheticTable(opts: { nRows: number; nFeatures: number; nClasses: number; seed: number; missing?: number; noise?: number }): SyntheticTable {
  const { nRows, nFeatures: F, nClasses: C, seed } = opts;
  const rnd = mulberry32(seed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
  // Per-class weights of the informative terms.
  const terms = 8;
  const w = Array.from({ length: C * terms }, () => normal() * 1.2);
  const x = new Float32Array(nRows * F);
  const y = new Int32Array(nRows);
  const missing = opts.missing ?? 0;
  const noise = opts.noise ?? 1;
  const s = new Float64Array(C);
  for (let r = 0; r < nRows; r++) {
    const o = r * F;
    for (let f = 0; f < F; f++) {
      // Column kinds: normal, uniform, small integers (categorical-like), skewed.
      const kind = f % 4;
      x[o + f] = kind === 0 ? normal() : kind === 1 ? rnd() * 10 - 5 : kind === 2 ? Math.floor(rnd() * 5) : Math.exp(normal());
    }
    const v = (f: number) => (f < F ? x[o + f]! : 0);
    const t = [
      v(0),
      v(1) > 1 ? 1 : -1,
      v(2) * (v(4) > 0 ? 1 : -1) * 0.5,
      Math.sin(v(5)),
      Math.log1p(v(3)),
      v(6) === 3 ? 1.5 : 0,
      v(8) * v(9) * 0.1,
      Math.abs(v(10)) - 0.8,
    ];
    let best = 0;
    for (let k = 0; k < C; k++) {
      let sum = 0;
      for (let j = 0; j < terms; j++) sum += w[k * terms + j]! * t[j]!;
      s[k] = sum - noise * Math.log(-Math.log(Math.max(rnd(), 1e-12)));
      if (s[k]! > s[best]!) best = k;
    }
    y[r] = best;
    if (missing > 0) for (let f = 0; f < F; f++) if (rnd() < missing) x[o + f] = NaN;
  }
  return { x, y, nRows, nFeatures: F, featureNames: Array.from({ length: F }, (_, f) => `f${f}`) };
}

/** Rows [start, end) of a table. */
export function sliceTable(t: SyntheticTable, start: number, end: number): SyntheticTable {
  return {
    x: t.x.slice(start * t.nFeatures, end * t.nFeatures),
    y: t.y.slice(start, end),
    nRows: end - start,
    nFeatures: t.nFeatures,
    featureNames: t.featureNames,
  };
}
