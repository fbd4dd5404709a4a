// Pillow-exact image resize for RGB uint8 HWC pixels: Image.reduce by integer box factors, then
// BILINEAR (antialiased triangle) resampling, in the same fixed-point arithmetic as Pillow's C code
// (libImaging/Reduce.c and Resample.c), so prepared tensors match a Pillow reference byte for byte.

/** Pillow keeps 22 fractional bits in its 8-bit resampling coefficients (32 − 8 − 2). */
const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

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
  // Buffers and plain Uint8Arrays have different hidden classes; one kind keeps the loops monomorphic.
  const input = plain(src);
  const output = plain(out);

  // From the reduction on, a pixel is one 32-bit word (R | G << 8 | B << 16), as in Pillow's own
  // image memory: a third of the loads and stores of separate bytes.
  const [w, h] = fx > 1 || fy > 1 ? [Math.ceil(width / fx), Math.ceil(height / fy)] : [width, height];
  const needHorizontal = w !== targetWidth;
  const needVertical = h !== targetHeight;
  if (!needHorizontal && !needVertical && fx === 1 && fy === 1) {
    output.set(input);
    return out;
  }
  const image = packed(0, w * h);
  if (fx === 2 && fy === 2) reduce2x2(input, width, height, image);
  else if (fx > 1 || fy > 1) reduceBox(input, width, height, fx, fy, image);
  else packRgb(input, w * h, image);
  if (!needHorizontal && !needVertical) {
    unpackRgb(image, w * h, output);
    return out;
  }
  const vertical = needVertical ? coefficients(h, targetHeight) : undefined;
  let rows = image;
  let rowOffset = 0;
  if (needHorizontal) {
    // Like Pillow, the horizontal pass covers only the source rows the vertical pass reads.
    rowOffset = vertical?.first ?? 0;
    const count = vertical ? vertical.last - rowOffset : h;
    rows = packed(1, targetWidth * count);
    resampleHorizontal(image, w, coefficients(w, targetWidth), rowOffset, count, rows);
  }
  if (vertical) resampleVertical(rows, targetWidth, vertical, rowOffset, targetHeight, output);
  else unpackRgb(rows, targetWidth * targetHeight, output);
  return out;
}

function checkSize(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new Error(`resizeRgb: ${name} must be a positive integer, got ${String(value)}`);
  }
}

function plain(a: Uint8Array): Uint8Array {
  return a.constructor === Uint8Array ? a : new Uint8Array(a.buffer, a.byteOffset, a.length);
}

// Module-level work buffers of packed pixels, grown on demand: the reduced image, and the image
// between the two resampling passes.
const buffers = [new Uint32Array(0), new Uint32Array(0)];

function packed(slot: 0 | 1, length: number): Uint32Array {
  let buffer = buffers[slot]!;
  if (buffer.length < length) {
    buffer = new Uint32Array(length);
    buffers[slot] = buffer;
  }
  return buffer;
}

function packRgb(src: Uint8Array, pixels: number, dst: Uint32Array): void {
  let i = 0;
  if (LITTLE_ENDIAN && (src.byteOffset & 3) === 0) {
    // Four pixels are three words: re-cut them at pixel boundaries.
    const words = new Uint32Array(src.buffer, src.byteOffset, src.length >> 2);
    for (let j = 0; i + 4 <= pixels; i += 4, j += 3) {
      const a = words[j]!;
      const b = words[j + 1]!;
      const c = words[j + 2]!;
      dst[i] = a & 0xffffff;
      dst[i + 1] = (a >>> 24) | ((b & 0xffff) << 8);
      dst[i + 2] = (b >>> 16) | ((c & 0xff) << 16);
      dst[i + 3] = c >>> 8;
    }
  }
  for (let p = i * 3; i < pixels; i++, p += 3) dst[i] = src[p]! | (src[p + 1]! << 8) | (src[p + 2]! << 16);
}

function unpackRgb(src: Uint32Array, pixels: number, dst: Uint8Array): void {
  for (let i = 0, q = 0; i < pixels; i++, q += 3) {
    const v = src[i]!;
    dst[q] = v;
    dst[q + 1] = v >>> 8;
    dst[q + 2] = v >>> 16;
  }
}

// --- box reduction (Image.reduce) -------------------------------------------------------------

/**
 * Pillow divides a block sum of n pixels by multiplying with 2^32 / (256·n), computed in single
 * precision and truncated, and keeps the top 8 bits; n/2 is added first for rounding. Reproduced as
 * written (for n below 10^5 it equals floor(2^24 / n)).
 */
function boxMultiplier(cells: number): number {
  const dividend = Math.imul(256, cells) >>> 0;
  return Math.trunc(Math.fround(4294967296 / Math.fround(dividend))) | 0;
}

const LANES = 0x00ff00ff;

/** The 2×2 case (640×480 → 224×224 and most camera sizes): (sum + 2) >> 2, edges as partial blocks. */
function reduce2x2(src: Uint8Array, width: number, height: number, dst: Uint32Array): void {
  const fullW = width >> 1;
  const fullH = height >> 1;
  const rowBytes = width * 3;
  const outRow = (width + 1) >> 1;
  // Four RGB pixels are three 32-bit words. When every row starts on a word boundary, two rows are
  // added a word at a time in 16-bit lanes (even and odd bytes apart), and the pairs of columns
  // are summed from the lanes: a third of the loads, and no sum can spill into the next lane.
  const words = LITTLE_ENDIAN && (src.byteOffset & 3) === 0 && (width & 3) === 0
    ? new Uint32Array(src.buffer, src.byteOffset, src.length >> 2)
    : undefined;
  for (let y = 0; y < fullH; y++) {
    let q = y * outRow;
    let x = 0;
    if (words !== undefined) {
      const groups = width >> 2;
      let i = (2 * y * rowBytes) >> 2;
      let j = i + (rowBytes >> 2);
      for (let g = 0; g < groups; g++, i += 3, j += 3) {
        const a0 = words[i]!;
        const a1 = words[i + 1]!;
        const a2 = words[i + 2]!;
        const b0 = words[j]!;
        const b1 = words[j + 1]!;
        const b2 = words[j + 2]!;
        // Lanes of lo* hold the column sums of bytes 0 and 2 of a word, hi* of bytes 1 and 3.
        const lo0 = (a0 & LANES) + (b0 & LANES);
        const hi0 = ((a0 >>> 8) & LANES) + ((b0 >>> 8) & LANES);
        const lo1 = (a1 & LANES) + (b1 & LANES);
        const hi1 = ((a1 >>> 8) & LANES) + ((b1 >>> 8) & LANES);
        const lo2 = (a2 & LANES) + (b2 & LANES);
        const hi2 = ((a2 >>> 8) & LANES) + ((b2 >>> 8) & LANES);
        // Bytes 0–2 and 3–5 make the first output pixel, bytes 6–8 and 9–11 the second. Red and
        // blue of a pixel are added in two lanes at once ((x + 2) >> 2 for both), green alone;
        // the mask drops the bits a lane shifts into its neighbour.
        const rb0 = lo0 + ((hi0 >>> 16) | (hi1 << 16)) + 0x20002;
        const rb1 = ((lo1 >>> 16) | (lo2 << 16)) + hi2 + 0x20002;
        dst[q++] = ((rb0 >>> 2) & LANES) | ((((hi0 & 0xffff) + (lo1 & 0xffff) + 2) >> 2) << 8);
        dst[q++] = ((rb1 >>> 2) & LANES) | ((((hi1 >>> 16) + (lo2 >>> 16) + 2) >> 2) << 8);
      }
      x = groups * 2;
    }
    let p0 = 2 * y * rowBytes + x * 6;
    let p1 = p0 + rowBytes;
    for (; x < fullW; x++) {
      dst[q++] =
        ((src[p0]! + src[p0 + 3]! + src[p1]! + src[p1 + 3]! + 2) >> 2) |
        (((src[p0 + 1]! + src[p0 + 4]! + src[p1 + 1]! + src[p1 + 4]! + 2) >> 2) << 8) |
        (((src[p0 + 2]! + src[p0 + 5]! + src[p1 + 2]! + src[p1 + 5]! + 2) >> 2) << 16);
      p0 += 6;
      p1 += 6;
    }
  }
  if ((width & 1) !== 0 || (height & 1) !== 0) reduceEdges(src, width, height, 2, 2, dst);
}

/** Any factors: full blocks, then the partial blocks along the right and bottom edges. */
function reduceBox(src: Uint8Array, width: number, height: number, fx: number, fy: number, dst: Uint32Array): void {
  const fullW = Math.floor(width / fx);
  const fullH = Math.floor(height / fy);
  const outW = Math.ceil(width / fx);
  const rowBytes = width * 3;
  const cells = fx * fy;
  const amend = cells >> 1;
  const multiplier = boxMultiplier(cells);
  const blockBytes = fx * 3;
  for (let y = 0; y < fullH; y++) {
    const top = y * fy * rowBytes;
    let q = y * outW;
    for (let x = 0; x < fullW; x++) {
      const left = top + x * blockBytes;
      let s0 = amend;
      let s1 = amend;
      let s2 = amend;
      for (let yy = 0; yy < fy; yy++) {
        const start = left + yy * rowBytes;
        const end = start + blockBytes;
        for (let p = start; p < end; p += 3) {
          s0 += src[p]!;
          s1 += src[p + 1]!;
          s2 += src[p + 2]!;
        }
      }
      dst[q++] = (Math.imul(s0, multiplier) >>> 24) | ((Math.imul(s1, multiplier) >>> 24) << 8) | ((Math.imul(s2, multiplier) >>> 24) << 16);
    }
  }
  reduceEdges(src, width, height, fx, fy, dst);
}

/** Pillow's ImagingReduceCorners: each partial block is averaged over the cells it really has. */
function reduceEdges(src: Uint8Array, width: number, height: number, fx: number, fy: number, dst: Uint32Array): void {
  const fullW = Math.floor(width / fx);
  const fullH = Math.floor(height / fy);
  const outW = Math.ceil(width / fx);
  const restW = width - fullW * fx;
  const restH = height - fullH * fy;
  if (restW > 0) {
    for (let y = 0; y < fullH; y++) averageBlock(src, width, fullW * fx, y * fy, restW, fy, dst, y * outW + fullW);
  }
  if (restH > 0) {
    for (let x = 0; x < fullW; x++) averageBlock(src, width, x * fx, fullH * fy, fx, restH, dst, fullH * outW + x);
  }
  if (restW > 0 && restH > 0) {
    averageBlock(src, width, fullW * fx, fullH * fy, restW, restH, dst, fullH * outW + fullW);
  }
}

function averageBlock(
  src: Uint8Array,
  width: number,
  x0: number,
  y0: number,
  bw: number,
  bh: number,
  dst: Uint32Array,
  q: number,
): void {
  const cells = bw * bh;
  const multiplier = boxMultiplier(cells);
  let s0 = cells >> 1;
  let s1 = s0;
  let s2 = s0;
  for (let y = y0; y < y0 + bh; y++) {
    const start = (y * width + x0) * 3;
    const end = start + bw * 3;
    for (let p = start; p < end; p += 3) {
      s0 += src[p]!;
      s1 += src[p + 1]!;
      s2 += src[p + 2]!;
    }
  }
  dst[q] = (Math.imul(s0, multiplier) >>> 24) | ((Math.imul(s1, multiplier) >>> 24) << 8) | ((Math.imul(s2, multiplier) >>> 24) << 16);
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
  return { taps, start, count, weights, first, last };
}

/** Pillow's clip8: the top bits of a fixed-point sum, clamped to a byte. */
function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

// The unrolled loops below skip clip8's clamp. Triangle weights are never negative, and each is
// rounded by at most ½, so a sum is at most 2^21 + 255·(2^22 + taps/2) < 256·2^22: the top bits are
// always 0–255, and `| 0` only tells the compiler the sum is a 32-bit integer (it is below 2^30).

/** Horizontal pass over `rows` packed source rows from `firstRow`, into packed rows of c.start.length pixels. */
function resampleHorizontal(
  src: Uint32Array,
  srcWidth: number,
  c: Coefficients,
  firstRow: number,
  rows: number,
  dst: Uint32Array,
): void {
  const { taps, start, count, weights } = c;
  const outWidth = start.length;
  // Column by column: a column's window, tap count and weights are loaded once for all rows, and
  // the common counts (what follows a box reduction, a shrink by less than about 2×, or an
  // enlargement) run unrolled; wider windows take the general loop.
  for (let x = 0, k = 0; x < outWidth; x++, k += taps) {
    const from = firstRow * srcWidth + start[x]!;
    const n = count[x]!;
    if (n === 3) {
      const w0 = weights[k]!;
      const w1 = weights[k + 1]!;
      const w2 = weights[k + 2]!;
      for (let y = 0, p = from, q = x; y < rows; y++, p += srcWidth, q += outWidth) {
        const a = src[p]!;
        const b = src[p + 1]!;
        const d = src[p + 2]!;
        const r = HALF + Math.imul(a & 255, w0) + Math.imul(b & 255, w1) + Math.imul(d & 255, w2);
        const g = HALF + Math.imul((a >>> 8) & 255, w0) + Math.imul((b >>> 8) & 255, w1) + Math.imul((d >>> 8) & 255, w2);
        const bl = HALF + Math.imul(a >>> 16, w0) + Math.imul(b >>> 16, w1) + Math.imul(d >>> 16, w2);
        dst[q] = ((r | 0) >> PRECISION_BITS) | (((g | 0) >> PRECISION_BITS) << 8) | (((bl | 0) >> PRECISION_BITS) << 16);
      }
    } else if (n === 2) {
      const w0 = weights[k]!;
      const w1 = weights[k + 1]!;
      for (let y = 0, p = from, q = x; y < rows; y++, p += srcWidth, q += outWidth) {
        const a = src[p]!;
        const b = src[p + 1]!;
        const r = HALF + Math.imul(a & 255, w0) + Math.imul(b & 255, w1);
        const g = HALF + Math.imul((a >>> 8) & 255, w0) + Math.imul((b >>> 8) & 255, w1);
        const bl = HALF + Math.imul(a >>> 16, w0) + Math.imul(b >>> 16, w1);
        dst[q] = ((r | 0) >> PRECISION_BITS) | (((g | 0) >> PRECISION_BITS) << 8) | (((bl | 0) >> PRECISION_BITS) << 16);
      }
    } else if (n === 4) {
      const w0 = weights[k]!;
      const w1 = weights[k + 1]!;
      const w2 = weights[k + 2]!;
      const w3 = weights[k + 3]!;
      for (let y = 0, p = from, q = x; y < rows; y++, p += srcWidth, q += outWidth) {
        const a = src[p]!;
        const b = src[p + 1]!;
        const d = src[p + 2]!;
        const e = src[p + 3]!;
        const r = HALF + Math.imul(a & 255, w0) + Math.imul(b & 255, w1) + Math.imul(d & 255, w2) + Math.imul(e & 255, w3);
        const g =
          HALF +
          Math.imul((a >>> 8) & 255, w0) +
          Math.imul((b >>> 8) & 255, w1) +
          Math.imul((d >>> 8) & 255, w2) +
          Math.imul((e >>> 8) & 255, w3);
        const bl = HALF + Math.imul(a >>> 16, w0) + Math.imul(b >>> 16, w1) + Math.imul(d >>> 16, w2) + Math.imul(e >>> 16, w3);
        dst[q] = ((r | 0) >> PRECISION_BITS) | (((g | 0) >> PRECISION_BITS) << 8) | (((bl | 0) >> PRECISION_BITS) << 16);
      }
    } else {
      for (let y = 0, q = x; y < rows; y++, q += outWidth) {
        let p = from + y * srcWidth;
        let r = HALF;
        let g = HALF;
        let b = HALF;
        for (let t = 0; t < n; t++, p++) {
          const v = src[p]!;
          const w = weights[k + t]!;
          r += Math.imul(v & 255, w);
          g += Math.imul((v >>> 8) & 255, w);
          b += Math.imul(v >>> 16, w);
        }
        dst[q] = clip8(r) | (clip8(g) << 8) | (clip8(b) << 16);
      }
    }
  }
}

/** Vertical pass from packed pixels into RGB bytes; source rows are numbered from `rowOffset`. */
function resampleVertical(
  src: Uint32Array,
  width: number,
  c: Coefficients,
  rowOffset: number,
  outHeight: number,
  dst: Uint8Array,
): void {
  const { taps, start, count, weights } = c;
  let q = 0;
  for (let y = 0; y < outHeight; y++) {
    const n = count[y]!;
    const k = y * taps;
    const p0 = (start[y]! - rowOffset) * width;
    const p1 = p0 + width;
    const p2 = p1 + width;
    // A row's taps are fixed, so the common counts run as straight sums along whole rows.
    if (n === 2) {
      const w0 = weights[k]!;
      const w1 = weights[k + 1]!;
      for (let i = 0; i < width; i++) {
        const a = src[p0 + i]!;
        const b = src[p1 + i]!;
        dst[q++] = ((HALF + Math.imul(a & 255, w0) + Math.imul(b & 255, w1)) | 0) >> PRECISION_BITS;
        dst[q++] = ((HALF + Math.imul((a >>> 8) & 255, w0) + Math.imul((b >>> 8) & 255, w1)) | 0) >> PRECISION_BITS;
        dst[q++] = ((HALF + Math.imul(a >>> 16, w0) + Math.imul(b >>> 16, w1)) | 0) >> PRECISION_BITS;
      }
    } else if (n === 3) {
      const w0 = weights[k]!;
      const w1 = weights[k + 1]!;
      const w2 = weights[k + 2]!;
      for (let i = 0; i < width; i++) {
        const a = src[p0 + i]!;
        const b = src[p1 + i]!;
        const d = src[p2 + i]!;
        const r = HALF + Math.imul(a & 255, w0) + Math.imul(b & 255, w1) + Math.imul(d & 255, w2);
        const g = HALF + Math.imul((a >>> 8) & 255, w0) + Math.imul((b >>> 8) & 255, w1) + Math.imul((d >>> 8) & 255, w2);
        const bl = HALF + Math.imul(a >>> 16, w0) + Math.imul(b >>> 16, w1) + Math.imul(d >>> 16, w2);
        dst[q++] = (r | 0) >> PRECISION_BITS;
        dst[q++] = (g | 0) >> PRECISION_BITS;
        dst[q++] = (bl | 0) >> PRECISION_BITS;
      }
    } else if (n === 4) {
      const w0 = weights[k]!;
      const w1 = weights[k + 1]!;
      const w2 = weights[k + 2]!;
      const w3 = weights[k + 3]!;
      const p3 = p2 + width;
      for (let i = 0; i < width; i++) {
        const a = src[p0 + i]!;
        const b = src[p1 + i]!;
        const d = src[p2 + i]!;
        const e = src[p3 + i]!;
        const r = HALF + Math.imul(a & 255, w0) + Math.imul(b & 255, w1) + Math.imul(d & 255, w2) + Math.imul(e & 255, w3);
        const g =
          HALF +
          Math.imul((a >>> 8) & 255, w0) +
          Math.imul((b >>> 8) & 255, w1) +
          Math.imul((d >>> 8) & 255, w2) +
          Math.imul((e >>> 8) & 255, w3);
        const bl = HALF + Math.imul(a >>> 16, w0) + Math.imul(b >>> 16, w1) + Math.imul(d >>> 16, w2) + Math.imul(e >>> 16, w3);
        dst[q++] = (r | 0) >> PRECISION_BITS;
        dst[q++] = (g | 0) >> PRECISION_BITS;
        dst[q++] = (bl | 0) >> PRECISION_BITS;
      }
    } else {
      for (let i = 0; i < width; i++) {
        let r = HALF;
        let g = HALF;
        let b = HALF;
        for (let t = 0, p = p0 + i; t < n; t++, p += width) {
          const v = src[p]!;
          const w = weights[k + t]!;
          r += Math.imul(v & 255, w);
          g += Math.imul((v >>> 8) & 255, w);
          b += Math.imul(v >>> 16, w);
        }
        dst[q++] = clip8(r);
        dst[q++] = clip8(g);
        dst[q++] = clip8(b);
      }
    }
  }
}
