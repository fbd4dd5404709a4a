// DCT-scaled JPEG decoding in preprocessImage: when it applies, that it keeps the geometry and
// conversions of the full-decode path, and that its pixels stay close to that path's.

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { jpegShrinkFactor, preprocessImage, preprocessImages, withLoadOptions, type PreprocessSpec } from '../../pipeline/data/images/preprocess.ts';
import { picture } from '../support/pictures.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'images-decode-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const rgb = (w: number, h: number, seed: number) => sharp(picture(w, h, seed), { raw: { width: w, height: h, channels: 3 } });

async function saved(name: string, bytes: Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

/** Mean and max absolute difference of two equally long byte arrays. */
function diff(a: Uint8Array, b: Uint8Array): { mean: number; max: number } {
  expect(a.length).toBe(b.length);
  let sum = 0;
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    sum += d;
    if (d > max) max = d;
  }
  return { mean: sum / a.length, max };
}

/** The same image through a path (DCT-scaled when it applies) and through its bytes (full decode). */
async function bothWays(path: string, bytes: Buffer, spec: PreprocessSpec, format = 'jpeg') {
  const fromBytes = await preprocessImage(bytes, spec);
  const fromPath = await preprocessImage(path, spec, { width: fromBytes.width, height: fromBytes.height, format });
  return { fromBytes, fromPath, d: diff(fromBytes.pixels, fromPath.pixels) };
}

describe('jpegShrinkFactor', () => {
  it('picks the largest of 8, 4, 2 that keeps both axes at or above the target', () => {
    expect(jpegShrinkFactor(640, 480, 224, 224)).toBe(2);
    expect(jpegShrinkFactor(448, 448, 224, 224)).toBe(2);
    expect(jpegShrinkFactor(447, 448, 224, 224)).toBe(1);
    expect(jpegShrinkFactor(896, 900, 224, 224)).toBe(4);
    expect(jpegShrinkFactor(4000, 3000, 224, 224)).toBe(8);
    // Letterbox content of 1920×1080 at 640 is 640×360: a 3× reduction decodes at 1/2.
    expect(jpegShrinkFactor(1920, 1080, 640, 360)).toBe(2);
    expect(jpegShrinkFactor(640, 480, 640, 480)).toBe(1);
    expect(jpegShrinkFactor(160, 120, 224, 224)).toBe(1);
  });

  it('appends load options only to paths libvips parses unambiguously', () => {
    expect(withLoadOptions('/d/a.jpg', 'shrink=2')).toBe('/d/a.jpg[shrink=2]');
    expect(withLoadOptions('/d/a[1].jpg', 'shrink=2')).toBeUndefined();
    expect(withLoadOptions('/d]/a.jpg', 'shrink=2')).toBeUndefined();
  });
});

describe('preprocessImage from a path', () => {
  it('decodes a JPEG DCT-scaled: same geometry, pixels close to the full decode but not identical', async () => {
    const bytes = await rgb(640, 480, 1).jpeg({ quality: 90 }).toBuffer();
    const path = await saved('a.jpg', bytes);
    const { fromBytes, fromPath, d } = await bothWays(path, bytes, { size: 224, resize: 'fill' });
    expect(fromPath.geometry).toEqual(fromBytes.geometry);
    expect([fromPath.width, fromPath.height]).toEqual([640, 480]);
    expect(fromPath.pixels).toHaveLength(224 * 224 * 3);
    // Not the full decode (the path was taken), yet a faithful reduction of the same picture.
    expect(d.max).toBeGreaterThan(0);
    expect(d.mean).toBeLessThan(1.5);
    expect(d.max).toBeLessThan(24);
  });

  it('letterboxes exactly: padding is 114 gray and the content matches the full decode', async () => {
    const bytes = await rgb(1280, 720, 2).jpeg({ quality: 90 }).toBuffer();
    const path = await saved('wide.jpg', bytes);
    const { fromBytes, fromPath, d } = await bothWays(path, bytes, { size: 320, resize: 'letterbox' });
    expect(fromPath.geometry).toEqual(fromBytes.geometry);
    expect(fromPath.geometry).toMatchObject({ width: 320, height: 180, pad: [0, 70, 0, 70] });
    const px = (x: number, y: number) => [...fromPath.pixels.subarray((y * 320 + x) * 3, (y * 320 + x) * 3 + 3)];
    for (const [x, y] of [[0, 0], [319, 69], [160, 250], [5, 319]] as const) expect(px(x, y)).toEqual([114, 114, 114]);
    expect(d.mean).toBeLessThan(1.5);
  });

  it('auto-rotates by EXIF orientation with a DCT-scaled decode', async () => {
    // 240 wide × 120 high, left half red; orientation 6 displays it 120 wide × 240 high, red on top.
    const raw = Buffer.alloc(240 * 120 * 3);
    for (let y = 0; y < 120; y++) for (let x = 0; x < 240; x++) raw.set(x < 120 ? [255, 0, 0] : [0, 0, 255], (y * 240 + x) * 3);
    const bytes = await sharp(raw, { raw: { width: 240, height: 120, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const path = await saved('rotated.jpg', bytes);
    const out = await preprocessImage(path, { size: 56, resize: 'fill' }, { width: 120, height: 240, format: 'jpeg' });
    expect(jpegShrinkFactor(120, 240, 56, 56)).toBe(2);
    const red = (x: number, y: number) => out.pixels[(y * 56 + x) * 3]!;
    expect(red(28, 5)).toBeGreaterThan(200);
    expect(red(28, 50)).toBeLessThan(50);
  });

  it('converts grayscale and CMYK JPEGs to RGB as the full decode does', async () => {
    const base = rgb(480, 480, 3);
    for (const [name, bytes] of [
      ['gray.jpg', await base.clone().toColourspace('b-w').jpeg().toBuffer()],
      ['cmyk.jpg', await base.clone().toColourspace('cmyk').jpeg().toBuffer()],
    ] as const) {
      const path = await saved(name, bytes);
      const { fromPath, d } = await bothWays(path, bytes, { size: 112, resize: 'fill' });
      expect(fromPath.pixels, name).toHaveLength(112 * 112 * 3);
      expect(d.mean, name).toBeLessThan(2);
    }
  });

  it('takes PNGs (alpha, 16-bit) and bracketed file names through the ordinary decode', async () => {
    const alpha = await rgb(320, 240, 4).ensureAlpha(0.5).png().toBuffer();
    const deep = await rgb(320, 240, 5).toColourspace('rgb16').png().toBuffer();
    for (const [name, bytes, format] of [
      ['alpha.png', alpha, 'png'],
      ['deep.png', deep, 'png'],
    ] as const) {
      const { d } = await bothWays(await saved(name, bytes), bytes, { size: 64, resize: 'letterbox' }, format);
      expect(d.max, name).toBe(0);
    }
    // A JPEG whose name libvips would misparse is read as bytes: exactly the full decode.
    await mkdir(join(dir, '[set]'));
    const bytes = await rgb(640, 480, 6).jpeg().toBuffer();
    const { d } = await bothWays(await saved('[set]/b[1].jpg', bytes), bytes, { size: 224, resize: 'fill' });
    expect(d.max).toBe(0);
  });

  it('reads the header itself when the caller knows nothing', async () => {
    const bytes = await rgb(640, 480, 7).jpeg().toBuffer();
    const path = await saved('c.jpg', bytes);
    const bare = await preprocessImage(path, { size: 224, resize: 'fill' });
    const told = await preprocessImage(path, { size: 224, resize: 'fill' }, { width: 640, height: 480, format: 'jpeg' });
    expect([bare.width, bare.height]).toEqual([640, 480]);
    expect(bare.pixels.equals(told.pixels)).toBe(true);
  });
});

describe('preprocessImages', () => {
  it('gives exactly what preprocessImage gives, image by image, for mixed inputs', async () => {
    const inputs: string[] = [];
    const add = async (name: string, bytes: Buffer) => inputs.push(await saved(name, bytes));
    for (let i = 0; i < 4; i++) await add(`same${i}.jpg`, await rgb(640, 480, 10 + i).jpeg({ quality: 85 }).toBuffer());
    await add('odd.jpg', await rgb(479, 359, 20).jpeg().toBuffer());
    await add('odd2.jpg', await rgb(479, 359, 21).jpeg().toBuffer());
    await add('tall.jpg', await rgb(300, 500, 22).jpeg().toBuffer());
    await add('gray.jpg', await rgb(640, 480, 23).toColourspace('b-w').jpeg().toBuffer());
    await add('cmyk.jpg', await rgb(640, 480, 24).toColourspace('cmyk').jpeg().toBuffer());
    await add('rotated.jpg', await rgb(480, 640, 25).jpeg().withMetadata({ orientation: 6 }).toBuffer());
    await add('small.jpg', await rgb(160, 120, 26).jpeg().toBuffer());
    await add('plain.png', await rgb(640, 480, 27).png().toBuffer());
    for (const spec of [{ size: 224, resize: 'fill' }, { size: 224, resize: 'letterbox' }, { size: 300, resize: 'letterbox' }] as const) {
      const batch = await preprocessImages(inputs, spec);
      expect(batch).toHaveLength(inputs.length);
      for (const [i, path] of inputs.entries()) {
        const one = await preprocessImage(path, spec);
        const got = batch[i]!;
        expect(got.geometry, `${path} ${spec.resize}`).toEqual(one.geometry);
        expect([got.width, got.height]).toEqual([one.width, one.height]);
        expect(diff(got.pixels, one.pixels).max, `${path} ${spec.resize} ${spec.size}`).toBe(0);
      }
    }
  });

  it('stacks only what shares a decoded size, and keeps the order of its inputs', async () => {
    const a = await saved('a.jpg', await rgb(640, 480, 30).jpeg().toBuffer());
    const b = await saved('b.jpg', await rgb(640, 480, 31).jpeg().toBuffer());
    const [x, y] = await preprocessImages([a, b], { size: 224, resize: 'fill' });
    const [y2, x2] = await preprocessImages([b, a], { size: 224, resize: 'fill' });
    expect(x!.pixels.equals(x2!.pixels)).toBe(true);
    expect(y!.pixels.equals(y2!.pixels)).toBe(true);
    expect(x!.pixels.equals(y!.pixels)).toBe(false);
  });
});
