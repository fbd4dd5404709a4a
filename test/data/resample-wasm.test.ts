// The WebAssembly kernels behind resizeRgb: built from the committed C source, and byte for byte
// the plain TypeScript transcription of Pillow's arithmetic on random sizes, factors and contents.

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { SOURCE_SHA256 } from '../../pipeline/data/images/resample-wasm/module.ts';
import { resizeRgb } from '../../pipeline/data/images/resample.ts';
import { resizeRgbReference } from '../support/resample-reference.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** Noise in some rows, gradients and flat runs in others: exercises rounding and clamping alike. */
function image(w: number, h: number, seed: number): Uint8Array {
  const r = rng(seed);
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const kind = y % 5;
    for (let x = 0; x < w * 3; x++) out[y * w * 3 + x] = kind < 2 ? (r() * 256) | 0 : kind === 2 ? (x * 7 + y) & 255 : kind === 3 ? 255 : 0;
  }
  return out;
}

describe('resample WebAssembly kernels', () => {
  it('are built from the committed resample.c (else run npm run build:wasm)', async () => {
    const source = await readFile(new URL('../../pipeline/data/images/resample-wasm/resample.c', import.meta.url));
    expect(createHash('sha256').update(source).digest('hex')).toBe(SOURCE_SHA256);
  });

  it('match the reference on 60 random size pairs: reductions by 1–9 per axis, enlargements, odd edges', () => {
    const r = rng(42);
    for (let k = 0; k < 60; k++) {
      const w = 1 + Math.floor(r() * 700);
      const h = 1 + Math.floor(r() * 500);
      // Mostly reductions (the common case), some enlargements, some identities on one axis.
      const tw = k % 7 === 0 ? w : Math.max(1, Math.floor(w / (0.5 + r() * 8)));
      const th = k % 11 === 0 ? h : Math.max(1, Math.floor(h / (0.5 + r() * 8)));
      const src = image(w, h, k + 1);
      const got = resizeRgb(src, w, h, tw, th);
      const want = resizeRgbReference(src, w, h, tw, th);
      expect(got.length, `${w}×${h} → ${tw}×${th}`).toBe(want.length);
      let first = -1;
      for (let i = 0; i < want.length && first < 0; i++) if (got[i] !== want[i]) first = i;
      expect(first, `${w}×${h} → ${tw}×${th}: first differing byte`).toBe(-1);
    }
  });

  it('keep working when a larger image grows their memory after a smaller one', () => {
    const small = image(64, 48, 1);
    const first = resizeRgb(small, 64, 48, 32, 24);
    const big = image(2400, 1800, 2);
    expect(resizeRgb(big, 2400, 1800, 224, 224)).toEqual(resizeRgbReference(big, 2400, 1800, 224, 224));
    expect(resizeRgb(small, 64, 48, 32, 24)).toEqual(first);
  });
});
