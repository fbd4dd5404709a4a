import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../../pipeline/core/fs.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../../pipeline/data/images/preprocess.ts';
import { ImageTensorWriter, openImageTensorFile, type ImageIndexItem } from '../../../pipeline/data/images/tensor-file.ts';
import { Rng } from '../../../pipeline/data/synthetic/rng.ts';
import { decodeDetections, splitDetectorBatch } from '../../../pipeline/inference/detector.ts';
import { loadModel } from '../../../pipeline/inference/session.ts';
import { readModelCard } from '../../../pipeline/train/card.ts';
import { fitDetectionHead } from '../../../pipeline/train/head/detection.ts';
import { builtinExtractor } from '../../../pipeline/train/head/extractor.ts';
import type { FeatureExtractor, HeadFitOptions, HeadParams } from '../../../pipeline/train/head/types.ts';
import { floatTensor } from '../../../pipeline/onnx/index.ts';
import { RecordingLogger } from '../../support/logger.ts';

const SIZE = 96;
const CLASSES = ['Red', 'Green', 'Blue'];
const COLOURS: [number, number, number][] = [
  [225, 40, 40],
  [40, 200, 60],
  [50, 60, 230],
];

type Box = [number, number, number, number, number];

/** A gray, noisy picture with 1–2 coloured squares (one colour per class) that do not overlap. */
function scene(rng: Rng): { pixels: Buffer; boxes: Box[] } {
  const pixels = Buffer.alloc(SIZE * SIZE * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = 110 + rng.int(30);
  const boxes: Box[] = [];
  const count = 1 + rng.int(2);
  while (boxes.length < count) {
    const side = 14 + rng.int(11);
    const x1 = rng.int(SIZE - side);
    const y1 = rng.int(SIZE - side);
    if (boxes.some((b) => x1 < b[3] + 4 && x1 + side + 4 > b[1] && y1 < b[4] + 4 && y1 + side + 4 > b[2])) continue;
    const cls = rng.int(CLASSES.length);
    const c = COLOURS[cls]!;
    for (let y = y1; y < y1 + side; y++) for (let x = x1; x < x1 + side; x++) for (let k = 0; k < 3; k++) pixels[(y * SIZE + x) * 3 + k] = c[k]! + rng.int(10);
    boxes.push([cls, x1, y1, x1 + side, y1 + side]);
  }
  return { pixels, boxes };
}

async function writeSplit(dir: string, split: string, n: number, seed: number, boxes = true): Promise<void> {
  const writer = await ImageTensorWriter.create(join(dir, split), {
    split,
    count: n,
    shape: [n, SIZE, SIZE, 3],
    mean: [...IMAGENET_MEAN],
    std: [...IMAGENET_STD],
    resize: 'letterbox',
    padValue: 114,
    task: 'detection',
    classNames: CLASSES,
  });
  const rng = new Rng(seed);
  const items: ImageIndexItem[] = [];
  for (let r = 0; r < n; r++) {
    const s = scene(rng);
    await writer.writeRow(r, s.pixels);
    items.push({ id: `${split}-${r}`, row: r, file: `${split}/${r}.png`, boxes: boxes ? s.boxes : [], width: SIZE, height: SIZE, scale: [1, 1], pad: [0, 0], sha256: 'x' });
  }
  await writer.close(items);
}

const PARAMS: HeadParams = {
  head: 'mlp',
  'hidden-units': 32,
  epochs: 60,
  'batch-size': 8,
  'head-learning-rate': 0.01,
  'weight-decay': 1e-4,
  patience: 15,
  seed: 42,
};

let root: string;
let data: string;

function options(over: Partial<HeadFitOptions> & { outDir: string }): HeadFitOptions & { logger: RecordingLogger } {
  return {
    model: 'skin-detection',
    dataDir: data,
    dataDisplay: 'data/processed/squares',
    outDisplay: 'models/skin-detection',
    params: PARAMS,
    extractor: builtinExtractor(SIZE),
    provider: 'cpu',
    trainingData: { path: 'data/processed/squares', sha256: 'a'.repeat(64), files: 3 },
    commit: null,
    now: () => new Date('2026-11-26T12:00:00Z'),
    ...over,
    logger: new RecordingLogger(),
  };
}

function iou(a: readonly number[], b: readonly number[]): number {
  const w = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!);
  const h = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  return inter / ((a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'skintwin-det-'));
  data = join(root, 'data');
  await writeSplit(data, 'train', 48, 1);
  await writeSplit(data, 'val', 12, 2);
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('fitDetectionHead', () => {
  let first: Awaited<ReturnType<typeof fitDetectionHead>>;
  const out = () => join(root, 'out');

  it('learns the squares: onnxruntime finds the validation boxes with the right class at IoU > 0.5', async () => {
    const o = options({ outDir: out() });
    first = await fitDetectionHead(o);
    expect(first.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    const card = await readModelCard(first.cardPath);
    expect(card.task).toBe('object-detection');
    expect(card.classes).toEqual(CLASSES.map((name, i) => ({ index: i, id: i, name })));
    expect(card.input).toEqual({ name: 'images', dtype: 'float32', shape: ['N', 3, SIZE, SIZE], features: [] });
    expect(card.output.detections).toEqual({ name: 'output0', dtype: 'float32', shape: ['N', 4 + CLASSES.length, (SIZE / 16) ** 2] });
    expect(card.preprocessing).toEqual({ type: 'image', size: SIZE, resize: 'letterbox', padValue: 114, mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] });
    expect(card.trainer.name).toBe('head');
    expect(card.trainer.params).toMatchObject({ head: 'mlp', 'hidden-units': 32, seed: 42 });
    expect(card.extractor?.kind).toBe('builtin');
    expect(card.metrics.validation?.rows).toBe(12);
    // mAP from the shipped model's own decoded output: high on squares, and the stricter IoUs lower.
    expect(card.metrics.validation?.map50).toBeGreaterThan(0.6);
    expect(card.metrics.validation?.map50_95).toBeLessThan(card.metrics.validation!.map50!);
    expect(card.trainingData).toMatchObject({ trainRows: 48, valRows: 12 });
    const bytes = await readFile(join(out(), 'model.onnx'));
    expect(card.onnx).toMatchObject({ file: 'model.onnx', sha256: sha256(bytes), bytes: bytes.length });
    expect(o.logger.messages('info').some((m) => /epoch 1\/60: train loss [\d.]+, validation loss [\d.]+/.test(m))).toBe(true);

    // The written model, read the way inference reads any YOLOv8 export.
    const model = await loadModel({ path: join(out(), 'model.onnx'), display: 'model.onnx', inputs: [{ name: 'images', shape: [null, 3, SIZE, SIZE] }], provider: 'cpu', logger: o.logger });
    const val = await openImageTensorFile(data, 'val');
    let found = 0;
    let total = 0;
    let falsePositives = 0;
    try {
      for await (const batch of val.batches(12)) {
        const res = await model.session.run({ images: model.tensor(batch.data, [batch.rows.length, 3, SIZE, SIZE]) });
        const t = res.output0!;
        const views = splitDetectorBatch(t.data as Float32Array, t.dims);
        views.forEach((view, k) => {
          const item = batch.items[k]!;
          const dets = decodeDetections(view, { mapping: item, width: item.width, height: item.height });
          for (const b of item.boxes!) {
            total++;
            if (dets.some((d) => d.cls === b[0] && iou(d.box, b.slice(1)) > 0.5)) found++;
          }
          falsePositives += dets.filter((d) => d.confidence > 0.5 && !item.boxes!.some((b) => b[0] === d.cls && iou(d.box, b.slice(1)) > 0.3)).length;
        });
      }
    } finally {
      await val.close();
      await model.session.release();
    }
    expect(total).toBeGreaterThan(12);
    expect(found / total).toBeGreaterThanOrEqual(0.8);
    expect(falsePositives).toBeLessThanOrEqual(3);
  });

  it('is deterministic: the same data and seed give the same model bytes', async () => {
    const again = await fitDetectionHead(options({ outDir: join(root, 'again') }));
    expect(again.onnxSha256).toBe(first.onnxSha256);
  });

  it('refuses bad input with a clear error and leaves what was written before untouched', async () => {
    const dir = join(root, 'kept');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'model.onnx'), 'previous model');
    const before = await readFile(join(dir, 'model.onnx'), 'utf8');
    const quick = { ...PARAMS, epochs: 1 };

    const empty = join(root, 'empty');
    await writeSplit(empty, 'train', 0, 3);
    await writeSplit(empty, 'val', 2, 4);
    await expect(fitDetectionHead(options({ outDir: dir, dataDir: empty, params: quick }))).rejects.toThrow(/train\/index\.jsonl: training data is empty/);

    const unlabelled = join(root, 'unlabelled');
    await writeSplit(unlabelled, 'train', 3, 5, false);
    await writeSplit(unlabelled, 'val', 2, 6);
    await expect(fitDetectionHead(options({ outDir: dir, dataDir: unlabelled, params: quick }))).rejects.toMatchObject({
      name: 'DataError',
      message: expect.stringMatching(/no boxes at all/),
    });

    // A box with x2 < x1 on the second image: named with its file line.
    const badBox = join(root, 'bad-box');
    await writeSplit(badBox, 'train', 3, 7);
    await writeSplit(badBox, 'val', 2, 8);
    const index = join(badBox, 'train', 'index.jsonl');
    const lines = (await readFile(index, 'utf8')).split('\n');
    const item = JSON.parse(lines[1]!) as ImageIndexItem;
    item.boxes![0] = [1, 50, 10, 40, 30];
    lines[1] = JSON.stringify(item);
    await writeFile(index, lines.join('\n'));
    await expect(fitDetectionHead(options({ outDir: dir, dataDir: badBox, params: quick }))).rejects.toThrow(
      /train\/index\.jsonl:2: image train-1: box 0 \[1,50,10,40,30\] is not \[class 0\.\.2, x1, y1, x2 > x1, y2 > y1\]/,
    );

    // An extractor whose features are NaN (square root of negative values).
    const ex = builtinExtractor(SIZE);
    const nan: FeatureExtractor = {
      ...ex,
      nodes: [...ex.nodes, { opType: 'Sub', inputs: [ex.output, 'nan_big'], outputs: ['nan_neg'], attributes: [] }, { opType: 'Sqrt', inputs: ['nan_neg'], outputs: ['nan_out'], attributes: [] }],
      initializers: [...ex.initializers, floatTensor('nan_big', [], [1e6])],
      output: 'nan_out',
    };
    await expect(fitDetectionHead(options({ outDir: dir, extractor: nan, params: quick }))).rejects.toMatchObject({
      name: 'DataError',
      message: expect.stringMatching(/non-finite (value|feature) \(NaN\)/),
    });

    await expect(fitDetectionHead(options({ outDir: dir, params: { ...quick, 'head-learning-rate': 0, 'batch-size': 0 } }))).rejects.toThrow(
      /2 problems:[\s\S]*batch-size[\s\S]*head-learning-rate/,
    );

    // Output under a file: refused before any training.
    await writeFile(join(root, 'a-file'), 'x');
    const blocked = options({ outDir: join(root, 'a-file', 'model'), params: quick });
    await expect(fitDetectionHead(blocked)).rejects.toMatchObject({ name: 'ConfigurationError', message: expect.stringMatching(/models\/skin-detection: cannot write the model there/) });
    expect(blocked.logger.messages('info').some((m) => m.includes('epoch'))).toBe(false);

    expect(await readFile(join(dir, 'model.onnx'), 'utf8')).toBe(before);
    await expect(readFile(join(dir, 'model-card.json'))).rejects.toThrow(/ENOENT/);
  });
});
