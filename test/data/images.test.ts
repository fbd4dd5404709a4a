import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hamming, pHash, thumbnailStats } from '../../pipeline/data/images/hash.ts';
import { fromLetterbox, letterboxGeometry, toLetterbox, yoloToPixels } from '../../pipeline/data/images/letterbox.ts';
import { forEachPool } from '../../pipeline/data/images/pool.ts';
import { IMAGENET_MEAN, IMAGENET_STD, normalizeToCHW, preprocessImage } from '../../pipeline/data/images/preprocess.ts';
import { probeImage, probeJpeg, probeWithSharp } from '../../pipeline/data/images/probe.ts';
import { ImageTensorWriter, openImageTensorFile, type ImageIndexItem } from '../../pipeline/data/images/tensor-file.ts';
import { picture } from '../support/pictures.ts';


const jpeg = (w: number, h: number, seed: number, quality = 90) =>
  sharp(picture(w, h, seed), { raw: { width: w, height: h, channels: 3 } }).jpeg({ quality }).toBuffer();

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'images-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('letterbox', () => {
  it('matches Ultralytics geometry', () => {
    expect(letterboxGeometry(640, 480, 640)).toMatchObject({ width: 640, height: 480, pad: [0, 80, 0, 80] });
    expect(letterboxGeometry(1280, 720, 640)).toMatchObject({ width: 640, height: 360, pad: [0, 140, 0, 140] });
    // 500×333 → r = 1.28 → 640×426, dh = 107 → top round(106.9) = 107, bottom 107.
    expect(letterboxGeometry(500, 333, 640)).toMatchObject({ width: 640, height: 426, pad: [0, 107, 0, 107] });
    // odd padding: 480×641 → 479×640, dw = 80.5 → left round(80.4) = 80, right 81.
    const g = letterboxGeometry(480, 641, 640);
    expect(g.width).toBe(479);
    expect(g.pad).toEqual([80, 0, 81, 0]);
  });

  it('maps boxes back to the original pixels exactly', () => {
    for (const [w, h] of [[640, 480], [500, 333], [333, 500], [1920, 1080]] as const) {
      const g = letterboxGeometry(w, h, 640);
      const box = yoloToPixels(0.4, 0.6, 0.2, 0.3, w, h);
      const back = fromLetterbox(toLetterbox(box, g), g);
      back.forEach((v, i) => expect(v).toBeCloseTo(box[i]!, 9));
      const lb = toLetterbox(box, g);
      // Inside the content area.
      expect(lb[0]).toBeGreaterThanOrEqual(g.pad[0]);
      expect(lb[3]).toBeLessThanOrEqual(g.pad[1] + g.height + 1e-9);
    }
  });

  it('pads with 114 gray and puts the content in the middle', async () => {
    const img = await sharp({ create: { width: 64, height: 32, channels: 3, background: { r: 250, g: 10, b: 10 } } }).png().toBuffer();
    const out = await preprocessImage(img, { size: 64, resize: 'letterbox' });
    expect(out.geometry.pad).toEqual([0, 16, 0, 16]);
    const px = (x: number, y: number) => [...out.pixels.subarray((y * 64 + x) * 3, (y * 64 + x) * 3 + 3)];
    expect(px(10, 5)).toEqual([114, 114, 114]);
    expect(px(10, 60)).toEqual([114, 114, 114]);
    expect(px(32, 32)).toEqual([250, 10, 10]);
  });

  it('auto-rotates by EXIF orientation before resizing', async () => {
    // 60 wide × 30 high, left half red; orientation 6 displays it 30 wide × 60 high, red on top.
    const raw = Buffer.alloc(60 * 30 * 3);
    for (let y = 0; y < 30; y++) for (let x = 0; x < 60; x++) raw.set(x < 30 ? [255, 0, 0] : [0, 0, 255], (y * 60 + x) * 3);
    const img = await sharp(raw, { raw: { width: 60, height: 30, channels: 3 } }).png().withMetadata({ orientation: 6 }).toBuffer();
    const out = await preprocessImage(img, { size: 60, resize: 'fill' });
    expect([out.width, out.height]).toEqual([30, 60]);
    const px = (x: number, y: number) => out.pixels[(y * 60 + x) * 3]!;
    expect(px(30, 5)).toBeGreaterThan(200); // top is red
    expect(px(30, 55)).toBeLessThan(50); // bottom is blue
  });
});

describe('probe', () => {
  it('classifies every bad-input class', async () => {
    const base = sharp(picture(64, 48, 1), { raw: { width: 64, height: 48, channels: 3 } });
    const good = await base.clone().jpeg().toBuffer();
    const kinds = async (b: Buffer) => {
      const r = await probeImage(b);
      return r.ok ? r.notes : r.problem;
    };
    expect(await kinds(good)).toEqual([]);
    expect(await kinds(Buffer.alloc(0))).toBe('zero-byte');
    expect(await kinds(good.subarray(0, Math.floor(good.length * 0.7)))).toBe('truncated');
    expect(await kinds(Buffer.from('not an image at all'))).toBe('unreadable');
    expect(await kinds(await base.clone().toColourspace('cmyk').jpeg().toBuffer())).toEqual(['cmyk']);
    expect(await kinds(await base.clone().toColourspace('rgb16').png().toBuffer())).toEqual(['16-bit']);
    expect(await kinds(await base.clone().ensureAlpha().png().toBuffer())).toEqual(['alpha']);
    expect(await kinds(await base.clone().toColourspace('b-w').png().toBuffer())).toEqual(['grayscale']);
    expect(await kinds(await base.clone().jpeg().withMetadata({ orientation: 6 }).toBuffer())).toEqual(['exif-orientation']);
    expect(await kinds(await base.clone().webp().toBuffer())).toBe('unsupported-format');
    const rotated = await probeImage(await base.clone().jpeg().withMetadata({ orientation: 8 }).toBuffer());
    expect(rotated.ok && [rotated.width, rotated.height]).toEqual([48, 64]);
  });

  it('gives near-identical pHashes to re-encoded copies and distant ones to different pictures', async () => {
    const a = await probeImage(await jpeg(160, 120, 7, 95));
    const a2 = await probeImage(await jpeg(160, 120, 7, 70));
    const b = await probeImage(await jpeg(160, 120, 8, 95));
    if (!a.ok || !a2.ok || !b.ok) throw new Error('probe failed');
    expect(a.phash).toMatch(/^[0-9a-f]{64}$/);
    expect(hamming(a.phash, a2.phash)).toBeLessThanOrEqual(12);
    expect(hamming(a.phash, b.phash)).toBeGreaterThan(40);
  });

  it('gives about the same hash and statistics whether libjpeg-turbo or sharp decodes the picture', async () => {
    const raw = picture(640, 480, 21);
    const jpg = await sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).jpeg({ quality: 95 }).toBuffer();
    const png = await sharp(raw, { raw: { width: 640, height: 480, channels: 3 } }).png().toBuffer();
    const viaTurbo = probeJpeg(jpg);
    const viaSharp = await probeWithSharp(jpg);
    const fromPng = await probeImage(png);
    if (!viaTurbo || !viaSharp.ok || !fromPng.ok) throw new Error('probe failed');
    for (const other of [viaSharp, fromPng]) {
      expect(hamming(viaTurbo.phash, other.phash)).toBeLessThanOrEqual(12);
      expect(Math.abs(viaTurbo.stats.brightness - other.stats.brightness)).toBeLessThan(1.5);
      expect(Math.abs(viaTurbo.stats.contrast - other.stats.contrast)).toBeLessThan(1.5);
    }
    expect({ ...viaTurbo, stats: undefined, phash: undefined }).toEqual({ ...viaSharp, stats: undefined, phash: undefined });
  });

  it('computes stats: uniform gray has no contrast and no sharpness; an edge has both', () => {
    const n = 128 * 128;
    const gray = new Uint8Array(n * 3).fill(100);
    expect(thumbnailStats(gray).stats).toMatchObject({ brightness: expect.closeTo(100, 6), contrast: expect.closeTo(0, 6), sharpness: 0, mean_r: 100 });
    const edge = new Uint8Array(n * 3);
    for (let p = 0; p < n; p++) if (p % 128 >= 64) edge.fill(200, p * 3, p * 3 + 3);
    const s = thumbnailStats(edge).stats;
    expect(s.contrast).toBeCloseTo(100, 6);
    expect(s.sharpness).toBeGreaterThan(100);
    expect(pHash(new Float64Array(1024))).toMatch(/^[0-9a-f]{16}$/);
  });
});

describe('image tensor file', () => {
  it('reads back exactly what was written, and normalises to CHW correctly', async () => {
    const size = 8;
    const n = 5;
    const writer = await ImageTensorWriter.create(join(dir, 'train'), {
      split: 'train',
      count: n,
      shape: [n, size, size, 3],
      mean: [...IMAGENET_MEAN],
      std: [...IMAGENET_STD],
      resize: 'fill',
      task: 'classification',
      classNames: ['Dry', 'Normal', 'Oily'],
    });
    const rows = Array.from({ length: n }, (_, r) => Buffer.from(Array.from({ length: size * size * 3 }, (_, i) => (i * 7 + r * 31) % 256)));
    const items: ImageIndexItem[] = [];
    // Out of order, as a pool of decoders would deliver them.
    for (const r of [3, 0, 4, 1, 2]) {
      await writer.writeRow(r, rows[r]!);
      items.push({ id: `img${r}`, row: r, file: `x/${r}.jpg`, label: r % 3, width: 8, height: 8, scale: [1, 1], pad: [0, 0], sha256: 'x' });
    }
    await writer.close(items);
    const file = await openImageTensorFile(dir, 'train');
    try {
      expect(file.meta.shape).toEqual([n, size, size, 3]);
      expect(file.items.map((i) => i.id)).toEqual(['img0', 'img1', 'img2', 'img3', 'img4']);
      for (let r = 0; r < n; r++) expect((await file.readRow(r)).equals(rows[r]!)).toBe(true);
      const batches = [];
      for await (const b of file.batches(2)) batches.push(b);
      expect(batches.map((b) => b.rows)).toEqual([[0, 1], [2, 3], [4]]);
      const plane = size * size;
      const b1 = batches[1]!; // rows 2, 3
      // row 3, channel 1 (G), pixel 5: HWC index 5*3+1
      const v = rows[3]![5 * 3 + 1]!;
      expect(b1.data[1 * 3 * plane + 1 * plane + 5]).toBeCloseTo((v / 255 - 0.456) / 0.224, 5);
      expect(b1.data).toHaveLength(2 * 3 * plane);
      await expect(file.readRow(n)).rejects.toThrow(RangeError);
    } finally {
      await file.close();
    }
  });

  it('refuses a split whose data does not match its meta', async () => {
    const writer = await ImageTensorWriter.create(join(dir, 'val'), {
      split: 'val', count: 2, shape: [2, 2, 2, 3], mean: [0, 0, 0], std: [1, 1, 1], resize: 'letterbox', task: 'detection', classNames: [],
    });
    await writer.writeRow(0, Buffer.alloc(12));
    await expect(writer.close([])).rejects.toThrow(/1 rows written/);
    await expect(openImageTensorFile(dir, 'val')).rejects.toThrow(/missing or incomplete/);
  });

  it('normalizeToCHW with mean 0 / std 1 is x/255', () => {
    const out = new Float32Array(3 * 2);
    normalizeToCHW(Uint8Array.from([0, 51, 255, 255, 102, 0]), 1, 2, [0, 0, 0], [1, 1, 1], out);
    expect(Array.from(out).map((x) => Math.round(x * 255))).toEqual([0, 255, 51, 102, 255, 0]);
  });

  it('normalizeToCHW gives (x / 255 − mean) / std rounded to float32, for every value, at any offset', () => {
    let s = 7;
    for (const [w, h] of [[1, 1], [3, 5], [224, 224], [17, 640]] as const) {
      const pixels = Uint8Array.from({ length: w * h * 3 }, () => (s = (s * 1103515245 + 12345) >>> 0) >>> 24);
      const offset = 5;
      const out = new Float32Array(offset + 3 * w * h + 2).fill(-7);
      normalizeToCHW(pixels, h, w, IMAGENET_MEAN, IMAGENET_STD, out, offset);
      const plane = w * h;
      for (let p = 0; p < plane; p++) {
        for (let c = 0; c < 3; c++) {
          const want = Math.fround((pixels[3 * p + c]! / 255 - IMAGENET_MEAN[c]!) / IMAGENET_STD[c]!);
          if (out[offset + c * plane + p] !== want) throw new Error(`${w}×${h} pixel ${p} channel ${c}: ${out[offset + c * plane + p]} ≠ ${want}`);
        }
      }
      expect([...out.subarray(0, offset), ...out.subarray(offset + 3 * plane)]).toEqual([-7, -7, -7, -7, -7, -7, -7]);
    }
  });

  it('normalizeToCHW refuses too few pixels or too little room', () => {
    expect(() => normalizeToCHW(new Uint8Array(11), 2, 2, [0, 0, 0], [1, 1, 1], new Float32Array(12))).toThrow(RangeError);
    expect(() => normalizeToCHW(new Uint8Array(12), 2, 2, [0, 0, 0], [1, 1, 1], new Float32Array(12), 1)).toThrow(RangeError);
  });
});

describe('pool', () => {
  it('keeps at most `concurrency` calls in flight and stops on the first error', async () => {
    let inFlight = 0;
    let peak = 0;
    const seen: number[] = [];
    await forEachPool(Array.from({ length: 20 }, (_, i) => i), 3, async (x) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setImmediate(r));
      seen.push(x);
      inFlight--;
    });
    expect(peak).toBe(3);
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await expect(forEachPool([1, 2, 3], 2, async (x) => {
      if (x === 2) throw new Error('boom');
    })).rejects.toThrow('boom');
  });
});

describe('truncation', () => {
  it('is recognised from the file structure even with many images in flight', async () => {
    const jpg = await jpeg(80, 60, 3);
    const png = await sharp(picture(80, 60, 4), { raw: { width: 80, height: 60, channels: 3 } }).png().toBuffer();
    const cut = [jpg.subarray(0, Math.floor(jpg.length * 0.6)), png.subarray(0, Math.floor(png.length * 0.7))];
    const results = await Promise.all(Array.from({ length: 24 }, (_, i) => probeImage(i % 3 === 2 ? jpg : cut[i % 2]!)));
    results.forEach((r, i) => expect(r.ok ? 'ok' : r.problem, String(i)).toBe(i % 3 === 2 ? 'ok' : 'truncated'));
  });
});
