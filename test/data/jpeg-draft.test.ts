// DCT-scaled JPEG decoding: Pillow's draft rule for the scale, libjpeg's output sizes, refusal of
// data the library disagrees with, and the whole preprocessing of a JPEG byte for byte against
// Pillow's draft(), reduce() and resize(BILINEAR) wherever Pillow is installed.

import { spawnSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeJpegRgb, draftScale, scaledLength } from '../../pipeline/data/images/jpeg.ts';
import { readJpegHeader, type JpegHeader } from '../../pipeline/data/images/jpeg-header.ts';
import { letterboxGeometry } from '../../pipeline/data/images/letterbox.ts';
import { decodeImage, decodeScale, preprocessImage, type PreprocessSpec } from '../../pipeline/data/images/preprocess.ts';
import { pictureImage } from '../support/pictures.ts';
import { pillowPython } from '../support/pillow.ts';
import { scratchDir } from '../support/scratch-dir.ts';

const scratch = scratchDir('jpeg-draft');

function header(bytes: Buffer): JpegHeader {
  const h = readJpegHeader(bytes);
  if (!h) throw new Error('no JPEG header');
  return h;
}

describe('draftScale (Pillow JpegImageFile.draft)', () => {
  it.each([
    [640, 480, 224, 224, 2],
    [448, 448, 224, 224, 2],
    [447, 448, 224, 224, 1],
    [4000, 3000, 640, 480, 4],
    [5120, 3840, 640, 480, 8],
    [20000, 20000, 100, 100, 8],
    [100, 100, 224, 224, 1],
    [1280, 720, 320, 180, 4],
  ] as const)('%i×%i towards %i×%i → 1/%i', (w, h, tw, th, scale) => {
    expect(draftScale(w, h, tw, th)).toBe(scale);
  });

  it('rounds scaled sides up, as libjpeg does', () => {
    expect([1, 2, 4, 8].map((s) => scaledLength(333, s as 1 | 2 | 4 | 8))).toEqual([333, 167, 84, 42]);
  });
});

describe('decodeScale', () => {
  it('compares the stored frame with the content size, turned back for EXIF orientations 5–8', () => {
    // Stored 480 wide × 640 high, shown turned (orientation 6) as 640 × 480.
    const h: JpegHeader = { width: 480, height: 640, components: 3, precision: 8, coding: 'baseline', orientation: 6, iccProfile: false };
    // Letterboxed to 160: content 160×120 as shown, 120×160 as stored → room min(4, 4) = 4
    // (the shown content against the stored frame would give min(480/160, 640/120) = 3 → 2).
    expect(decodeScale(h, { size: 160, resize: 'letterbox' })).toBe(4);
    // Stretched to 224×224: room min(480/224, 640/224) = 2.
    expect(decodeScale(h, { size: 224, resize: 'fill' })).toBe(2);
  });

  it('is 1 for images libjpeg-turbo does not decode (sharp decodes them at full size)', async () => {
    const cmyk = await pictureImage(640, 480, 2).toColourspace('cmyk').jpeg().toBuffer();
    expect(decodeScale(header(cmyk), { size: 224, resize: 'fill' })).toBe(1);
  });
});

describe('decodeJpegRgb, DCT-scaled', () => {
  it('decodes at 1/1, 1/2, 1/4 and 1/8 with libjpeg\'s sizes; full size equals sharp\'s decode byte for byte', async () => {
    const bytes = await pictureImage(333, 251, 3).jpeg({ quality: 85 }).toBuffer();
    for (const scale of [1, 2, 4, 8] as const) {
      const d = decodeJpegRgb(bytes, 333, 251, scale);
      expect(d, `1/${scale}`).toBeDefined();
      expect([d!.width, d!.height]).toEqual([scaledLength(333, scale), scaledLength(251, scale)]);
      expect(d!.pixels.length).toBe(d!.width * d!.height * 3);
    }
    const full = decodeJpegRgb(bytes, 333, 251, 1)!;
    expect(Buffer.compare(full.pixels, await sharp(bytes).raw().toBuffer())).toBe(0);
  });

  it('keeps to the picture: a 1/2 decode is within a few levels of the full decode box-averaged', async () => {
    const bytes = await pictureImage(640, 480, 4).jpeg({ quality: 90 }).toBuffer();
    const full = decodeJpegRgb(bytes, 640, 480, 1)!.pixels;
    const half = decodeJpegRgb(bytes, 640, 480, 2)!.pixels;
    let sum = 0;
    for (let y = 0; y < 240; y++) {
      for (let x = 0; x < 320; x++) {
        for (let c = 0; c < 3; c++) {
          const at = (yy: number, xx: number) => full[(yy * 640 + xx) * 3 + c]!;
          const box = (at(2 * y, 2 * x) + at(2 * y, 2 * x + 1) + at(2 * y + 1, 2 * x) + at(2 * y + 1, 2 * x + 1)) / 4;
          sum += Math.abs(box - half[(y * 320 + x) * 3 + c]!);
        }
      }
    }
    expect(sum / (320 * 240 * 3)).toBeLessThan(2);
  });

  it('writes into the given buffer when it is large enough, and allocates when not', async () => {
    const bytes = await pictureImage(64, 48, 5).jpeg().toBuffer();
    const big = Buffer.alloc(64 * 48 * 3 + 100);
    const d = decodeJpegRgb(bytes, 64, 48, 2, big)!;
    expect(d.buffer).toBe(big);
    expect(d.pixels.buffer).toBe(big.buffer);
    const small = Buffer.alloc(10);
    expect(decodeJpegRgb(bytes, 64, 48, 1, small)!.buffer).not.toBe(small);
  });

  it('refuses data the library reads differently, and corrupt or truncated data, rather than guess', async () => {
    const bytes = await pictureImage(64, 48, 6).jpeg().toBuffer();
    expect(decodeJpegRgb(bytes, 65, 48, 1)).toBeUndefined();
    expect(decodeJpegRgb(bytes, 64, 40, 2)).toBeUndefined();
    expect(decodeJpegRgb(bytes.subarray(0, bytes.length >> 1), 64, 48, 1)).toBeUndefined();
    expect(decodeJpegRgb(Buffer.from('not a jpeg'), 64, 48, 1)).toBeUndefined();
    // sharp then explains what is wrong.
    await expect(decodeImage(bytes.subarray(0, bytes.length >> 1), 2)).rejects.toThrow(/premature|truncat|end of/i);
  });
});

// --- against Pillow ---------------------------------------------------------------------------

const PILLOW_SCRIPT = String.raw`
import json, sys
from PIL import Image
for case in json.load(open(sys.argv[1])):
    im = Image.open(case['file'])
    im.draft('RGB', (case['cw'], case['ch']))
    im = im.convert('RGB')
    factors = (max(1, im.width // case['cw']), max(1, im.height // case['ch']))
    if factors != (1, 1):
        im = im.reduce(factors)
    im = im.resize((case['cw'], case['ch']), Image.BILINEAR)
    canvas = Image.new('RGB', (case['size'], case['size']), (114, 114, 114))
    canvas.paste(im, (case['left'], case['top']))
    open(case['out'], 'wb').write(canvas.tobytes())
`;

interface PillowCase {
  name: string;
  make: () => Promise<Buffer>;
  spec: PreprocessSpec;
}

const CASES: PillowCase[] = [
  { name: '640×480 4:2:0 q90 → 224 fill (1/2)', make: () => pictureImage(640, 480, 7).jpeg({ quality: 90 }).toBuffer(), spec: { size: 224, resize: 'fill' } },
  { name: '333×251 4:4:4 q75 → 224 fill (full)', make: () => pictureImage(333, 251, 8).jpeg({ quality: 75, chromaSubsampling: '4:4:4' }).toBuffer(), spec: { size: 224, resize: 'fill' } },
  { name: '1280×720 → 320 letterbox (1/4)', make: () => pictureImage(1280, 720, 9).jpeg({ quality: 85 }).toBuffer(), spec: { size: 320, resize: 'letterbox' } },
  { name: '800×600 progressive → 160 letterbox (1/4)', make: () => pictureImage(800, 600, 10).jpeg({ progressive: true }).toBuffer(), spec: { size: 160, resize: 'letterbox' } },
  { name: '500×400 grayscale → 224 fill (full, reduce 2×1)', make: () => pictureImage(500, 400, 11).toColourspace('b-w').jpeg().toBuffer(), spec: { size: 224, resize: 'fill' } },
  { name: '2048×1536 → 224 fill (1/4, reduce 2×1)', make: () => pictureImage(2048, 1536, 12).jpeg({ quality: 80 }).toBuffer(), spec: { size: 224, resize: 'fill' } },
];

describe.skipIf(!pillowPython)('preprocessImage against Pillow draft() + reduce() + resize(BILINEAR), byte for byte', () => {
  const outputs = new Map<string, Buffer>();

  beforeAll(async () => {
    const cases = [];
    for (const [i, c] of CASES.entries()) {
      const file = join(scratch.path, `pillow-${i}.jpg`);
      const bytes = await c.make();
      await writeFile(file, bytes);
      const h = header(bytes);
      const g = c.spec.resize === 'letterbox' ? letterboxGeometry(h.width, h.height, c.spec.size) : { width: c.spec.size, height: c.spec.size, pad: [0, 0] };
      cases.push({ file, out: `${file}.rgb`, size: c.spec.size, cw: g.width, ch: g.height, left: g.pad[0], top: g.pad[1] });
    }
    await writeFile(join(scratch.path, 'cases.json'), JSON.stringify(cases));
    const r = spawnSync(pillowPython!, ['-c', PILLOW_SCRIPT, join(scratch.path, 'cases.json')], { encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`Pillow reference failed: ${r.stderr}`);
    for (const [i, c] of cases.entries()) outputs.set(CASES[i]!.name, await readFile(c.out));
  });

  it.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const file = join(scratch.path, `pillow-${CASES.indexOf(c)}.jpg`);
    const ours = await preprocessImage(file, c.spec);
    const theirs = outputs.get(c.name)!;
    expect(ours.pixels.length).toBe(theirs.length);
    let differing = 0;
    for (let i = 0; i < theirs.length; i++) if (ours.pixels[i] !== theirs[i]) differing++;
    expect(differing).toBe(0);
  });
});
