// Perceptual hash (8×8 DCT pHash of a 32×32 grayscale) and the per-image statistics of the
// reference profile (brightness, contrast, colour means, Laplacian sharpness), all computed from
// one small decoded thumbnail.

const DCT_SIZE = 32;
const HASH_SIZE = 8;

// cos table for the 8 lowest DCT-II frequencies over 32 samples.
const COS = (() => {
  const t = new Float64Array(HASH_SIZE * DCT_SIZE);
  for (let u = 0; u < HASH_SIZE; u++) for (let x = 0; x < DCT_SIZE; x++) t[u * DCT_SIZE + x] = Math.cos(((2 * x + 1) * u * Math.PI) / (2 * DCT_SIZE));
  return t;
})();

/** 64-bit pHash of a 32×32 grayscale (row-major), as 16 hex digits. */
export function pHash(gray32: ArrayLike<number>): string {
  // rows: R[u][x'] = Σ_y cos(u,y)·P[y][x']
  const rows = new Float64Array(HASH_SIZE * DCT_SIZE);
  for (let u = 0; u < HASH_SIZE; u++) {
    for (let y = 0; y < DCT_SIZE; y++) {
      const c = COS[u * DCT_SIZE + y]!;
      for (let x = 0; x < DCT_SIZE; x++) rows[u * DCT_SIZE + x]! += c * gray32[y * DCT_SIZE + x]!;
    }
  }
  const coeffs = new Float64Array(HASH_SIZE * HASH_SIZE);
  for (let u = 0; u < HASH_SIZE; u++) {
    for (let v = 0; v < HASH_SIZE; v++) {
      let s = 0;
      for (let x = 0; x < DCT_SIZE; x++) s += rows[u * DCT_SIZE + x]! * COS[v * DCT_SIZE + x]!;
      coeffs[u * HASH_SIZE + v] = s;
    }
  }
  // Median of the 63 AC coefficients (the DC term only says how bright the image is).
  const ac = Array.from(coeffs.subarray(1)).sort((a, b) => a - b);
  const median = ac[Math.floor(ac.length / 2)]!;
  let hex = '';
  for (let nibble = 0; nibble < 16; nibble++) {
    let v = 0;
    for (let b = 0; b < 4; b++) v = (v << 1) | (coeffs[nibble * 4 + b]! > median ? 1 : 0);
    hex += v.toString(16);
  }
  return hex;
}

const POPCOUNT4 = [0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4];

/** Hamming distance of two hex hashes of the same length. */
export function hamming(a: string, b: string): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d += POPCOUNT4[parseInt(a[i]!, 16) ^ parseInt(b[i]!, 16)]!;
  return d;
}

export interface ImageStats {
  /** Mean luma, 0–255. */
  brightness: number;
  /** Standard deviation of luma. */
  contrast: number;
  mean_r: number;
  mean_g: number;
  mean_b: number;
  /** Variance of the 4-neighbour Laplacian of the luma thumbnail: low means blurry. */
  sharpness: number;
}

export const THUMB_SIZE = 128;

/**
 * Stats and pHash from a THUMB_SIZE² RGB uint8 thumbnail (HWC).
 */
export function thumbnailStats(rgb: Uint8Array, size = THUMB_SIZE): { stats: ImageStats; phash: string } {
  const n = size * size;
  const gray = new Float64Array(n);
  let sr = 0;
  let sg = 0;
  let sb = 0;
  let sl = 0;
  let sll = 0;
  for (let p = 0, i = 0; p < n; p++, i += 3) {
    const r = rgb[i]!;
    const g = rgb[i + 1]!;
    const b = rgb[i + 2]!;
    const l = 0.299 * r + 0.587 * g + 0.114 * b;
    gray[p] = l;
    sr += r;
    sg += g;
    sb += b;
    sl += l;
    sll += l * l;
  }
  const brightness = sl / n;
  let lap = 0;
  let lap2 = 0;
  let m = 0;
  for (let y = 1; y < size - 1; y++) {
    for (let x = 1; x < size - 1; x++) {
      const p = y * size + x;
      const v = gray[p - size]! + gray[p + size]! + gray[p - 1]! + gray[p + 1]! - 4 * gray[p]!;
      lap += v;
      lap2 += v * v;
      m++;
    }
  }
  const lapMean = lap / m;
  // Box-average down to 32×32 for the pHash.
  const f = size / DCT_SIZE;
  const small = new Float64Array(DCT_SIZE * DCT_SIZE);
  for (let y = 0; y < size; y++) {
    const sy = Math.floor(y / f);
    for (let x = 0; x < size; x++) small[sy * DCT_SIZE + Math.floor(x / f)]! += gray[y * size + x]!;
  }
  return {
    stats: {
      brightness,
      contrast: Math.sqrt(Math.max(0, sll / n - brightness * brightness)),
      mean_r: sr / n,
      mean_g: sg / n,
      mean_b: sb / n,
      sharpness: lap2 / m - lapMean * lapMean,
    },
    phash: pHash(small),
  };
}
