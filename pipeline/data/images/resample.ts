// Pillow-exact image resize for RGB uint8 HWC pixels: Image.reduce by integer box factors, then
// BILINEAR (antialiased triangle) resampling, in the same fixed-point arithmetic as Pillow's C code
// (libImaging/Reduce.c and Resample.c), so prepared tensors match a Pillow reference byte for byte.
// The loops run as WebAssembly SIMD (resample-wasm/resample.c, about 3× faster than the best
// TypeScript loops); the window and weight tables are computed here.

import { resampleKernels } from './resample-wasm/kernels.ts';

/** Pillow keeps 22 fractional bits in its 8-bit resampling coefficients (32 − 8 − 2). */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;

/** Integer box-reduction factors Pillow's reducing step would use to bring w×h towards tw×th (each ≥ 1). */
export function reductionFactors(width: number, height: number, targetWidth: number, targetHeight: number): [number, number] {
  checkSize('width', width);
  checkSize('height', height);
  checkSize('targetWidth', targetWidth);
  checkSize('targetHeight', targetHeight);
  return [Math.max(1, Math.floor(width / targetWidth)), Math.max(1, Math.floor(height / targetHeight))];
}

/**
 * Resize an RGB uint8 HWC image: box-reduce by reductionFactors (Pillow's Image.reduce), then Pillow's BILINEAR
 * (antialiased triangle) resample to targetWidth × targetHeight, in Pillow's fixed-point arithmetic, so the bytes equal
 * Pillow's `im.reduce((fx, fy)).resize((tw, th), Image.BILINEAR)`. Works for enlargements too (factors 1, then plain
 * bilinear). Writes into `out` when given (length ≥ tw*th*3), else allocates. Returns the output.
 */
export function resizeRgb(
  src: Uint8Array,
  width: number,
  height: number,
  targetWidth: number,
  targetHeight: number,
  out?: Uint8Array,
): Uint8Array {
  const [fx, fy] = reductionFactors(width, height, targetWidth, targetHeight);
  if (!(src instanceof Uint8Array)) throw new Error('resizeRgb: src must be a Uint8Array');
  if (src.length !== width * height * 3) {
    throw new Error(`resizeRgb: src has ${src.length} bytes, expected width*height*3 = ${width * height * 3}`);
  }
  const outLength = targetWidth * targetHeight * 3;
  if (out === undefined) out = new Uint8Array(outLength);
  else if (!(out instanceof Uint8Array) || out.length < outLength) {
    throw new Error(`resizeRgb: out must be a Uint8Array of at least targetWidth*targetHeight*3 = ${outLength} bytes`);
  }
  const reduces = fx > 1 || fy > 1;
  const [w, h] = reduces ? [Math.ceil(width / fx), Math.ceil(height / fy)] : [width, height];
  const horizontal = w !== targetWidth ? coefficients(w, targetWidth) : undefined;
  const vertical = h !== targetHeight ? coefficients(h, targetHeight) : undefined;
  if (!reduces && !horizontal && !vertical) {
    out.set(src);
    return out;
  }
  // Like Pillow, the horizontal pass covers only the source rows the vertical pass reads.
  const firstRow = vertical?.first ?? 0;
  const rows = vertical ? vertical.last - firstRow : h;

  // Linear memory, in 16-byte aligned regions: RGB in, RGBX, reduced RGBX, the two tables, the
  // horizontal pass, the vertical pass, RGB out. Every region has 16 bytes to spare for the
  // kernels' whole-vector loads and stores at row ends.
  const k = resampleKernels();
  const sizes = [
    width * height * 3,
    width * height * 4,
    reduces ? w * h * 4 : 0,
    horizontal ? horizontal.bytes : 0,
    vertical ? vertical.bytes : 0,
    horizontal ? targetWidth * rows * 4 : 0,
    vertical ? targetWidth * targetHeight * 4 : 0,
    outLength,
  ].map((n) => (n === 0 ? 0 : (n + 31) & ~15));
  const { base, heap } = k.scratch(sizes.reduce((a, b) => a + b, 0));
  const at: number[] = [];
  let offset = base;
  for (const size of sizes) {
    at.push(offset);
    offset += size;
  }
  const [rgbIn, rgbx, reduced, hTable, vTable, hOut, vOut, rgbOut] = at as [number, number, number, number, number, number, number, number];

  heap.set(src, rgbIn);
  k.rgb_to_rgbx(rgbIn, width * height, rgbx);
  let image = rgbx;
  if (reduces) {
    reduce(k, rgbx, width, height, fx, fy, reduced, w);
    image = reduced;
  }
  let rowBytes = w * 4;
  let rowOffset = 0;
  if (horizontal) {
    horizontal.copyTo(heap, hTable);
    k.resample_h(image, w, firstRow, rows, targetWidth, ...horizontal.pointers(hTable), horizontal.taps, hOut);
    [image, rowBytes, rowOffset] = [hOut, targetWidth * 4, firstRow];
  }
  if (vertical) {
    vertical.copyTo(heap, vTable);
    k.resample_v(image, rowBytes, rowOffset, targetHeight, ...vertical.pointers(vTable), vertical.taps, vOut);
    image = vOut;
  }
  k.rgbx_to_rgb(image, targetWidth * targetHeight, rgbOut);
  out.set(heap.subarray(rgbOut, rgbOut + outLength));
  return out;
}

function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`resizeRgb: ${name} must be a positive integer, got ${String(value)}`);
  }
}

// --- box reduction (Image.reduce) -------------------------------------------------------------

/**
 * Reduce an RGBX image by fx × fy into an outW-wide RGBX image: the full blocks (2×2 through its own
 * SIMD kernel), then the partial blocks along the right and bottom edges, each averaged over the
 * pixels it really has (Pillow's ImagingReduceCorners).
 */
function reduce(k: ReturnType<typeof resampleKernels>, src: number, width: number, height: number, fx: number, fy: number, dst: number, outW: number): void {
  const fullW = Math.floor(width / fx);
  const fullH = Math.floor(height / fy);
  const restW = width - fullW * fx;
  const restH = height - fullH * fy;
  if (fx === 2 && fy === 2) k.reduce2x2(src, width, height, dst);
  else k.reduce_blocks(src, width, 0, 0, fx, fy, fullW, fullH, 0, 0, boxMultiplier(fx * fy), dst, outW);
  if (restW > 0) k.reduce_blocks(src, width, fullW * fx, 0, restW, fy, 1, fullH, fullW, 0, boxMultiplier(restW * fy), dst, outW);
  if (restH > 0) k.reduce_blocks(src, width, 0, fullH * fy, fx, restH, fullW, 1, 0, fullH, boxMultiplier(fx * restH), dst, outW);
  if (restW > 0 && restH > 0) k.reduce_blocks(src, width, fullW * fx, fullH * fy, restW, restH, 1, 1, fullW, fullH, boxMultiplier(restW * restH), dst, outW);
}

/**
 * Pillow divides a block sum of n pixels by multiplying with 2^32 / (256·n), computed in single
 * precision and truncated, and keeps the top 8 bits; n/2 is added first for rounding. Reproduced as
 * written (for n below 10^5 it equals floor(2^24 / n)).
 */
function boxMultiplier(cells: number): number {
  const dividend = Math.imul(256, cells) >>> 0;
  return Math.trunc(Math.fround(4294967296 / Math.fround(dividend))) | 0;
}

// --- triangle resampling (Image.resize BILINEAR) ----------------------------------------------

/**
 * One axis' fixed-point filter: output i reads `count[i]` source pixels from `start[i]` with the
 * weights at `weights[i * taps]`.
 */
interface Coefficients {
  taps: number;
  start: Int32Array;
  count: Int32Array;
  weights: Int32Array;
  /** First and one-past-last source index any output reads. */
  first: number;
  last: number;
  /** Bytes of the three tables in linear memory. */
  bytes: number;
  /** Write start, count and weights at `at` in linear memory. */
  copyTo(heap: Uint8Array, at: number): void;
  /** Where copyTo put them: start, count, weights. */
  pointers(at: number): [number, number, number];
}

// Images of a dataset share a few sizes, so the tables are computed once per (source, target) pair.
const coefficientCache = new Map<number, Coefficients>();
const COEFFICIENT_CACHE_LIMIT = 64;

function coefficients(inSize: number, outSize: number): Coefficients {
  const key = inSize * 4294967296 + outSize;
  let c = coefficientCache.get(key);
  if (c === undefined) {
    c = computeCoefficients(inSize, outSize);
    if (coefficientCache.size >= COEFFICIENT_CACHE_LIMIT) coefficientCache.clear();
    coefficientCache.set(key, c);
  }
  return c;
}

/**
 * Pillow's precompute_coeffs for the triangle filter (support 1, widened by the scale when
 * shrinking) followed by normalize_coeffs_8bpc. The double-precision steps are written in the same
 * order as the C code: rounding of the window edges and of the weights depends on it.
 */
function computeCoefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = scale < 1 ? 1 : scale;
  const support = filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * taps);
  const raw = new Float64Array(taps);
  const inverse = 1 / filterScale;
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    let lo = Math.trunc(center - support + 0.5);
    if (lo < 0) lo = 0;
    let hi = Math.trunc(center + support + 0.5);
    if (hi > inSize) hi = inSize;
    const n = hi - lo;
    let sum = 0;
    for (let x = 0; x < n; x++) {
      let t = (x + lo - center + 0.5) * inverse;
      if (t < 0) t = -t;
      const w = t < 1 ? 1 - t : 0;
      raw[x] = w;
      sum += w;
    }
    for (let x = 0; x < n; x++) {
      const k = sum !== 0 ? raw[x]! / sum : raw[x]!;
      weights[i * taps + x] = k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    }
    start[i] = lo;
    count[i] = n;
  }
  const first = start[0]!;
  const last = start[outSize - 1]! + count[outSize - 1]!;
  // One Int32Array of the three tables, so copying into linear memory is one set.
  const tables = new Int32Array(2 * outSize + weights.length);
  tables.set(start);
  tables.set(count, outSize);
  tables.set(weights, 2 * outSize);
  const bytes = tables.byteLength;
  return {
    taps,
    start,
    count,
    weights,
    first,
    last,
    bytes,
    copyTo: (heap, at) => heap.set(new Uint8Array(tables.buffer), at),
    pointers: (at) => [at, at + 4 * outSize, at + 8 * outSize],
  };
}
