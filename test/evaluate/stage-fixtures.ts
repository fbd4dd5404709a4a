// Tiny prepared splits, hand-built ONNX models with cards, and temp repositories for the evaluate stage tests.

import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { FEATURES } from '../../pipeline/data/fusion/schema.ts';
import { letterboxGeometry } from '../../pipeline/data/images/letterbox.ts';
import { ImageTensorWriter, type ImageIndexItem } from '../../pipeline/data/images/tensor-file.ts';
import { LocalCache, toCachedOut } from '../../pipeline/engine/cache.ts';
import { hashTree } from '../../pipeline/engine/hash.ts';
import { canonicalJson, renderLock } from '../../pipeline/engine/lock.ts';
import { sha256 } from '../../pipeline/core/fs.ts';
import { detectorBias, detectorModel, saveWithCard, skinTypeModel, tabularSoftmaxModel } from '../inference/models.ts';

const exec = promisify(execFile);

export const SKIN = ['Dry', 'Normal', 'Oily'];
export const DETECTOR = ['Acne', 'Blackheads', 'Dark-Spots', 'Dry-Skin', 'Englarged-Pores', 'Eyebags', 'Oily-Skin', 'Skin-Redness', 'Whiteheads', 'Wrinkles'];
export const MEAN = [0.5, 0.5, 0.5];
export const STD = [0.25, 0.25, 0.25];
export const SIZE = 8;

/**
 * The classifier's class scores are W·m + B with m the image's mean normalised pixel:
 * v = 0 (m = −2) → Dry, v = 128 (m ≈ 0) → Normal, v = 255 (m = 2) → Oily.
 */
export const W = [-4, 0, 4];
export const B = [0, 1, 0];

export interface ClsRow {
  /** Grey level of the whole image. */
  v: number;
  /** True class index. */
  label: number;
  skin_tone?: string;
}

/** A prepared classification split (constant-colour rows) at `<dir>/<split>`. */
export async function classificationSplit(dir: string, rows: readonly ClsRow[], split = 'test'): Promise<void> {
  const writer = await ImageTensorWriter.create(join(dir, split), {
    split,
    count: rows.length,
    shape: [rows.length, SIZE, SIZE, 3],
    mean: MEAN,
    std: STD,
    resize: 'fill',
    task: 'classification',
    classNames: SKIN,
  });
  const items: ImageIndexItem[] = [];
  for (const [row, r] of rows.entries()) {
    await writer.writeRow(row, new Uint8Array(SIZE * SIZE * 3).fill(r.v));
    items.push({
      id: `img-${row}`,
      row,
      file: `test/images/img-${row}.jpg`,
      label: r.label,
      width: SIZE,
      height: SIZE,
      scale: [1, 1],
      pad: [0, 0],
      ...(r.skin_tone ? { skin_tone: r.skin_tone } : {}),
      source: 'synthetic',
      sha256: '',
    });
  }
  await writer.close(items);
}

/** A skin-type classifier with its card at `<dir>/model.onnx`; `bias` shifts it (a different champion). */
export async function classifierModel(dir: string, bias: number[] = B, size = SIZE): Promise<void> {
  await saveWithCard(dir, skinTypeModel({ size: 'S', bias, weight: W }), {
    task: 'image-classification',
    classes: SKIN,
    inputName: 'input',
    inputShape: ['N', 3, size, size],
    outputName: 'probs',
    outputShape: ['N', 3],
    preprocessing: { type: 'image', size, resize: 'fill', mean: MEAN, std: STD },
  });
}

export const DET_SIZE = 64;
/** Every image: an Acne box (0.9) and a Skin-Redness box (0.5); a Wrinkles one below 0.1. */
export const DET_BOXES = [
  { anchor: 0, cls: 0, score: 0.9, xywh: [20, 30, 10, 10] as [number, number, number, number] },
  { anchor: 1, cls: 7, score: 0.5, xywh: [40, 32, 10, 10] as [number, number, number, number] },
  { anchor: 2, cls: 9, score: 0.05, xywh: [10, 10, 4, 4] as [number, number, number, number] },
];

export async function detectorModelDir(dir: string): Promise<void> {
  await saveWithCard(dir, detectorModel({ size: DET_SIZE, bias: detectorBias(3, DET_BOXES), anchors: 3 }), {
    task: 'object-detection',
    classes: DETECTOR,
    inputName: 'images',
    inputShape: ['N', 3, DET_SIZE, DET_SIZE],
    outputName: 'output0',
    outputShape: ['N', 14, 3],
    preprocessing: { type: 'image', size: DET_SIZE, resize: 'letterbox', padValue: 114, mean: [0, 0, 0], std: [1, 1, 1] },
  });
}

/**
 * A prepared detection split of 128×64 originals letterboxed to 64 (scale 0.5, 16 px pad top
 * and bottom). `boxes` per image in ORIGINAL pixels: [class, x1, y1, x2, y2].
 */
export async function detectionSplit(dir: string, images: { boxes: [number, number, number, number, number][]; skin_tone?: string }[], split = 'test'): Promise<void> {
  const writer = await ImageTensorWriter.create(join(dir, split), {
    split,
    count: images.length,
    shape: [images.length, DET_SIZE, DET_SIZE, 3],
    mean: [0, 0, 0],
    std: [1, 1, 1],
    resize: 'letterbox',
    padValue: 114,
    task: 'detection',
    classNames: DETECTOR,
  });
  const g = letterboxGeometry(128, 64, DET_SIZE);
  const items: ImageIndexItem[] = [];
  for (const [row, img] of images.entries()) {
    await writer.writeRow(row, new Uint8Array(DET_SIZE * DET_SIZE * 3).fill(60 + 40 * row));
    items.push({
      id: `det-${row}`,
      row,
      file: `test/images/det-${row}.jpg`,
      boxes: img.boxes.map(([c, x1, y1, x2, y2]) => [c, x1 * g.scale[0] + g.pad[0], y1 * g.scale[1] + g.pad[1], x2 * g.scale[0] + g.pad[0], y2 * g.scale[1] + g.pad[1]]),
      width: 128,
      height: 64,
      scale: g.scale,
      pad: [g.pad[0], g.pad[1]],
      ...(img.skin_tone ? { skin_tone: img.skin_tone } : {}),
      source: 'synthetic',
      sha256: '',
    });
  }
  await writer.close(items);
}

export const TAB_CLASSES = [
  { id: 3, name: '3' },
  { id: 17, name: '17' },
  { id: 42, name: '42' },
];

/**
 * A context-correction stand-in on the 27 fusion features: class 17 when tr_p0 is high, 42 for
 * oily skin, else 3 (Softmax of a linear layer).
 */
export async function tabularModelDir(dir: string, scale = 10): Promise<void> {
  const f = FEATURES.length;
  const weight = new Array(f * 3).fill(0);
  const at = (name: string, k: number, v: number): void => void (weight[FEATURES.indexOf(name) * 3 + k] = v);
  at('tr_p0', 1, scale);
  at('skin_type_Oily', 2, scale / 2);
  await saveWithCard(dir, tabularSoftmaxModel({ features: f, classes: 3, weight, bias: [scale / 4, 0, 0] }), {
    task: 'tabular-classification',
    classes: TAB_CLASSES,
    inputName: 'input',
    inputShape: ['N', f],
    outputName: 'probabilities',
    outputShape: ['N', 3],
    features: [...FEATURES],
    preprocessing: { type: 'numeric', target: 'target' },
  });
}

/** A prepared fusion test split: rows of the 27 features and a target. */
export async function tabularSplit(dir: string, rows: { tr0: number; skin: 'Dry' | 'Oily' | 'Combination'; target: number }[]): Promise<void> {
  await mkdir(dir, { recursive: true });
  const lines = [[...FEATURES, 'target'].join(',')];
  for (const r of rows) {
    const cells = FEATURES.map((f) => {
      if (f === 'tr_p0') return String(r.tr0);
      if (f === 'age') return '30';
      if (f === `skin_type_${r.skin}`) return '1';
      return '0';
    });
    lines.push([...cells, String(r.target)].join(','));
  }
  await writeFile(join(dir, 'test.csv'), lines.join('\n') + '\n');
}

async function git(root: string, ...args: string[]): Promise<void> {
  await exec('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', '-c', 'commit.gpgsign=false', ...args], { cwd: root });
}

/**
 * Make `root` a git repository whose `main` has a pipeline.lock naming `modelDir` (as it is on
 * disk now) as the out of `stage`, with the tree stored in the local cache like a real run would.
 */
export async function commitChampion(root: string, modelDir: string, stage = 'train-skin-type'): Promise<string> {
  const tree = (await hashTree(join(root, modelDir)))!;
  const cache = new LocalCache(join(root, '.skintwin/cache'));
  await cache.storeTree(join(root, modelDir), tree);
  const entry = { kind: 'train', code: 'c'.repeat(64), params: { hash: 'p'.repeat(64), values: {} }, deps: {}, outs: { [modelDir]: { hash: tree.hash, files: tree.files.length, bytes: tree.bytes } } };
  const key = sha256(canonicalJson({ kind: entry.kind, code: entry.code, params: entry.params.hash, deps: entry.deps, outs: [modelDir] }));
  await cache.writeRun(key, { version: 1, stage, kind: 'train', outs: { [modelDir]: toCachedOut(tree) } });
  await mkdir(join(root, 'pipeline'), { recursive: true });
  await writeFile(join(root, 'pipeline/pipeline.lock'), renderLock({ schema: 1, stages: { [stage]: entry } }));
  await writeFile(join(root, '.gitignore'), 'models/\ndata/\nreports/\n.skintwin/\n');
  await git(root, 'init', '-q', '-b', 'main');
  await git(root, 'add', '.gitignore', 'pipeline/pipeline.lock');
  await git(root, 'commit', '-q', '-m', 'champion');
  return tree.hash;
}
