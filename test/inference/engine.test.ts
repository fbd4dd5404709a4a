import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { letterboxGeometry } from '../../pipeline/data/images/letterbox.ts';
import { ImageTensorWriter, openImageTensorFile, type ImageIndexItem } from '../../pipeline/data/images/tensor-file.ts';
import {
  classifyPrepared,
  classifyRows,
  detectPrepared,
  openModel,
  runModelsOnImages,
  runOnImages,
  type ImageFile,
  type OpenedModel,
} from '../../pipeline/inference/engine.ts';
import { picture } from '../support/pictures.ts';
import { RecordingLogger } from '../support/logger.ts';
import { detectorBias, detectorModel, saveWithCard, save, skinTypeModel, tabularSoftmaxModel } from './models.ts';

// The engine over tiny hand-built models: a classifier whose logits follow the image's mean,
// a YOLO-layout detector with constant boxes, a softmax-regression tabular model. Expected values
// are computed by hand from the pixels.

let root: string;
const logger = new RecordingLogger();
const opened: OpenedModel[] = [];
const CLASSES = ['Dry', 'Normal', 'Oily'];
const MEAN = [0.5, 0.5, 0.5];
const STD = [0.25, 0.25, 0.25];
const DETECTOR_NAMES = ['Acne', 'Blackheads', 'Dark-Spots', 'Dry-Skin', 'Englarged-Pores', 'Eyebags', 'Oily-Skin', 'Skin-Redness', 'Whiteheads', 'Wrinkles'];
const W = [0.5, -1, 2];
const B = [0.2, 1.2, -0.4];

/** Everything an async iterable gives (Array.fromAsync is not in Node 20). */
async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

function softmax(z: number[]): number[] {
  const m = Math.max(...z);
  const e = z.map((v) => Math.exp(v - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

/** The classifier's probabilities for an image whose normalised pixels average `m`. */
function expectedProbs(m: number): number[] {
  return softmax(W.map((w, k) => Math.fround(w) * m + Math.fround(B[k]!)));
}

const normalised = (v: number): number => (v / 255 - 0.5) / 0.25;

async function open(path: string, display: string): Promise<OpenedModel> {
  const m = await openModel(path, display, { logger, threads: 1 });
  opened.push(m);
  return m;
}

async function classifier(size = 16): Promise<string> {
  return saveWithCard(join(root, `classifier-${size}`), skinTypeModel({ size: 'S', bias: B, weight: W }), {
    task: 'image-classification',
    classes: CLASSES,
    inputName: 'input',
    inputShape: ['N', 3, size, size],
    outputName: 'probs',
    outputShape: ['N', 3],
    preprocessing: { type: 'image', size, resize: 'fill', mean: MEAN, std: STD },
  });
}

const BOXES = [
  { anchor: 0, cls: 0, score: 0.9, xywh: [20, 30, 10, 10] as [number, number, number, number] },
  { anchor: 1, cls: 0, score: 0.8, xywh: [21, 30, 10, 10] as [number, number, number, number] }, // suppressed by anchor 0
  { anchor: 2, cls: 7, score: 0.5, xywh: [32, 32, 10, 10] as [number, number, number, number] },
  { anchor: 3, cls: 9, score: 0.05 }, // below 0.1
];

async function detector(): Promise<string> {
  return saveWithCard(join(root, 'detector'), detectorModel({ size: 64, bias: detectorBias(4, BOXES), anchors: 4 }), {
    task: 'object-detection',
    classes: DETECTOR_NAMES,
    inputName: 'images',
    inputShape: ['N', 3, 64, 64],
    outputName: 'output0',
    outputShape: ['N', 14, 4],
    preprocessing: { type: 'image', size: 64, resize: 'letterbox', padValue: 114, mean: [0, 0, 0], std: [1, 1, 1] },
  });
}

/** A prepared split of `values.length` constant-colour rows (value v on every channel). */
async function preparedSplit(name: string, size: number, values: number[], o: { resize: 'fill' | 'letterbox'; mean: number[]; std: number[]; geometry?: { width: number; height: number } }) {
  const dir = join(root, name);
  const writer = await ImageTensorWriter.create(join(dir, 'test'), {
    split: 'test',
    count: values.length,
    shape: [values.length, size, size, 3],
    mean: o.mean,
    std: o.std,
    resize: o.resize,
    task: 'classification',
    classNames: CLASSES,
  });
  const items: ImageIndexItem[] = [];
  for (const [row, v] of values.entries()) {
    await writer.writeRow(row, new Uint8Array(size * size * 3).fill(v));
    const w = o.geometry?.width ?? size;
    const h = o.geometry?.height ?? size;
    const g = letterboxGeometry(w, h, size);
    items.push({ id: `r${row}`, row, file: `r${row}.png`, width: w, height: h, scale: g.scale, pad: [g.pad[0], g.pad[1]], sha256: '' });
  }
  await writer.close(items);
  return openImageTensorFile(dir, 'test');
}

/** A constant-colour PNG (lossless: every pixel is exactly `v` after any resize). */
async function png(path: string, w: number, h: number, v: number): Promise<string> {
  const { default: sharp } = await import('sharp');
  await writeFile(path, await sharp(Buffer.alloc(w * h * 3, v), { raw: { width: w, height: h, channels: 3 } }).png().toBuffer());
  return path;
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'engine-'));
}, 30_000);
afterAll(async () => {
  for (const m of opened) await m.close();
  await rm(root, { recursive: true, force: true });
});

describe('openModel', () => {
  it('opens a model with its card and says which provider runs it', async () => {
    const path = await classifier();
    const m = await open(path, 'models/c/model.onnx');
    expect(m.card.classes.map((c) => c.name)).toEqual(CLASSES);
    expect(m.cardDisplay).toBe('models/c/model-card.json');
    expect(logger.messages('info').join('\n')).toMatch(/models\/c\/model\.onnx: onnxruntime CPU, 1 thread/);
  });

  it('refuses a model whose input is not what its card says, naming the model, the card and both shapes', async () => {
    // The card promises 224² images; the model takes 320².
    const path = await saveWithCard(join(root, 'mismatch'), skinTypeModel({ size: 320, bias: B }), {
      task: 'image-classification',
      classes: CLASSES,
      inputName: 'input',
      inputShape: ['N', 3, 224, 224],
      outputName: 'probs',
      outputShape: ['N', 3],
      preprocessing: { type: 'image', size: 224, resize: 'fill', mean: MEAN, std: STD },
    });
    await expect(openModel(path, 'models/m/model.onnx', { logger })).rejects.toMatchObject({
      name: 'ConfigurationError',
      message: expect.stringMatching(/models\/m\/model\.onnx.*input `input` has shape \[batch, 3, 320, 320\], expected \[\?, 3, 224, 224\] by models\/m\/model-card\.json/),
    });
  });

  it('refuses a model whose outputs are not what its card says', async () => {
    const bytes = skinTypeModel({ size: 16, bias: B });
    const base = { task: 'image-classification' as const, classes: CLASSES, inputName: 'input', inputShape: ['N', 3, 16, 16], preprocessing: { type: 'image' as const, size: 16, resize: 'fill' as const, mean: MEAN, std: STD } };
    const noSuch = await saveWithCard(join(root, 'out-name'), bytes, { ...base, outputName: 'scores', outputShape: ['N', 3] });
    await expect(openModel(noSuch, 'models/o/model.onnx', { logger })).rejects.toThrow(/models\/o\/model\.onnx has no output `scores` \(named by models\/o\/model-card\.json\); its outputs: probs \[batch, 3\]/);
    const wrong = await saveWithCard(join(root, 'out-shape'), bytes, { ...base, classes: [...CLASSES, 'Combination'], outputName: 'probs', outputShape: ['N', 4] });
    await expect(openModel(wrong, 'models/o/model.onnx', { logger })).rejects.toThrow(/output `probs` is float32 \[batch, 3\], models\/o\/model-card\.json says float32 \[N, 4\]/);
  });

  it('refuses a model whose sha256 is not its card\'s (a swapped file)', async () => {
    const path = await saveWithCard(join(root, 'swapped'), skinTypeModel({ size: 16, bias: B }), {
      task: 'image-classification', classes: CLASSES, inputName: 'input', inputShape: ['N', 3, 16, 16], outputName: 'probs', outputShape: ['N', 3],
      preprocessing: { type: 'image', size: 16, resize: 'fill', mean: MEAN, std: STD },
    }, 'ab'.repeat(32));
    await expect(openModel(path, 'models/s/model.onnx', { logger })).rejects.toMatchObject({
      name: 'DataError',
      message: expect.stringMatching(/^models\/s\/model\.onnx: sha256 [0-9a-f]{64} does not match models\/s\/model-card\.json \(abab/),
    });
  });

  it('needs a card unless a role stands in for it', async () => {
    const path = await save(join(root, 'bare.onnx'), skinTypeModel({ size: 32, bias: B }));
    await expect(openModel(path, 'models/bare.onnx', { logger })).rejects.toThrow(/models\/model-card\.json: no model card next to the model/);
    const m = await openModel(path, 'models/bare.onnx', { logger, role: 'skin-type' });
    opened.push(m);
    expect(m.cardDisplay).toBeNull();
    expect(m.card.preprocessing).toMatchObject({ type: 'image', size: 32, resize: 'fill', mean: [0.485, 0.456, 0.406] });
    expect(m.card.classes.map((c) => c.name)).toEqual(CLASSES);
  });
});

describe('prepared splits', () => {
  it('classifies every row, or the rows asked for, in batches (the last one short)', async () => {
    const m = await open(await classifier(), 'models/c/model.onnx');
    const values = [0, 40, 128, 200, 255];
    const file = await preparedSplit('prep-c', 16, values, { resize: 'fill', mean: MEAN, std: STD });
    try {
      const probs = await classifyPrepared(m, file, { logger, batchSize: 2 });
      expect(probs).toBeInstanceOf(Float32Array);
      expect(probs.length).toBe(15);
      values.forEach((v, r) => {
        const want = expectedProbs(normalised(v));
        for (let k = 0; k < 3; k++) expect(probs[r * 3 + k]).toBeCloseTo(want[k]!, 5);
      });
      const some = await classifyPrepared(m, file, { logger, batchSize: 4, rows: [4, 1] });
      expect(Array.from(some)).toEqual([...probs.subarray(12, 15), ...probs.subarray(3, 6)]);
    } finally {
      await file.close();
    }
  });

  it('refuses a split prepared differently from the card (size, normalisation)', async () => {
    const m = await open(await classifier(), 'models/c/model.onnx');
    const big = await preparedSplit('prep-big', 24, [10], { resize: 'fill', mean: MEAN, std: STD });
    const imagenet = await preparedSplit('prep-inet', 16, [10], { resize: 'fill', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] });
    try {
      await expect(classifyPrepared(m, big, { logger })).rejects.toThrow(/prepared split `test` holds 24×24 images; model models\/c\/model\.onnx takes 16×16/);
      await expect(classifyPrepared(m, imagenet, { logger })).rejects.toThrow(/mean \[0\.485, 0\.456, 0\.406\].*expects fill, mean \[0\.5, 0\.5, 0\.5\]/);
    } finally {
      await big.close();
      await imagenet.close();
    }
  });

  it('detects boxes in original pixels: threshold, per-class NMS, letterbox undone', async () => {
    const m = await open(await detector(), 'models/d/model.onnx');
    // Originals 320×160: letterboxed to 64 with scale 0.2 and 16 px of padding top and bottom.
    const file = await preparedSplit('prep-d', 64, [50, 90, 130], { resize: 'letterbox', mean: [0, 0, 0], std: [1, 1, 1], geometry: { width: 320, height: 160 } });
    try {
      const dets = await detectPrepared(m, file, { logger, batchSize: 2 });
      expect(dets).toHaveLength(3);
      for (const d of dets) {
        expect(d.map((x) => x.cls)).toEqual([0, 7]);
        expect(d[0]!.confidence).toBeCloseTo(0.9, 6);
        // letterbox [15, 25, 25, 35] → original ((x − 0) / 0.2, (y − 16) / 0.2)
        d[0]!.box.forEach((v, i) => expect(v).toBeCloseTo([75, 45, 125, 95][i]!, 4));
        d[1]!.box.forEach((v, i) => expect(v).toBeCloseTo([135, 55, 185, 105][i]!, 4));
      }
      const strict = await detectPrepared(m, file, { logger, confidence: 0.6, rows: [2] });
      expect(strict.map((d) => d.map((x) => x.cls))).toEqual([[0]]);
      const loose = await detectPrepared(m, file, { logger, iou: 0.9, rows: [0] });
      expect(loose[0]!.map((x) => x.cls)).toEqual([0, 0, 7]); // IoU 0.82 < 0.9: both class-0 boxes kept
    } finally {
      await file.close();
    }
  });
});

describe('image files', () => {
  it('decodes with the card\'s preprocessing and gives the raw output per image, with its geometry', async () => {
    const m = await open(await classifier(), 'models/c/model.onnx');
    const dir = join(root, 'pngs');
    await mkdir(dir, { recursive: true });
    const files = [
      { id: 'a', path: await png(join(dir, 'a.png'), 40, 30, 60) },
      { id: 'b', path: await png(join(dir, 'b.png'), 20, 50, 230) },
    ];
    const out = await collect(runOnImages(m, files, { logger }));
    expect(out.map((r) => [r.id, r.width, r.height, r.dims])).toEqual([['a', 40, 30, [3]], ['b', 20, 50, [3]]]);
    expect(out[0]!.geometry).toMatchObject({ size: 16, scale: [16 / 40, 16 / 30], pad: [0, 0, 0, 0] });
    [60, 230].forEach((v, i) => {
      const want = expectedProbs(normalised(v));
      for (let k = 0; k < 3; k++) expect(out[i]!.output[k]).toBeCloseTo(want[k]!, 5);
    });
  });

  it('runs a detector on the letterboxed image and a classifier on the stretched one from one read', async () => {
    const det = await open(await detector(), 'models/d/model.onnx');
    const cls = await open(await classifier(), 'models/c/model.onnx');
    const path = await png(join(root, 'wide.png'), 320, 160, 100);
    const [r] = await collect(runModelsOnImages([det, cls], [{ id: 'w', path }], { logger }));
    expect(r!.outputs.map((o) => o.dims)).toEqual([[14, 4], [3]]);
    expect(r!.outputs[0]!.geometry).toMatchObject({ size: 64, pad: [0, 16, 0, 16] });
    expect(r!.outputs[1]!.geometry).toMatchObject({ size: 16, pad: [0, 0, 0, 0] });
    expect(r!.outputs[0]!.output[4 * 4 + 0]).toBeCloseTo(0.9, 6); // anchor 0, class 0
  });

  it('gives the same results, in input order, with decoding overlapped as one image at a time', async () => {
    const m = await open(await classifier(24), 'models/c24/model.onnx');
    const { default: sharp } = await import('sharp');
    const dir = join(root, 'mixed');
    await mkdir(dir, { recursive: true });
    // Large and tiny JPEGs interleaved: decodes finish out of order.
    const files: ImageFile[] = [];
    for (let i = 0; i < 11; i++) {
      const [w, h] = i % 3 === 0 ? [480, 360] : [48, 36];
      const path = join(dir, `${i}.jpg`);
      await writeFile(path, await sharp(picture(w, h, i + 1), { raw: { width: w, height: h, channels: 3 } }).jpeg().toBuffer());
      files.push({ id: `img${i}`, path });
    }
    const run = async (o: { batchSize: number; ahead: number; decodeConcurrency: number }) =>
      (await collect(runOnImages(m, files, { logger, ...o }))).map((r) => [r.id, Array.from(r.output)]);
    const sequential = await run({ batchSize: 1, ahead: 0, decodeConcurrency: 1 });
    const overlapped = await run({ batchSize: 4, ahead: 2, decodeConcurrency: 3 });
    const here = (await collect(runOnImages(m, files, { logger, batchSize: 4, sessionThread: false }))).map((r) => [r.id, Array.from(r.output)]);
    expect(sequential.map((r) => r[0])).toEqual(files.map((f) => f.id));
    expect(overlapped).toEqual(sequential);
    expect(here).toEqual(sequential); // the session thread runs the same model as this thread
    expect(new Set(sequential.map((r) => (r[1] as number[])[0]!.toFixed(6))).size).toBeGreaterThan(5); // outputs follow the pixels
  });

  it('decodes at most `ahead` batches beyond the one being used, and does so while it is used', async () => {
    const m = await open(await classifier(), 'models/c/model.onnx');
    const path = await png(join(root, 'one.png'), 20, 20, 77);
    let pulled = 0;
    let sixth!: () => void;
    const sixthPulled = new Promise<void>((r) => (sixth = r));
    async function* source(): AsyncGenerator<ImageFile> {
      for (let i = 0; i < 20; i++) {
        pulled++;
        if (pulled === 6) sixth();
        yield { id: `i${i}`, path };
      }
    }
    const it = runOnImages(m, source(), { logger, batchSize: 2, ahead: 2, decodeConcurrency: 2 });
    const first = await it.next();
    expect(first.value?.id).toBe('i0');
    // Holding batch 0: batches 1 and 2 (items 2..5) are taken and decoded meanwhile, and no more.
    await sixthPulled;
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(pulled).toBe(6);
    const rest: string[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value.id);
    expect(rest).toEqual(Array.from({ length: 19 }, (_, i) => `i${i + 1}`));
  });

  it('refuses to start a session thread on a model file replaced after it was opened', async () => {
    const path = await classifier(12);
    const m = await open(path, 'models/c12/model.onnx');
    await writeFile(path, skinTypeModel({ size: 'S', bias: [9, 9, 9], weight: W }));
    const png1 = await png(join(root, 'c12.png'), 20, 20, 5);
    await expect(collect(runOnImages(m, [{ id: 'a', path: png1 }], { logger }))).rejects.toMatchObject({
      name: 'DataError',
      message: 'models/c12/model.onnx: the model file changed after it was opened',
    });
  });

  it('stops when its signal is aborted', async () => {
    const m = await open(await classifier(), 'models/c/model.onnx');
    const path = await png(join(root, 'abort.png'), 20, 20, 33);
    const files = Array.from({ length: 12 }, (_, i) => ({ id: `a${i}`, path }));
    const controller = new AbortController();
    const seen: string[] = [];
    const run = async () => {
      for await (const r of runOnImages(m, files, { logger, batchSize: 2, signal: controller.signal })) {
        seen.push(r.id);
        if (seen.length === 3) controller.abort(new Error('stop here'));
      }
    };
    await expect(run()).rejects.toThrow('stop here');
    expect(seen).toEqual(['a0', 'a1', 'a2']);
  });

  it('names an image that cannot be decoded, or leaves it out and reports it', async () => {
    const m = await open(await classifier(), 'models/c/model.onnx');
    const good = await png(join(root, 'good.png'), 20, 20, 10);
    const broken = join(root, 'broken.jpg');
    await writeFile(broken, Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 1, 2, 3]));
    const files = [{ id: 'g1', path: good }, { id: 'x', path: broken }, { id: 'g2', path: good }];
    await expect(collect(runOnImages(m, files, { logger }))).rejects.toMatchObject({ name: 'DataError', message: expect.stringContaining(`${broken}: cannot decode image`) });
    const left: string[] = [];
    const out = await collect(runOnImages(m, files, { logger, onUnreadable: (f) => left.push(f.id) }));
    expect(out.map((r) => r.id)).toEqual(['g1', 'g2']);
    expect(left).toEqual(['x']);
  });
});

describe('feature rows', () => {
  it('runs a tabular model over rows in chunks and refuses an image model', async () => {
    // 2 features, 3 classes: z = x · W + b.
    const weight = [1, 0, -1, 0.5, 2, 0];
    const bias = [0, 0.1, 0.2];
    const path = await saveWithCard(join(root, 'tabular'), tabularSoftmaxModel({ features: 2, classes: 3, weight, bias }), {
      task: 'tabular-classification',
      classes: [{ id: 4, name: '4' }, { id: 7, name: '7' }, { id: 9, name: '9' }],
      inputName: 'input',
      inputShape: ['N', 2],
      outputName: 'probabilities',
      outputShape: ['N', 3],
      features: ['age', 'sleep_hours'],
    });
    const m = await open(path, 'models/t/model.onnx');
    const x = Float32Array.from([1, 2, 0, 0, -1, 3]);
    const probs = await classifyRows(m, x, 3, { logger, batchSize: 2 });
    for (let r = 0; r < 3; r++) {
      const [a, b] = [x[2 * r]!, x[2 * r + 1]!];
      const want = softmax([0, 1, 2].map((k) => a * Math.fround(weight[k]!) + b * Math.fround(weight[3 + k]!) + Math.fround(bias[k]!)));
      for (let k = 0; k < 3; k++) expect(probs[r * 3 + k]).toBeCloseTo(want[k]!, 5);
    }
    await expect(classifyRows(m, x, 2, { logger })).rejects.toThrow(/6 values for 2 rows of 2 features/);
    const image = await open(await classifier(), 'models/c/model.onnx');
    await expect(classifyRows(image, x, 3, { logger })).rejects.toThrow(/models\/c\/model\.onnx is an image-classification model: it takes images, not feature rows/);
    await expect(collect(runOnImages(m, [], { logger }))).rejects.toThrow(/is a tabular-classification model: it takes feature rows, not images/);
  });
});
