// decodeImage and preprocessImage: which decoder an image takes (libjpeg-turbo for plain JPEGs,
// sharp for the rest), that both give the same picture, orientation, letterbox geometry, and that
// a path and its bytes always give identical pixels.

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { jpegDecoderUnavailable } from '../../pipeline/data/images/jpeg.ts';
import { decodeImage, preprocessDecoded, preprocessImage } from '../../pipeline/data/images/preprocess.ts';
import { resizeRgb } from '../../pipeline/data/images/resample.ts';
import { pictureImage } from '../support/pictures.ts';
import { scratchDir } from '../support/scratch-dir.ts';

const saved = scratchDir('images-decode').save;

const rgb = pictureImage;

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

/** sharp's own decode of the same bytes (auto-oriented, sRGB, 3 channels). */
async function sharpDecode(bytes: Buffer): Promise<Buffer> {
  return sharp(bytes, { autoOrient: true }).flatten({ background: '#727272' }).toColourspace('srgb').raw().toBuffer();
}

describe('decodeImage', () => {
  it("has libjpeg-turbo on this machine (koffi loads the prebuilt libturbojpeg)", () => {
    expect(jpegDecoderUnavailable()).toBeUndefined();
  });

  it('decodes a plain JPEG with libjpeg-turbo at full size: sharp\'s pixels exactly (same library, same IDCT)', async () => {
    const bytes = await rgb(640, 480, 1).jpeg({ quality: 90 }).toBuffer();
    const ours = await decodeImage(bytes);
    expect([ours.width, ours.height, ours.fullWidth, ours.fullHeight]).toEqual([640, 480, 640, 480]);
    expect(diff(ours.pixels, await sharpDecode(bytes)).max).toBe(0);
  });

  it('decodes DCT-scaled when asked, keeping the full size for the geometry', async () => {
    const bytes = await rgb(640, 480, 1).jpeg({ quality: 90 }).toBuffer();
    const half = await decodeImage(bytes, 2);
    expect([half.width, half.height, half.fullWidth, half.fullHeight]).toEqual([320, 240, 640, 480]);
    // sharp's images stay full size whatever the scale asked for.
    const png = await decodeImage(await rgb(640, 480, 1).png().toBuffer(), 2);
    expect([png.width, png.height]).toEqual([640, 480]);
  });

  it('gives identical pixels from a path and from its bytes', async () => {
    const bytes = await rgb(500, 375, 2).jpeg({ quality: 80 }).toBuffer();
    const path = await saved('a.jpg', bytes);
    const [a, b] = [await decodeImage(path), await decodeImage(bytes)];
    expect(diff(a.pixels, b.pixels).max).toBe(0);
  });

  it('applies every EXIF orientation as sharp does', async () => {
    // 240 wide × 120 high, left half red: each orientation shows it turned or mirrored.
    const raw = Buffer.alloc(240 * 120 * 3);
    for (let y = 0; y < 120; y++) for (let x = 0; x < 240; x++) raw.set(x < 120 ? [255, 0, 0] : [0, 0, 255], (y * 240 + x) * 3);
    for (let orientation = 1; orientation <= 8; orientation++) {
      const bytes = await sharp(raw, { raw: { width: 240, height: 120, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation }).toBuffer();
      const ours = await decodeImage(bytes);
      const theirs = await sharp(bytes, { autoOrient: true }).raw().toBuffer({ resolveWithObject: true });
      expect([ours.width, ours.height], `orientation ${orientation}`).toEqual([theirs.info.width, theirs.info.height]);
      expect(diff(ours.pixels, theirs.data).mean, `orientation ${orientation}`).toBeLessThan(1.5);
    }
  });

  it('turns grayscale JPEGs into three equal channels', async () => {
    const bytes = await rgb(320, 240, 3).toColourspace('b-w').jpeg().toBuffer();
    const ours = await decodeImage(bytes);
    for (let i = 0; i < ours.pixels.length; i += 3 * 97) {
      expect(ours.pixels[i + 1]).toBe(ours.pixels[i]);
      expect(ours.pixels[i + 2]).toBe(ours.pixels[i]);
    }
    expect(diff(ours.pixels, await sharpDecode(bytes)).mean).toBeLessThan(1.5);
  });

  it('hands CMYK, ICC-tagged JPEGs and PNGs to sharp: exactly its pixels', async () => {
    const base = rgb(320, 240, 4);
    for (const [name, bytes] of [
      ['cmyk', await base.clone().toColourspace('cmyk').jpeg().toBuffer()],
      ['display-p3', await base.clone().withIccProfile('p3').jpeg().toBuffer()],
      ['png', await base.clone().png().toBuffer()],
      ['png16', await base.clone().toColourspace('rgb16').png().toBuffer()],
    ] as const) {
      const ours = await decodeImage(bytes);
      expect([ours.width, ours.height], name).toEqual([320, 240]);
      expect(diff(ours.pixels, await sharpDecode(bytes)).max, name).toBe(0);
    }
  });

  it('flattens alpha onto the letterbox gray', async () => {
    const bytes = await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } } }).png().toBuffer();
    const ours = await decodeImage(bytes);
    expect([...ours.pixels.subarray(0, 3)]).toEqual([114, 114, 114]);
  });

  it('rejects truncated and corrupt data with sharp\'s explanation', async () => {
    const bytes = await rgb(320, 240, 5).jpeg().toBuffer();
    await expect(decodeImage(bytes.subarray(0, bytes.length >> 1))).rejects.toThrow(/premature|truncat|end of/i);
    await expect(decodeImage(Buffer.from('not an image at all'))).rejects.toThrow(/unsupported image format|input buffer/i);
  });
});

describe('preprocessImage', () => {
  it('resamples the image decoded at the spec\'s DCT scale with the project resampler', async () => {
    const bytes = await rgb(640, 480, 6).jpeg({ quality: 90 }).toBuffer();
    const decoded = await decodeImage(bytes, 2);
    const out = await preprocessImage(await saved('b.jpg', bytes), { size: 224, resize: 'fill' });
    expect([out.width, out.height]).toEqual([640, 480]);
    expect(out.geometry).toMatchObject({ width: 224, height: 224, pad: [0, 0, 0, 0] });
    expect(diff(out.pixels, resizeRgb(decoded.pixels, 320, 240, 224, 224)).max).toBe(0);
  });

  it('letterboxes exactly: padding is 114 gray around the resampled content', async () => {
    const bytes = await rgb(1280, 720, 7).jpeg({ quality: 90 }).toBuffer();
    const decoded = await decodeImage(bytes);
    const out = preprocessDecoded(decoded, { size: 320, resize: 'letterbox' });
    expect(out.geometry).toMatchObject({ width: 320, height: 180, pad: [0, 70, 0, 70] });
    const px = (x: number, y: number) => [...out.pixels.subarray((y * 320 + x) * 3, (y * 320 + x) * 3 + 3)];
    for (const [x, y] of [[0, 0], [319, 69], [160, 250], [5, 319]] as const) expect(px(x, y)).toEqual([114, 114, 114]);
    const content = resizeRgb(decoded.pixels, 1280, 720, 320, 180);
    expect(diff(out.pixels.subarray(70 * 320 * 3, 250 * 320 * 3), content).max).toBe(0);
  });

  it('stays close to sharp\'s own linear resize of the same image', async () => {
    const bytes = await rgb(640, 480, 8).jpeg({ quality: 90 }).toBuffer();
    const ours = await preprocessImage(bytes, { size: 224, resize: 'fill' });
    const theirs = await sharp(bytes).resize(224, 224, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
    const d = diff(ours.pixels, theirs);
    expect(d.mean).toBeLessThan(2);
  });
});
