// A plain TypeScript transcription of Pillow's Image.reduce and BILINEAR resampling for RGB uint8
// images (libImaging/Reduce.c, Resample.c), written for reading, not speed: the oracle that the
// WebAssembly kernels behind resizeRgb are compared with, byte for byte, on sizes Pillow itself is
// not installed to check (test/data/resample.test.ts checks both against Pillow where it is).

const PRECISION_BITS = 22;
const ONE = 1 << PRECISION_BITS;
const HALF = 1 << (PRECISION_BITS - 1);

/** Pillow divides a block sum by multiplying with floor(2^32 / (256·n)), computed in single precision. */
function boxMultiplier(cells: number): number {
  return Math.trunc(Math.fround(4294967296 / Math.fround(256 * cells)));
}

/** Image.reduce((fx, fy)): each block, partial ones at the right and bottom edges included, averaged. */
function reduce(src: Uint8Array, width: number, height: number, fx: number, fy: number): Uint8Array {
  const outW = Math.ceil(width / fx);
  const outH = Math.ceil(height / fy);
  const dst = new Uint8Array(outW * outH * 3);
  for (let by = 0; by < outH; by++) {
    for (let bx = 0; bx < outW; bx++) {
      const bw = Math.min(fx, width - bx * fx);
      const bh = Math.min(fy, height - by * fy);
      const cells = bw * bh;
      for (let c = 0; c < 3; c++) {
        let sum = cells >> 1;
        for (let y = by * fy; y < by * fy + bh; y++) for (let x = bx * fx; x < bx * fx + bw; x++) sum += src[(y * width + x) * 3 + c]!;
        // 2×2 blocks: Pillow shifts instead of multiplying (same result for these sums).
        dst[(by * outW + bx) * 3 + c] = cells === 4 && bw === 2 ? sum >> 2 : Number((BigInt(sum) * BigInt(boxMultiplier(cells))) >> 24n) & 255;
      }
    }
  }
  return dst;
}

interface Window {
  start: number;
  weights: number[];
}

/** precompute_coeffs (triangle filter, support widened by the scale when shrinking) and normalize_coeffs_8bpc. */
function windows(inSize: number, outSize: number): Window[] {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filterScale;
  const out: Window[] = [];
  for (let i = 0; i < outSize; i++) {
    const center = (i + 0.5) * scale;
    const lo = Math.max(0, Math.trunc(center - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(center + support + 0.5));
    const raw: number[] = [];
    for (let x = lo; x < hi; x++) raw.push(Math.max(0, 1 - Math.abs((x - center + 0.5) / filterScale)));
    const sum = raw.reduce((a, b) => a + b, 0);
    const weights = raw.map((w) => {
      const k = sum !== 0 ? w / sum : w;
      return k < 0 ? Math.trunc(-0.5 + k * ONE) : Math.trunc(0.5 + k * ONE);
    });
    out.push({ start: lo, weights });
  }
  return out;
}

function clip8(sum: number): number {
  const v = sum >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function horizontal(src: Uint8Array, width: number, height: number, outW: number): Uint8Array {
  const ws = windows(width, outW);
  const dst = new Uint8Array(outW * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < outW; x++) {
      const { start, weights } = ws[x]!;
      for (let c = 0; c < 3; c++) {
        let s = HALF;
        weights.forEach((k, t) => (s = (s + Math.imul(src[(y * width + start + t) * 3 + c]!, k)) | 0));
        dst[(y * outW + x) * 3 + c] = clip8(s);
      }
    }
  }
  return dst;
}

function vertical(src: Uint8Array, width: number, height: number, outH: number): Uint8Array {
  const ws = windows(height, outH);
  const dst = new Uint8Array(width * outH * 3);
  for (let y = 0; y < outH; y++) {
    const { start, weights } = ws[y]!;
    for (let i = 0; i < width * 3; i++) {
      let s = HALF;
      weights.forEach((k, t) => (s = (s + Math.imul(src[(start + t) * width * 3 + i]!, k)) | 0));
      dst[y * width * 3 + i] = clip8(s);
    }
  }
  return dst;
}

/** Pillow's `im.reduce((fx, fy)).resize((tw, th), Image.BILINEAR)` with fx = max(1, ⌊w/tw⌋), fy = max(1, ⌊h/th⌋). */
export function resizeRgbReference(src: Uint8Array, width: number, height: number, tw: number, th: number): Uint8Array {
  const fx = Math.max(1, Math.floor(width / tw));
  const fy = Math.max(1, Math.floor(height / th));
  let img = fx > 1 || fy > 1 ? reduce(src, width, height, fx, fy) : src;
  let w = Math.ceil(width / fx);
  const h = Math.ceil(height / fy);
  if (w !== tw) {
    img = horizontal(img, w, h, tw);
    w = tw;
  }
  if (h !== th) img = vertical(img, w, h, th);
  return img === src ? new Uint8Array(src) : img;
}
