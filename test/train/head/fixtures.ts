// Tiny prepared image folders for the head trainer's tests, written with the real ImageTensorWriter:
// three texture classes (flat, fine noise, bright spots) that a working extractor must tell apart.

import { join } from 'node:path';
import { ImageTensorWriter, type ImageIndexItem } from '../../../pipeline/data/images/tensor-file.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../../pipeline/data/images/preprocess.ts';

export const CLASS_NAMES = ['Dry', 'Normal', 'Oily'];

function lcg(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 32);
}

/**
 * One size×size RGB image of a class: 0 strong fine grain (dry), 1 flat skin with faint grain
 * (normal), 2 flat skin with a few bright specular spots (oily). Skin tone varies per image.
 */
export function textureImage(cls: number, seed: number, size: number): Uint8Array {
  const rnd = lcg(seed * 7 + cls * 1_000_003);
  const tone = 0.75 + 0.25 * rnd();
  const base = [205 * tone, 160 * tone, 135 * tone];
  const px = new Uint8Array(size * size * 3);
  const grain = cls === 0 ? 40 : 6;
  for (let i = 0; i < size * size; i++) {
    const n = (rnd() - 0.5) * grain;
    for (let c = 0; c < 3; c++) px[i * 3 + c] = Math.max(0, Math.min(255, Math.round(base[c]! + n)));
  }
  if (cls === 2) {
    for (let s = 0; s < 3; s++) {
      const cx = 3 + Math.floor(rnd() * (size - 6));
      const cy = 3 + Math.floor(rnd() * (size - 6));
      for (let y = cy - 1; y <= cy + 1; y++) for (let x = cx - 1; x <= cx + 1; x++) px.fill(250, (y * size + x) * 3, (y * size + x) * 3 + 3);
    }
  }
  return px;
}

export interface SplitSpec {
  /** Class of each image, in row order. */
  labels: (number | undefined)[];
  seed?: number;
}

/** Write `<dir>/<split>/` (images.u8, index.jsonl, meta.json) with textureImage rows. */
export async function writeSplit(dir: string, split: string, spec: SplitSpec, size = 32, task = 'classification', classNames = CLASS_NAMES): Promise<void> {
  const n = spec.labels.length;
  const writer = await ImageTensorWriter.create(join(dir, split), {
    split,
    count: n,
    shape: [n, size, size, 3],
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
    resize: 'fill',
    task,
    classNames,
  });
  const items: ImageIndexItem[] = [];
  for (let row = 0; row < n; row++) {
    const label = spec.labels[row];
    await writer.writeRow(row, textureImage(label ?? 0, (spec.seed ?? 1) * 1000 + row, size));
    items.push({
      id: `${split}-${row}`,
      row,
      file: `${split}/images/img-${row}.jpg`,
      ...(label !== undefined ? { label } : {}),
      width: size,
      height: size,
      scale: [1, 1],
      pad: [0, 0],
      sha256: String(row).padStart(64, '0'),
    });
  }
  await writer.close(items);
}

/** `perClass` images of each listed class, interleaved. */
export function labels(perClass: number, classes: readonly number[] = [0, 1, 2]): number[] {
  const out: number[] = [];
  for (let i = 0; i < perClass; i++) out.push(...classes);
  return out;
}

/** A prepared classification folder: train and val splits (and test, as prepare-data writes). */
export async function writePrepared(dir: string, o: { train?: (number | undefined)[]; val?: (number | undefined)[]; size?: number } = {}): Promise<void> {
  await writeSplit(dir, 'train', { labels: o.train ?? labels(12), seed: 1 }, o.size);
  await writeSplit(dir, 'val', { labels: o.val ?? labels(6), seed: 2 }, o.size);
  await writeSplit(dir, 'test', { labels: labels(2), seed: 3 }, o.size);
}

/** A prepared detection folder (letterbox, boxes [class, x1, y1, x2, y2]): one coloured square per image. */
export async function writeDetectionPrepared(dir: string, size = 48, perSplit: Record<string, number> = { train: 12, val: 6, test: 2 }): Promise<void> {
  const colours = [
    [225, 40, 40],
    [40, 200, 60],
  ];
  for (const [split, n] of Object.entries(perSplit)) {
    const writer = await ImageTensorWriter.create(join(dir, split), {
      split,
      count: n,
      shape: [n, size, size, 3],
      mean: [...IMAGENET_MEAN],
      std: [...IMAGENET_STD],
      resize: 'letterbox',
      padValue: 114,
      task: 'detection',
      classNames: ['Red', 'Green'],
    });
    const rnd = lcg(n * 31 + split.length);
    const items: ImageIndexItem[] = [];
    for (let row = 0; row < n; row++) {
      const px = new Uint8Array(size * size * 3).fill(120);
      const cls = row % 2;
      const side = 12 + Math.floor(rnd() * 8);
      const x1 = Math.floor(rnd() * (size - side));
      const y1 = Math.floor(rnd() * (size - side));
      for (let y = y1; y < y1 + side; y++) for (let x = x1; x < x1 + side; x++) px.set(colours[cls]!, (y * size + x) * 3);
      await writer.writeRow(row, px);
      items.push({ id: `${split}-${row}`, row, file: `${split}/images/d-${row}.jpg`, boxes: [[cls, x1, y1, x1 + side, y1 + side]], width: size, height: size, scale: [1, 1], pad: [0, 0], sha256: String(row).padStart(64, '0') });
    }
    await writer.close(items);
  }
}
