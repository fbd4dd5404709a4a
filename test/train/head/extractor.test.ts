import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openImageTensorFile } from '../../../pipeline/data/images/tensor-file.ts';
import { DataType, encodeModel, type OnnxModel } from '../../../pipeline/onnx/index.ts';
import {
  backboneExtractor,
  builtinChannelNames,
  builtinExtractor,
  computeFeatures,
  extractorModel,
  HEAD_OPSET,
} from '../../../pipeline/train/head/extractor.ts';
import type { FeatureMap } from '../../../pipeline/train/head/types.ts';
import { RecordingLogger } from '../../support/logger.ts';
import { labels, writeSplit } from './fixtures.ts';

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'skintwin-head-fx-'));
  await writeSplit(join(base, 'data'), 'train', { labels: labels(4), seed: 1 }, 32);
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

async function features(ex = builtinExtractor(32), o: { rows?: number[]; logger?: RecordingLogger } = {}): Promise<FeatureMap> {
  const file = await openImageTensorFile(join(base, 'data'), 'train');
  try {
    return await computeFeatures(ex, file, { provider: 'cpu', logger: o.logger ?? new RecordingLogger(), batchSize: 5, ...(o.rows ? { rows: o.rows } : {}) });
  } finally {
    await file.close();
  }
}

/** Spatial mean of channel `c` of image `i`. */
function channelMean(f: FeatureMap, i: number, c: number): number {
  const plane = f.height * f.width;
  let s = 0;
  for (let p = 0; p < plane; p++) s += f.data[(i * f.channels + c) * plane + p]!;
  return s / plane;
}

describe('built-in extractor', () => {
  it('maps [N, 3, S, S] to [N, C, S/16, S/16], deterministically, and logs the execution provider', async () => {
    const ex = builtinExtractor(32);
    expect(ex.channels).toBe(builtinChannelNames().length);
    expect(ex.channels).toBeGreaterThanOrEqual(32);
    expect(ex.channels).toBeLessThanOrEqual(64);
    expect(ex.stride).toBe(16);
    expect(ex.opset).toBe(HEAD_OPSET);
    expect(ex.record).toMatchObject({ kind: 'builtin', channels: ex.channels, stride: 16, output: ex.output });
    const logger = new RecordingLogger();
    const a = await features(ex, { logger });
    expect([a.n, a.channels, a.height, a.width]).toEqual([12, ex.channels, 2, 2]);
    expect(a.data).toHaveLength(12 * ex.channels * 4);
    expect(logger.messages('info').some((m) => /built-in feature extractor: onnxruntime CPU/.test(m))).toBe(true);
    const b = await features(builtinExtractor(32));
    expect(Buffer.from(b.data.buffer).equals(Buffer.from(a.data.buffer))).toBe(true);
    // A subset of rows gives those rows' features, in the order asked.
    const sub = await features(ex, { rows: [7, 2] });
    const per = ex.channels * 4;
    expect(Array.from(sub.data.subarray(0, per))).toEqual(Array.from(a.data.subarray(7 * per, 8 * per)));
    expect(Array.from(sub.data.subarray(per, 2 * per))).toEqual(Array.from(a.data.subarray(2 * per, 3 * per)));
  });

  it('separates the textures: fine grain raises the texture channels, bright spots the max channels', async () => {
    const f = await features();
    const names = builtinChannelNames();
    const fine = names.indexOf('luma-dog-fine-x1|');
    const bright = names.indexOf('bright-spot-x1 max');
    expect(fine).toBeGreaterThan(0);
    expect(bright).toBeGreaterThan(0);
    // Rows cycle through classes 0 (grain), 1 (flat), 2 (spots).
    const byClass = (c: number, k: number) => [0, 1, 2, 3].map((j) => channelMean(f, j * 3 + k, c));
    expect(Math.min(...byClass(fine, 0))).toBeGreaterThan(3 * Math.max(...byClass(fine, 1)));
    expect(Math.min(...byClass(bright, 2))).toBeGreaterThan(3 * Math.max(...byClass(bright, 1)));
  });

  it('rejects an image size the stride does not divide', () => {
    expect(() => builtinExtractor(40)).toThrow(/divisible by 16/);
  });
});

describe('backbone extractor', () => {
  /** The built-in extractor saved as a user's ONNX file, with a classifier-like tail after the feature map. */
  async function backboneFile(): Promise<string> {
    const ex = builtinExtractor(32);
    const model = extractorModel(ex);
    model.graph.inputs[0]!.name = 'pixel_values';
    model.graph.inputs[0]!.shape = [1, 3, 32, 32];
    for (const n of model.graph.nodes) n.inputs = n.inputs.map((i) => (i === 'images' ? 'pixel_values' : i));
    model.graph.nodes.push({ opType: 'GlobalAveragePool', inputs: [ex.output], outputs: ['pooled'], attributes: [] });
    model.graph.outputs = [{ name: 'pooled', elemType: DataType.FLOAT, shape: [1, ex.channels, 1, 1] }];
    const path = join(base, 'backbone.onnx');
    await writeFile(path, encodeModel(model));
    return path;
  }

  it('cut at a named output: only the nodes it needs, channels and stride from a zero batch, same features as the source', async () => {
    const path = await backboneFile();
    const builtin = builtinExtractor(32);
    const ex = await backboneExtractor(path, 'models/backbone.onnx', builtin.output, 32);
    expect(ex.channels).toBe(builtin.channels);
    expect(ex.stride).toBe(16);
    expect(ex.input).toBe('images');
    expect(ex.nodes.some((n) => n.outputs.includes('pooled'))).toBe(false);
    expect(ex.record).toMatchObject({ kind: 'backbone', backbone: 'models/backbone.onnx', output: builtin.output, channels: builtin.channels, stride: 16 });
    expect(ex.record.backboneSha256).toMatch(/^[0-9a-f]{64}$/);
    const a = await features(ex);
    const b = await features(builtin);
    expect(Array.from(a.data)).toEqual(Array.from(b.data));

    // An earlier tensor: the colour conversion, full resolution, 4 channels.
    const colour = builtin.nodes[0]!.outputs[0]!;
    const early = await backboneExtractor(path, 'models/backbone.onnx', colour, 32);
    expect([early.channels, early.stride, early.nodes.length]).toEqual([4, 1, 1]);
  });

  it('a missing output names the file and lists the available ones; a non-ONNX file and a pooled output are refused', async () => {
    const path = await backboneFile();
    const missing = await backboneExtractor(path, 'models/backbone.onnx', 'features.8', 32).catch((e: unknown) => e);
    expect(missing).toMatchObject({ name: 'ConfigurationError' });
    expect((missing as Error).message).toMatch(/^models\/backbone\.onnx: backbone has no output `features\.8`; available: `pooled`, /);
    expect((missing as Error).message).toMatch(/available: `pooled`, `fx\/features`, /);
    const junk = join(base, 'junk.onnx');
    await writeFile(junk, 'not a model at all');
    await expect(backboneExtractor(junk, 'junk.onnx', 'x', 32)).rejects.toMatchObject({ name: 'ConfigurationError' });
    await expect(backboneExtractor(join(base, 'nope.onnx'), 'nope.onnx', 'x', 32)).rejects.toThrow(/nope\.onnx: backbone not found/);
    // A flattened output is not a feature map.
    const flat: OnnxModel = extractorModel(builtinExtractor(32));
    flat.graph.nodes.push({ opType: 'Flatten', inputs: [flat.graph.outputs[0]!.name], outputs: ['flat'], attributes: [] });
    flat.graph.outputs = [{ name: 'flat', elemType: DataType.FLOAT, shape: ['N', 'F'] }];
    await writeFile(join(base, 'flat.onnx'), encodeModel(flat));
    await expect(backboneExtractor(join(base, 'flat.onnx'), 'flat.onnx', 'flat', 32)).rejects.toThrow(/has shape \[1, 160\].*feature map \[N, C, H, W\]/);
  });

  it('non-finite features name the image; feature maps beyond memory are refused before running', async () => {
    // Sqrt of the normalised image: negative inputs give NaN.
    const nan: OnnxModel = {
      irVersion: 8,
      opsets: [{ domain: '', version: 17 }],
      producerName: 'test',
      graph: {
        name: 'nan',
        nodes: [{ opType: 'Sqrt', inputs: ['x'], outputs: ['y'], attributes: [] }],
        initializers: [],
        inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: ['N', 3, 32, 32] }],
        outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: ['N', 3, 32, 32] }],
      },
    };
    await writeFile(join(base, 'nan.onnx'), encodeModel(nan));
    const ex = await backboneExtractor(join(base, 'nan.onnx'), 'nan.onnx', 'y', 32);
    const error = await features(ex).catch((e: unknown) => e);
    expect(error).toMatchObject({ name: 'DataError' });
    expect((error as Error).message).toMatch(/^train\/images\/img-0\.jpg: backbone nan\.onnx \(cut at y\) gives a non-finite feature \(NaN\) .*row 0/);

    const huge = { ...builtinExtractor(32), channels: 2 ** 40 };
    const oom = await features(huge).catch((e: unknown) => e);
    expect(oom).toMatchObject({ name: 'ConfigurationError' });
    expect((oom as Error).message).toMatch(/out of memory holding the feature maps of 12 images/);
  });
});
