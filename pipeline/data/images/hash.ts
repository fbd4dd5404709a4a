// Perceptual hashes (8×8 DCT pHash of a 32×32 grayscale for candidate search, 16×16 of a 64×64 to
// confirm a match) and the per-image statistics of the
// reference profile (brightness, contrast, colour means, Laplacian sharpness), all computed from
// one small decoded thumbnail.

/** Cosine table for the `keep` lowest DCT-II frequencies over `n` samples. */
function cosTable(keep: number, n: number): Float64Array {
  const t = new Float64Array(keep * n);
  for (let u = 0; u < keep; u++) for (let x = 0; x < n; x++) t[u * n + x] = Math.cos(((2 * x + 1) * u * Math.PI) / (2 * n));
  return t;
}

const TABLES = new Map<string, Float64Array>();

/**
 * DCT pHash of an n×n grayscale (row-major): the keep×keep lowest frequencies, each bit set when
 * the coefficient is above the median of the AC coefficients. keep² bits as hex.
 */
export function dctHash(gray: ArrayLike<number>, n: number, keep: number): string {
  const key = `${keep}x${n}`;
  let cos = TABLES.get(key);
  if (!cos) TABLES.set(key, (cos = cosTable(keep, n)));
  const rows = new Float64Array(keep * n);
  for (let u = 0; u < keep; u++) {
    for (let y = 0; y < n; y++) {
      const c = cos[u * n + y]!;
      for (let x = 0; x < n; x++) rows[u * n + x]! += c * gray[y * n + x]!;
    }
  }
  const coeffs = new Float64Array(keep * keep);
  for (let u = 0; u < keep; u++) {
    for (let v = 0; v < keep; v++) {
      let s = 0;
      for (let x = 0; x < n; x++) s += rows[u * n + x]! * cos[v * n + x]!;
      coeffs[u * keep + v] = s;
    }
  }
  // Median of the AC coefficients (the DC term only says how bright the image is).
  const ac = Array.from(coeffs.subarray(1)).sort((a, b) => a - b);
  const median = ac[Math.floor(ac.length / 2)]!;
  // Bytes → hex in one go: a string built with += is a rope of one node per digit, ~1 KB per hash
  // while it sits in a per-image record.
  const bytes = Buffer.alloc(coeffs.length / 8);
  for (let k = 0; k < coeffs.length; k++) if (coeffs[k]! > median) bytes[k >> 3]! |= 0x80 >> (k & 7);
  return bytes.toString('hex');
}

/** The classic 64-bit pHash: 8×8 lowest frequencies of a 32×32 grayscale. */
export function pHash(gray32: ArrayLike<number>): string {
  return dctHash(gray32, 32, 8);
}

const POPCOUNT4 = [0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4];

/** Hex hashes of one length as big-endian 32-bit words: hash i is words[i*per … i*per+per). */
export interface PackedHashes {
  readonly words: Uint32Array;
  /** Words per hash; the last is zero-padded when the digits are not a multiple of 8. */
  readonly per: number;
  /** Hex digits per hash. */
  readonly digits: number;
  readonly count: number;
}

/**
 * Pack hex hashes (all of one length) into one typed array: 4 bytes per 8 digits instead of a
 * string each, and numbers to compare instead of slices. Digits are read by char code so packing
 * 100,000 hashes makes no temporary strings.
 */
export function packHexHashes(hashes: readonly string[]): PackedHashes {
  const digits = hashes[0]?.length ?? 0;
  const per = Math.ceil(digits / 8);
  const words = new Uint32Array(hashes.length * per);
  for (let i = 0; i < hashes.length; i++) {
    const h = hashes[i]!;
    if (h.length !== digits) throw new Error(`hash ${i} has ${h.length} hex digits, hash 0 has ${digits}`);
    for (let k = 0; k < digits; k++) {
      const c = h.charCodeAt(k);
      // 0-9, a-f, A-F
      const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
      if (v < 0) throw new Error(`hash ${i} is not hex: ${JSON.stringify(h[k])} at digit ${k}`);
      words[i * per + (k >> 3)]! |= v << (28 - 4 * (k & 7));
    }
  }
  return { words, per, digits, count: hashes.length };
}

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
export function thumbnailStats(rgb: Uint8Array, size = THUMB_SIZE): { stats: ImageStats; phash: string; phash256: string } {
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
  const small = boxDown(gray, size, 32);
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
    phash256: dctHash(boxDown(gray, size, 64), 64, 16),
  };
}

/** Box-average a size² image down to n² (size a multiple of n). */
function boxDown(gray: Float64Array, size: number, n: number): Float64Array {
  const f = size / n;
  const out = new Float64Array(n * n);
  for (let y = 0; y < size; y++) {
    const sy = Math.floor(y / f);
    for (let x = 0; x < size; x++) out[sy * n + Math.floor(x / f)]! += gray[y * size + x]!;
  }
  return out;
}
