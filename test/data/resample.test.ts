// The Pillow-exact resampler: hand-computed cases always; byte-for-byte against Pillow's
// reduce + resize(BILINEAR) wherever a Python with Pillow is installed (.ci/run installs Debian's).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reductionFactors, resizeRgb } from '../../pipeline/data/images/resample.ts';
import { pillowPython } from '../support/pillow.ts';

/** Seeded noise: every byte independent, so any misplaced tap or rounding shows. */
function noise(w: number, h: number, seed: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  let s = (seed * 2654435761) >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** A smooth gradient: rounding ties and slow ramps, where off-by-one weights show. */
function gradient(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      out[i] = Math.floor((255 * x) / Math.max(1, w - 1));
      out[i + 1] = Math.floor((255 * y) / Math.max(1, h - 1));
      out[i + 2] = (x + y) & 255;
    }
  }
  return out;
}

/** Index of the first differing byte (or of the length mismatch), −1 when equal; fast on big images, unlike toEqual. */
function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

function constant(w: number, h: number, rgb: [number, number, number]): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let i = 0; i < out.length; i += 3) out.set(rgb, i);
  return out;
}

describe('reductionFactors', () => {
  it('floors the ratio per axis and never goes below 1', () => {
    expect(reductionFactors(640, 480, 224, 224)).toEqual([2, 2]);
    expect(reductionFactors(640, 640, 224, 224)).toEqual([2, 2]);
    expect(reductionFactors(1200, 900, 224, 224)).toEqual([5, 4]);
    expect(reductionFactors(2000, 1500, 224, 224)).toEqual([8, 6]);
    expect(reductionFactors(300, 250, 224, 224)).toEqual([1, 1]);
    expect(reductionFactors(100, 80, 224, 224)).toEqual([1, 1]);
    expect(reductionFactors(300, 700, 224, 224)).toEqual([1, 3]);
    expect(reductionFactors(448, 448, 224, 224)).toEqual([2, 2]);
  });

  it('rejects sizes that are not positive integers', () => {
    expect(() => reductionFactors(0, 480, 224, 224)).toThrow(/width/);
    expect(() => reductionFactors(640, 1.5, 224, 224)).toThrow(/height/);
    expect(() => reductionFactors(640, 480, -1, 224)).toThrow(/targetWidth/);
    expect(() => reductionFactors(640, 480, 224, Number.NaN)).toThrow(/targetHeight/);
  });
});

describe('resizeRgb, hand-computed', () => {
  it('box-reduces 4×1 to 2×1 by averaging pairs, rounding halves up', () => {
    // 4×1 → 2×1: factors (2, 1), Pillow's 2×1 path computes (a + b + 1) >> 1.
    const src = Uint8Array.from([10, 20, 30, 11, 21, 31, 0, 255, 1, 1, 0, 2]);
    expect([...resizeRgb(src, 4, 1, 2, 1)]).toEqual([11, 21, 31, 1, 128, 2]);
  });

  it('reduces 2×2 blocks with (sum + 2) >> 2', () => {
    // Sums 1+1+1+0 = 3 → 1; 2+2+2+1 = 7 → 2; 255·3+254 = 1019 → 255.
    const src = Uint8Array.from([1, 2, 255, 1, 2, 255, 1, 2, 255, 0, 1, 254]);
    expect([...resizeRgb(src, 2, 2, 1, 1)]).toEqual([1, 2, 255]);
  });

  it('averages partial edge blocks over the pixels they have', () => {
    // 3×1 → 1×1 is one full 3×1 block: (3+4+8 + 1) · floor(2^32 / 768) >> 24 = 5.
    expect([...resizeRgb(Uint8Array.from([3, 0, 0, 4, 0, 0, 8, 0, 0]), 3, 1, 1, 1)]).toEqual([5, 0, 0]);
    // 5×1 → 2×1: factors (2, 1); blocks [1,2] → 2, [7,8] → 8 and the lone edge pixel [9] → 9.
    // Then 3 → 2 columns, scale 1.5: output 0 (centre 0.75) weighs source 0 and 1 by 0.625 and
    // 0.375, so (2·0.625 + 8·0.375 + 0.5) → 4; output 1 (centre 2.25) weighs 1 and 2 by 0.375 and
    // 0.625, so (8·0.375 + 9·0.625 + 0.5) → 9.
    const src = Uint8Array.from([1, 0, 0, 2, 0, 0, 7, 0, 0, 8, 0, 0, 9, 0, 0]);
    expect([...resizeRgb(src, 5, 1, 2, 1)]).toEqual([4, 0, 0, 9, 0, 0]);
  });

  it('interpolates a 2×1 → 4×1 enlargement with triangle weights', () => {
    // Centres at 0.25, 0.75, 1.25, 1.75 → sample positions −0.25, 0.25, 0.75, 1.25 clamped to the
    // edges: outputs 0, 0.25·100 = 25, 75, 100 (weights 3/4 and 1/4 are exact in 22 bits).
    const src = Uint8Array.from([0, 0, 0, 100, 200, 40]);
    expect([...resizeRgb(src, 2, 1, 4, 1)]).toEqual([0, 0, 0, 25, 50, 10, 75, 150, 30, 100, 200, 40]);
  });

  it('keeps a constant image constant at every size', () => {
    const sizes: Array<[number, number, number, number]> = [
      [640, 480, 224, 224],
      [643, 481, 224, 224],
      [1200, 900, 224, 224],
      [300, 250, 224, 224],
      [100, 80, 224, 224],
      [1, 1, 224, 224],
      [2, 3, 7, 5],
      [320, 224, 224, 224],
    ];
    for (const [w, h, tw, th] of sizes) {
      for (const rgb of [[0, 0, 0], [255, 255, 255], [17, 128, 254]] as Array<[number, number, number]>) {
        const out = resizeRgb(constant(w, h, rgb), w, h, tw, th);
        expect(firstDifference(out, constant(tw, th, rgb))).toBe(-1);
      }
    }
  });

  it('returns the same bytes, in a new array, when the size does not change', () => {
    const src = noise(37, 23, 1);
    const out = resizeRgb(src, 37, 23, 37, 23);
    expect(out).not.toBe(src);
    expect(firstDifference(out, src)).toBe(-1);
  });

  it('writes into a given output, longer than needed, and leaves the rest alone', () => {
    const src = noise(640, 480, 2);
    const expected = resizeRgb(src, 640, 480, 224, 224);
    const out = new Uint8Array(224 * 224 * 3 + 5).fill(7);
    expect(resizeRgb(src, 640, 480, 224, 224, out)).toBe(out);
    expect(firstDifference(out.subarray(0, 224 * 224 * 3), expected)).toBe(-1);
    expect([...out.subarray(224 * 224 * 3)]).toEqual([7, 7, 7, 7, 7]);
    // Reusing the same output (and the module's scratch buffers) for another image and size.
    const other = noise(300, 200, 3);
    const again = resizeRgb(other, 300, 200, 100, 50, out);
    expect(firstDifference(again.subarray(0, 100 * 50 * 3), resizeRgb(other, 300, 200, 100, 50))).toBe(-1);
    expect(firstDifference(resizeRgb(src, 640, 480, 224, 224, out).subarray(0, 224 * 224 * 3), expected)).toBe(-1);
  });

  it('accepts a Buffer as input and output', () => {
    const src = noise(64, 48, 4);
    const expected = resizeRgb(src, 64, 48, 20, 30);
    expect(firstDifference(resizeRgb(Buffer.from(src), 64, 48, 20, 30), expected)).toBe(-1);
    const out = Buffer.alloc(20 * 30 * 3);
    resizeRgb(src, 64, 48, 20, 30, out);
    expect(firstDifference(out, expected)).toBe(-1);
  });

  it('gives the same bytes whether or not the source starts on a 4-byte boundary', () => {
    // An aligned source is read a word at a time (the 2×2 reduction, and the packing of an image
    // that is not reduced); a shifted copy takes the byte loops.
    for (const [w, h] of [[640, 480], [301, 250]] as const) {
      const src = noise(w, h, 5);
      const shifted = new Uint8Array(src.length + 1).subarray(1);
      shifted.set(src);
      expect(firstDifference(resizeRgb(shifted, w, h, 224, 224), resizeRgb(src, w, h, 224, 224))).toBe(-1);
    }
  });

  it('names the bad argument', () => {
    const src = new Uint8Array(4 * 3 * 3);
    expect(() => resizeRgb(src, 4, 4, 2, 2)).toThrow(/src has 36 bytes/);
    expect(() => resizeRgb(src, 0, 3, 2, 2)).toThrow(/width must be a positive integer/);
    expect(() => resizeRgb(src, 4, 3, 2, 2.5)).toThrow(/targetHeight/);
    expect(() => resizeRgb(src, 4, 3, 2, 2, new Uint8Array(11))).toThrow(/out must be/);
  });
});

// --- against Pillow -------------------------------------------------------------------------

const python = pillowPython;
const pillow = python !== undefined;

const PILLOW_SCRIPT = `
import json, sys
import numpy as np
from PIL import Image
work = sys.argv[1]
for case in json.load(open(work + '/cases.json')):
    w, h, tw, th = case['w'], case['h'], case['tw'], case['th']
    raw = np.fromfile(work + '/' + case['name'] + '.in', dtype=np.uint8).reshape(h, w, 3)
    im = Image.fromarray(raw, 'RGB')
    fx, fy = max(1, w // tw), max(1, h // th)
    out = im.reduce((fx, fy)).resize((tw, th), Image.BILINEAR)
    open(work + '/' + case['name'] + '.out', 'wb').write(out.tobytes())
`;

interface PillowCase {
  name: string;
  w: number;
  h: number;
  tw: number;
  th: number;
  image: 'noise' | 'gradient';
}

const sizes: Array<[number, number, number, number]> = [
  [640, 480, 224, 224],
  [640, 640, 224, 224],
  [480, 640, 224, 224],
  [643, 481, 224, 224], // partial blocks on the right and bottom edges
  [1001, 333, 100, 50], // factors 10×6 with partial blocks
  [700, 700, 224, 224], // 3×3
  [900, 900, 224, 224], // 4×4
  [1120, 1125, 224, 224], // 5×5 with a partial bottom row
  [1200, 900, 224, 224], // 5×4
  [2000, 1500, 224, 224], // 8×6
  [300, 700, 224, 224], // 1×3
  [701, 300, 224, 224], // 3×1 with a partial right column
  [300, 480, 224, 224], // 1×2
  [448, 448, 224, 224], // reduce lands on the target: no resample
  [300, 250, 224, 224], // no reduction
  [320, 224, 224, 224], // height unchanged: horizontal pass only
  [224, 320, 224, 224], // width unchanged: vertical pass only
  [100, 80, 224, 224], // enlargement
  [640, 480, 640, 480], // identity
  [640, 480, 320, 240],
  [640, 480, 640, 360], // letterbox-like: 1×1, then non-square target
  [1, 1, 224, 224],
  [2, 3, 224, 224],
  [7, 5, 3, 2],
  [1000, 750, 640, 480], // no reduction, windows of 3 and 4 pixels
  [447, 299, 224, 150], // no reduction at almost 2×: windows of up to 5 pixels
];

// Seeded random sizes on top: odd factors and block sizes whose single-precision multiplier is
// not the exact quotient, shrinking on one axis while enlarging the other, 1-pixel targets.
const random = (() => {
  let s = 12345;
  return (n: number) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return 1 + (s % n);
  };
})();
for (let i = 0; i < 24; i++) sizes.push([random(900), random(900), random(260), random(260)]);

const cases: PillowCase[] = sizes.flatMap(([w, h, tw, th]) =>
  (['noise', 'gradient'] as const).map((image) => ({ name: `${image}-${w}x${h}-${tw}x${th}`, w, h, tw, th, image })),
);

describe('resizeRgb against Pillow', () => {
  let work = '';
  const inputs = new Map<string, Uint8Array>();

  beforeAll(() => {
    if (!pillow) return;
    work = mkdtempSync(join(tmpdir(), 'resample-'));
    for (const c of cases) {
      const src = c.image === 'noise' ? noise(c.w, c.h, c.w * 7 + c.h) : gradient(c.w, c.h);
      inputs.set(c.name, src);
      writeFileSync(join(work, `${c.name}.in`), src);
    }
    writeFileSync(join(work, 'cases.json'), JSON.stringify(cases));
    const r = spawnSync(python!, ['-c', PILLOW_SCRIPT, work], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`Pillow reference failed: ${r.stderr}`);
  });

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  for (const c of cases) {
    it.skipIf(!pillow)(`${c.image} ${c.w}×${c.h} → ${c.tw}×${c.th}`, () => {
      const expected = new Uint8Array(readFileSync(join(work, `${c.name}.out`)));
      const actual = resizeRgb(inputs.get(c.name)!, c.w, c.h, c.tw, c.th);
      expect(actual.length).toBe(expected.length);
      let mismatches = 0;
      for (let i = 0; i < expected.length; i++) if (actual[i] !== expected[i]) mismatches++;
      expect({ mismatches, firstMismatch: firstDifference(actual, expected) }).toEqual({ mismatches: 0, firstMismatch: -1 });
    });
  }
});
