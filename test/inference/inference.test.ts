import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { letterboxGeometry } from '../../pipeline/data/images/letterbox.ts';
import { decodeDetections, detectorClassScores, splitDetectorBatch, type DetectorOutput } from '../../pipeline/inference/detector.ts';
import { fixedBatch, fixedImageSize, loadModel } from '../../pipeline/inference/session.ts';
import { isProbabilities, skinTypeBatch, skinTypeLabel, skinTypeProbabilities, softmax } from '../../pipeline/inference/skin-type.ts';
import { RecordingLogger } from '../support/logger.ts';
import { detectorBias, detectorModel, save, skinTypeModel, tabularModel } from './models.ts';

/** A `[4 + nc, A]` output with the given (anchor, class, score) entries. */
function output(anchors: number, boxes: { anchor: number; cls: number; score: number; xywh?: [number, number, number, number] }[], nc = 10): DetectorOutput {
  return { data: Float32Array.from(detectorBias(anchors, boxes, nc)), channels: 4 + nc, anchors };
}

describe('detector per-class scores (the original chain)', () => {
  it('takes the max confidence per class and divides by the sum', () => {
    const out = output(6, [
      { anchor: 0, cls: 2, score: 0.5 },
      { anchor: 1, cls: 2, score: 0.25 }, // lower box of the same class: ignored
      { anchor: 2, cls: 5, score: 0.75 },
      { anchor: 3, cls: 9, score: 0.25 },
      { anchor: 4, cls: 9, score: 0.05 }, // below 0.1
    ]);
    const p = detectorClassScores(out);
    // max: c2 0.5, c5 0.75, c9 0.25; sum 1.5
    const expected = [0, 0, 0.5 / 1.5, 0, 0, 0.75 / 1.5, 0, 0, 0, 0.25 / 1.5];
    expect(Array.from(p)).toEqual(expected);
    expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
  });

  it('gives a box the class of its highest score, with that score as its confidence', () => {
    const out = output(1, [{ anchor: 0, cls: 3, score: 0.4 }]);
    out.data[(4 + 7) * 1 + 0] = 0.6; // the same anchor scores 0.6 for class 7
    const p = detectorClassScores(out);
    expect(p[7]).toBe(1);
    expect(p[3]).toBe(0);
  });

  it('keeps a box scoring exactly 0.1 and drops one just below (float32)', () => {
    const justBelow = new Float32Array([0.1]);
    const below = new Float32Array(1);
    below[0] = justBelow[0]! - 2 ** -27; // next float32 under 0.1
    expect(below[0]).toBeLessThan(Math.fround(0.1));
    const kept = detectorClassScores(output(2, [{ anchor: 0, cls: 4, score: 0.1 }]));
    expect(Array.from(kept)).toEqual([0, 0, 0, 0, 1, 0, 0, 0, 0, 0]);
    const dropped = detectorClassScores(output(2, [{ anchor: 0, cls: 4, score: below[0]! }]));
    expect(Array.from(dropped)).toEqual(new Array(10).fill(0));
  });

  it('is all zeros when every box is below the threshold, or there are none', () => {
    expect(Array.from(detectorClassScores(output(3, [{ anchor: 0, cls: 1, score: 0.09 }, { anchor: 2, cls: 8, score: 0.05 }])))).toEqual(new Array(10).fill(0));
    expect(Array.from(detectorClassScores(output(0, [])))).toEqual(new Array(10).fill(0));
  });

  it('honours another threshold and reads each image of a batch at its offset', () => {
    const a = detectorBias(2, [{ anchor: 0, cls: 0, score: 0.3 }]);
    const b = detectorBias(2, [{ anchor: 1, cls: 6, score: 0.2 }, { anchor: 0, cls: 1, score: 0.6 }]);
    const [oa, ob] = splitDetectorBatch(Float32Array.from([...a, ...b]), [2, 14, 2]);
    expect(Array.from(detectorClassScores(oa!))).toEqual([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(detectorClassScores(ob!, 0.25))).toEqual([0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
    const both = detectorClassScores(ob!);
    expect(both[1]).toBeCloseTo(0.6 / 0.8, 6);
    expect(both[6]).toBeCloseTo(0.2 / 0.8, 6);
    expect(() => splitDetectorBatch(new Float32Array(3), [1, 3])).toThrow(/expected \[batch, 4 \+ classes, boxes\]/);
  });
});

describe('detector boxes', () => {
  it('suppresses overlapping boxes of the same class only, and maps letterbox pixels back to the image', () => {
    // A 320×160 image letterboxed to 64: scale 0.2, 16 px pad top and bottom.
    const g = letterboxGeometry(320, 160, 64);
    expect(g.pad).toEqual([0, 16, 0, 16]);
    const out = output(4, [
      { anchor: 0, cls: 0, score: 0.9, xywh: [20, 30, 10, 10] },
      { anchor: 1, cls: 0, score: 0.8, xywh: [21, 30, 10, 10] }, // IoU 0.82 with anchor 0: suppressed
      { anchor: 2, cls: 1, score: 0.7, xywh: [21, 30, 10, 10] }, // other class: kept
      { anchor: 3, cls: 2, score: 0.05, xywh: [40, 40, 4, 4] }, // below threshold
    ]);
    const d = decodeDetections(out, { mapping: g, width: 320, height: 160 });
    expect(d.map((x) => [x.cls, x.confidence])).toEqual([
      [0, Math.fround(0.9)],
      [1, Math.fround(0.7)],
    ]);
    // (15, 25)–(25, 35) in letterbox pixels → ((15)/0.2, (25−16)/0.2) …
    expect(d[0]!.box.map((v) => Math.round(v * 1000) / 1000)).toEqual([75, 45, 125, 95]);
  });

  it('clips to the image and caps the number of boxes', () => {
    const g = letterboxGeometry(64, 64, 64);
    const out = output(3, [
      { anchor: 0, cls: 0, score: 0.9, xywh: [2, 2, 10, 10] },
      { anchor: 1, cls: 1, score: 0.8, xywh: [50, 50, 4, 4] },
      { anchor: 2, cls: 2, score: 0.7, xywh: [10, 50, 4, 4] },
    ]);
    const d = decodeDetections(out, { mapping: g, width: 64, height: 64, maxDetections: 2 });
    expect(d).toHaveLength(2);
    expect(d[0]!.box).toEqual([0, 0, 7, 7]);
  });
});

describe('skin-type probabilities', () => {
  it('keeps probabilities and applies softmax to logits', () => {
    expect(Array.from(skinTypeProbabilities([0.2, 0.5, 0.3]))).toEqual([0.2, 0.5, 0.3].map((x) => x));
    const e = [Math.exp(1), Math.exp(2), Math.exp(3)];
    const s = e[0]! + e[1]! + e[2]!;
    const p = skinTypeProbabilities([1, 2, 3]);
    p.forEach((v, i) => expect(v).toBeCloseTo(e[i]! / s, 12));
    // Sums to 1 but has a negative value: logits, not probabilities.
    expect(isProbabilities([1.5, -0.5, 0])).toBe(false);
    expect(Array.from(softmax([1000, 1000, 1000]))).toEqual([1 / 3, 1 / 3, 1 / 3]);
    expect(skinTypeLabel(p)).toBe('Oily');
    expect(() => skinTypeProbabilities([0.5, 0.5])).toThrow(/expected 3 \(Dry, Normal, Oily\)/);
  });

  it('splits a batched output per image', () => {
    const rows = skinTypeBatch(Float32Array.from([0.25, 0.5, 0.25, 0, 0, 0]), [2, 3]);
    expect(Array.from(rows[0]!)).toEqual([0.25, 0.5, 0.25]);
    expect(Array.from(rows[1]!)).toEqual([1 / 3, 1 / 3, 1 / 3]);
  });
});

describe('model sessions', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'inference-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads on CPU, says so, and runs a constant detector to the hand-computed scores', async () => {
    const bias = detectorBias(5, [
      { anchor: 0, cls: 2, score: 0.5 },
      { anchor: 1, cls: 5, score: 0.3 },
      { anchor: 2, cls: 5, score: 0.6 },
      { anchor: 3, cls: 7, score: 0.1 },
      { anchor: 4, cls: 8, score: 0.09 },
    ]);
    const path = await save(join(dir, 'det.onnx'), detectorModel({ size: 32, bias, anchors: 5 }));
    const logger = new RecordingLogger();
    const m = await loadModel({ path, display: 'models/det.onnx', inputs: [{ shape: [null, 3, null, null] }], provider: 'cpu', threads: 1, logger });
    try {
      expect(m.provider).toBe('cpu');
      expect(logger.messages('info').join('\n')).toMatch(/models\/det\.onnx: onnxruntime CPU, 1 thread/);
      expect(fixedImageSize(m)).toBe(32);
      expect(fixedBatch(m)).toBeUndefined();
      const r = await m.session.run({ [m.inputNames[0]!]: m.tensor(new Float32Array(2 * 3 * 32 * 32), [2, 3, 32, 32]) });
      const t = r[m.outputNames[0]!]!;
      expect(t.dims).toEqual([2, 14, 5]);
      const [first] = splitDetectorBatch(t.data as Float32Array, t.dims);
      const p = detectorClassScores(first!);
      const sum = Math.fround(0.5) + Math.fround(0.6) + Math.fround(0.1);
      expect(Array.from(p)).toEqual([0, 0, Math.fround(0.5) / sum, 0, 0, Math.fround(0.6) / sum, 0, Math.fround(0.1) / sum, 0, 0]);
    } finally {
      await m.session.release();
    }
  });

  it('runs a Softmax classifier and a logits classifier to the same probabilities', async () => {
    const logger = new RecordingLogger();
    const x = new Float32Array(3 * 8 * 8);
    const results: number[][] = [];
    for (const logits of [false, true]) {
      const path = await save(join(dir, `sk-${logits}.onnx`), skinTypeModel({ size: 8, bias: [0.5, 2, -1], logits }));
      const m = await loadModel({ path, display: 'sk.onnx', inputs: [{ shape: [null, 3, null, null] }], provider: 'cpu', logger });
      const r = await m.session.run({ [m.inputNames[0]!]: m.tensor(x, [1, 3, 8, 8]) });
      const t = r[m.outputNames[0]!]!;
      results.push(Array.from(skinTypeBatch(t.data as Float32Array, t.dims)[0]!));
      await m.session.release();
    }
    const expected = Array.from(softmax([0.5, 2, -1]));
    results.forEach((row) => row.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 6)));
  });

  it('falls back to CPU when the CUDA provider does not start under auto, and says which provider runs', async () => {
    const path = await save(join(dir, 'cuda.onnx'), skinTypeModel({ size: 8, bias: [0, 0, 0] }));
    const logger = new RecordingLogger();
    const m = await loadModel({ path, display: 'cuda.onnx', inputs: [{ shape: [null, 3, null, null] }], logger, cudaProbe: async () => true });
    await m.session.release();
    const said = logger.messages('info', 'warn').join('\n');
    if (m.provider === 'cuda') expect(said).toMatch(/cuda\.onnx: onnxruntime CUDA/);
    else {
      expect(said).toMatch(/cuda\.onnx: CUDA execution provider did not start \(.+\); running on CPU/);
      expect(said).toMatch(/cuda\.onnx: onnxruntime CPU/);
      // Asked for explicitly, CUDA that does not start is an error, not a silent CPU run.
      await expect(loadModel({ path, display: 'cuda.onnx', inputs: [{ shape: [null, 3, null, null] }], provider: 'cuda', logger })).rejects.toMatchObject({
        name: 'ConfigurationError',
        message: expect.stringMatching(/cuda\.onnx: the CUDA execution provider did not start/),
      });
    }
    const cpu = new RecordingLogger();
    const n = await loadModel({ path, display: 'cuda.onnx', inputs: [{ shape: [null, 3, null, null] }], logger: cpu, cudaProbe: async () => false });
    await n.session.release();
    expect(n.provider).toBe('cpu');
    expect(cpu.messages('warn')).toEqual([]);
  });

  it('refuses a model whose input does not fit, naming the model file', async () => {
    const path = await save(join(dir, 'tab.onnx'), tabularModel());
    const logger = new RecordingLogger();
    await expect(
      loadModel({ path, display: 'models/skin-type/model.onnx', inputs: [{ shape: [null, 3, null, null] }], provider: 'cpu', logger }),
    ).rejects.toMatchObject({
      name: 'ConfigurationError',
      message: expect.stringMatching(/models\/skin-type\/model\.onnx: .*input `x` has shape \[batch, 4\], expected \[\?, 3, \?, \?\]/),
    });
    const sized = await save(join(dir, 'sized.onnx'), skinTypeModel({ size: 8, bias: [0, 0, 0] }));
    await expect(loadModel({ path: sized, display: 'sized.onnx', inputs: [{ shape: [null, 3, 224, 224] }], provider: 'cpu', logger })).rejects.toThrow(
      /sized\.onnx.*shape \[batch, 3, 8, 8\], expected \[\?, 3, 224, 224\]/,
    );
    await expect(loadModel({ path: join(dir, 'missing.onnx'), display: 'models/missing.onnx', inputs: [], provider: 'cpu', logger })).rejects.toMatchObject({
      name: 'DataError',
      message: expect.stringMatching(/^models\/missing\.onnx: model not found/),
    });
  });
});
