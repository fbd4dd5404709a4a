// The inner loops of resample.ts (Pillow's Image.reduce and BILINEAR resampling of RGB uint8
// images) and of normalizeToCHW (preprocess.ts) in WebAssembly SIMD, with the same integer arithmetic as Pillow's C code, so the bytes
// are the same. Coefficient tables and box multipliers are computed in TypeScript and passed in.
// Pixels are held as RGBX (4 bytes, X = 0) between the steps: one pixel is then one 32-bit lane
// group, which a SIMD instruction can load, widen and store whole.
// Built by scripts/build-wasm.mjs (clang --target=wasm32 -msimd128); no libc.

#include <stdint.h>
#include <wasm_simd128.h>

#define PRECISION_BITS 22
#define HALF (1 << (PRECISION_BITS - 1))

// n RGB pixels → RGBX. 4 pixels per step through a byte shuffle; the source needs 4 readable bytes
// past its end.
void rgb_to_rgbx(const uint8_t *src, int n, uint8_t *dst) {
  const v128_t spread = wasm_i8x16_const(0, 1, 2, -1, 3, 4, 5, -1, 6, 7, 8, -1, 9, 10, 11, -1);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + 4 * i, wasm_i8x16_swizzle(wasm_v128_load(src + 3 * i), spread));
  for (; i < n; i++) {
    dst[4 * i] = src[3 * i];
    dst[4 * i + 1] = src[3 * i + 1];
    dst[4 * i + 2] = src[3 * i + 2];
    dst[4 * i + 3] = 0;
  }
}

// n RGBX pixels → RGB. Each step writes 16 bytes of which 12 are kept (the next step overwrites
// the rest), so the destination needs 4 writable bytes past its end.
void rgbx_to_rgb(const uint8_t *src, int n, uint8_t *dst) {
  const v128_t pack = wasm_i8x16_const(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  int i = 0;
  for (; i + 4 <= n; i += 4) wasm_v128_store(dst + 3 * i, wasm_i8x16_swizzle(wasm_v128_load(src + 4 * i), pack));
  for (; i < n; i++) {
    dst[3 * i] = src[4 * i];
    dst[3 * i + 1] = src[4 * i + 1];
    dst[3 * i + 2] = src[4 * i + 2];
  }
}

// The full 2×2 blocks of an RGBX image: (a + b + c + d + 2) >> 2 per channel, 8 source pixels of
// two rows per step. Output rows are ceil(width / 2) pixels wide (edge blocks: reduce_blocks).
void reduce2x2(const uint8_t *src, int width, int height, uint8_t *dst) {
  const int fullW = width >> 1, fullH = height >> 1, outW = (width + 1) >> 1;
  const v128_t two = wasm_i16x8_splat(2);
  for (int y = 0; y < fullH; y++) {
    const uint8_t *p0 = src + (2 * y) * width * 4;
    const uint8_t *p1 = p0 + width * 4;
    uint8_t *q = dst + y * outW * 4;
    int x = 0;
    for (; x + 4 <= fullW; x += 4) {
      v128_t a0 = wasm_v128_load(p0 + 8 * x), a1 = wasm_v128_load(p0 + 8 * x + 16);
      v128_t b0 = wasm_v128_load(p1 + 8 * x), b1 = wasm_v128_load(p1 + 8 * x + 16);
      // Column sums of source pixels 0–1, 2–3, 4–5, 6–7 (u16, one pixel per four lanes).
      v128_t s01 = wasm_i16x8_add(wasm_u16x8_extend_low_u8x16(a0), wasm_u16x8_extend_low_u8x16(b0));
      v128_t s23 = wasm_i16x8_add(wasm_u16x8_extend_high_u8x16(a0), wasm_u16x8_extend_high_u8x16(b0));
      v128_t s45 = wasm_i16x8_add(wasm_u16x8_extend_low_u8x16(a1), wasm_u16x8_extend_low_u8x16(b1));
      v128_t s67 = wasm_i16x8_add(wasm_u16x8_extend_high_u8x16(a1), wasm_u16x8_extend_high_u8x16(b1));
      // Left pixel of each pair plus right pixel: output pixels 0–1 and 2–3.
      v128_t o01 = wasm_i16x8_add(wasm_i16x8_shuffle(s01, s23, 0, 1, 2, 3, 8, 9, 10, 11), wasm_i16x8_shuffle(s01, s23, 4, 5, 6, 7, 12, 13, 14, 15));
      v128_t o23 = wasm_i16x8_add(wasm_i16x8_shuffle(s45, s67, 0, 1, 2, 3, 8, 9, 10, 11), wasm_i16x8_shuffle(s45, s67, 4, 5, 6, 7, 12, 13, 14, 15));
      o01 = wasm_u16x8_shr(wasm_i16x8_add(o01, two), 2);
      o23 = wasm_u16x8_shr(wasm_i16x8_add(o23, two), 2);
      wasm_v128_store(q + 4 * x, wasm_u8x16_narrow_i16x8(o01, o23));
    }
    for (; x < fullW; x++) {
      for (int c = 0; c < 4; c++) {
        q[4 * x + c] = (uint8_t)((p0[8 * x + c] + p0[8 * x + 4 + c] + p1[8 * x + c] + p1[8 * x + 4 + c] + 2) >> 2);
      }
    }
  }
}

// A grid of nx × ny boxes of bw × bh source pixels starting at (x0, y0), each written to the
// output pixel (x0 / fx + i, y0 / fy + j) of an outW-wide RGBX image: the sum plus half the cell
// count, times `multiplier`, top 8 of 32 bits (Pillow's division, full and edge blocks alike).
void reduce_blocks(const uint8_t *src, int width, int x0, int y0, int bw, int bh, int nx, int ny, int ox, int oy,
                   uint32_t multiplier, uint8_t *dst, int outW) {
  const uint32_t amend = (uint32_t)(bw * bh) >> 1;
  for (int j = 0; j < ny; j++) {
    for (int i = 0; i < nx; i++) {
      uint32_t s0 = amend, s1 = amend, s2 = amend;
      for (int yy = 0; yy < bh; yy++) {
        const uint8_t *p = src + ((y0 + j * bh + yy) * width + x0 + i * bw) * 4;
        for (int xx = 0; xx < bw; xx++, p += 4) {
          s0 += p[0];
          s1 += p[1];
          s2 += p[2];
        }
      }
      uint8_t *q = dst + ((oy + j) * outW + ox + i) * 4;
      q[0] = (uint8_t)((s0 * multiplier) >> 24);
      q[1] = (uint8_t)((s1 * multiplier) >> 24);
      q[2] = (uint8_t)((s2 * multiplier) >> 24);
      q[3] = 0;
    }
  }
}

// Clamp four 22-bit fixed-point sums to bytes (Pillow's clip8), packed in the low 32 bits.
static inline v128_t clip8x4(v128_t acc) {
  v128_t v = wasm_i32x4_shr(acc, PRECISION_BITS);
  v128_t h = wasm_i16x8_narrow_i32x4(v, v);
  return wasm_u8x16_narrow_i16x8(h, h);
}

// Horizontal pass over `rows` RGBX rows from `firstRow`: one i32x4 per output pixel, one load,
// widen, multiply and add per tap for all channels. The source needs 4 readable bytes past its end.
void resample_h(const uint8_t *src, int srcWidth, int firstRow, int rows, int outWidth, const int32_t *start,
                const int32_t *count, const int32_t *weights, int taps, uint8_t *dst) {
  const v128_t half = wasm_i32x4_splat(HALF);
  for (int y = 0; y < rows; y++) {
    const uint8_t *row = src + (firstRow + y) * srcWidth * 4;
    uint8_t *q = dst + y * outWidth * 4;
    for (int x = 0; x < outWidth; x++) {
      const uint8_t *p = row + start[x] * 4;
      const int32_t *k = weights + x * taps;
      const int n = count[x];
      v128_t acc = half;
      for (int t = 0; t < n; t++) {
        v128_t v = wasm_u32x4_extend_low_u16x8(wasm_u16x8_load8x8(p + 4 * t));
        acc = wasm_i32x4_add(acc, wasm_i32x4_mul(v, wasm_i32x4_splat(k[t])));
      }
      wasm_v128_store32_lane(q + 4 * x, clip8x4(acc), 0);
    }
  }
}

// Vertical pass over rows of rowBytes bytes (any interleaving), 16 bytes at a time with four i32x4
// accumulators. Source rows are numbered from `rowOffset`.
void resample_v(const uint8_t *src, int rowBytes, int rowOffset, int outHeight, const int32_t *start, const int32_t *count,
                const int32_t *weights, int taps, uint8_t *dst) {
  const v128_t half = wasm_i32x4_splat(HALF);
  for (int y = 0; y < outHeight; y++) {
    const uint8_t *base = src + (start[y] - rowOffset) * rowBytes;
    const int32_t *k = weights + y * taps;
    const int n = count[y];
    uint8_t *q = dst + y * rowBytes;
    int i = 0;
    for (; i + 16 <= rowBytes; i += 16) {
      v128_t a0 = half, a1 = half, a2 = half, a3 = half;
      const uint8_t *p = base + i;
      for (int t = 0; t < n; t++, p += rowBytes) {
        v128_t v = wasm_v128_load(p);
        v128_t w = wasm_i32x4_splat(k[t]);
        v128_t lo = wasm_u16x8_extend_low_u8x16(v), hi = wasm_u16x8_extend_high_u8x16(v);
        a0 = wasm_i32x4_add(a0, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(lo), w));
        a1 = wasm_i32x4_add(a1, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(lo), w));
        a2 = wasm_i32x4_add(a2, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(hi), w));
        a3 = wasm_i32x4_add(a3, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(hi), w));
      }
      v128_t lo16 = wasm_i16x8_narrow_i32x4(wasm_i32x4_shr(a0, PRECISION_BITS), wasm_i32x4_shr(a1, PRECISION_BITS));
      v128_t hi16 = wasm_i16x8_narrow_i32x4(wasm_i32x4_shr(a2, PRECISION_BITS), wasm_i32x4_shr(a3, PRECISION_BITS));
      wasm_v128_store(q + i, wasm_u8x16_narrow_i16x8(lo16, hi16));
    }
    for (; i < rowBytes; i++) {
      int32_t s = HALF;
      const uint8_t *p = base + i;
      for (int t = 0; t < n; t++, p += rowBytes) s += (int32_t)p[0] * k[t];
      s >>= PRECISION_BITS;
      q[i] = (uint8_t)(s < 0 ? 0 : s > 255 ? 255 : s);
    }
  }
}

// uint8 HWC RGB → float32 CHW through one 256-entry table per channel (tables: 3 × 256 floats,
// computed by the caller, so the values are exactly the caller's). The three planes of n pixels
// each follow one another at out.
void normalize_chw(const uint8_t *rgb, int n, const float *tables, float *out) {
  float *r = out, *g = out + n, *b = out + 2 * n;
  const float *t0 = tables, *t1 = tables + 256, *t2 = tables + 512;
  for (int p = 0; p < n; p++) {
    r[p] = t0[rgb[3 * p]];
    g[p] = t1[rgb[3 * p + 1]];
    b[p] = t2[rgb[3 * p + 2]];
  }
}
