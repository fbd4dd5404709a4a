// Frozen feature extractors for the head trainer: the project's own fixed ONNX filter bank, a
// user's backbone ONNX cut at a named output, and running either over a prepared image split.

import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { ConfigurationError, DataError, InterruptedError } from '../../core/errors.ts';
import { sha256 } from '../../core/fs.ts';
import type { Logger } from '../../core/logger.ts';
import type { ImageTensorFile } from '../../data/images/tensor-file.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../data/images/preprocess.ts';
import { loadModel, type LoadedModel, type ProviderChoice } from '../../inference/session.ts';
import { DataType, decodeModel, encodeModel, floatTensor, int64Tensor, type OnnxModel, type OnnxNode, type OnnxTensor } from '../../onnx/index.ts';
import type { FeatureExtractor, FeatureMap } from './types.ts';

/** The ai.onnx opset every model the head trainer builds targets. */
export const HEAD_OPSET = 17;
/** ONNX IR version matching opset 17. */
export const HEAD_IR_VERSION = 8;
/** The merged model's input name. */
export const IMAGES_INPUT = 'images';

const BUILTIN_STRIDE = 16;

// --- the built-in extractor -----------------------------------------------------------------

/** Sampled 2-D Gaussian (unnormalised). */
function gaussian(sigma: number, x: number, y: number): number {
  return Math.exp(-(x * x + y * y) / (2 * sigma * sigma));
}

/** A k×k kernel from f(x, y) with x, y centred; `zeroMean` removes the DC response, then L1 = 1. */
function kernel(k: number, f: (x: number, y: number) => number, zeroMean: boolean): number[] {
  const h = (k - 1) / 2;
  const w: number[] = [];
  for (let y = -h; y <= h; y++) for (let x = -h; x <= h; x++) w.push(f(x, y));
  if (zeroMean) {
    const m = w.reduce((a, b) => a + b, 0) / w.length;
    for (let i = 0; i < w.length; i++) w[i] = w[i]! - m;
  }
  const l1 = w.reduce((a, b) => a + Math.abs(b), 0) || 1;
  return w.map((v) => v / l1);
}

function gaussNorm(k: number, sigma: number): (x: number, y: number) => number {
  const h = (k - 1) / 2;
  let s = 0;
  for (let y = -h; y <= h; y++) for (let x = -h; x <= h; x++) s += gaussian(sigma, x, y);
  return (x, y) => gaussian(sigma, x, y) / s;
}

const K = 5;
/**
 * The luma filter bank (5×5, applied at three pyramid scales): a fine and a coarse
 * difference-of-Gaussians (blobs, pores, flakes), x/y derivatives of a Gaussian (edges, wrinkles)
 * and two diagonal Gabor filters (oriented fine texture). Zero-mean: flat skin answers 0.
 */
function lumaBank(): { name: string; w: number[] }[] {
  const g08 = gaussNorm(K, 0.8);
  const g16 = gaussNorm(K, 1.6);
  const g12 = gaussNorm(K, 1.2);
  const g24 = gaussNorm(K, 2.4);
  const g10 = (x: number, y: number) => gaussian(1, x, y);
  const gabor = (angle: number) => (x: number, y: number) => {
    const t = x * Math.cos(angle) + y * Math.sin(angle);
    return Math.cos((2 * Math.PI * t) / 3) * gaussian(1.3, x, y);
  };
  return [
    { name: 'dog-fine', w: kernel(K, (x, y) => g08(x, y) - g16(x, y), true) },
    { name: 'dog-coarse', w: kernel(K, (x, y) => g12(x, y) - g24(x, y), true) },
    { name: 'dx', w: kernel(K, (x, y) => x * g10(x, y), true) },
    { name: 'dy', w: kernel(K, (x, y) => y * g10(x, y), true) },
    { name: 'gabor-45', w: kernel(K, gabor(Math.PI / 4), true) },
    { name: 'gabor-135', w: kernel(K, gabor((3 * Math.PI) / 4), true) },
  ];
}

/**
 * Colour conversions on [0, 1] RGB, as rows of a 1×1 convolution: luma, red–green and
 * yellow–blue opponent channels, and redness (R against the mean of G and B).
 */
const COLOUR_ROWS: readonly (readonly [number, number, number])[] = [
  [0.299, 0.587, 0.114],
  [1, -1, 0],
  [0.5, 0.5, -1],
  [1, -0.5, -0.5],
];

/** Build the graph pieces with a fresh name prefix so they never clash with a head's names. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private n = 0;
  constructor(private readonly prefix: string) {}
  name(hint: string): string {
    return `${this.prefix}${hint}_${this.n++}`;
  }
  init(hint: string, dims: number[], values: ArrayLike<number>): string {
    const name = this.name(hint);
    this.initializers.push(floatTensor(name, dims, values));
    return name;
  }
  initInt64(hint: string, values: number[]): string {
    const name = this.name(hint);
    this.initializers.push(int64Tensor(name, [values.length], values));
    return name;
  }
  op(opType: string, inputs: string[], attributes: OnnxNode['attributes'] = [], outputs = 1, hint = opType.toLowerCase()): string[] {
    const outs = Array.from({ length: outputs }, () => this.name(hint));
    this.nodes.push({ opType, inputs, outputs: outs, attributes, name: this.name(`${hint}_node`) });
    return outs;
  }
  one(opType: string, inputs: string[], attributes: OnnxNode['attributes'] = [], hint?: string): string {
    return this.op(opType, inputs, attributes, 1, hint)[0]!;
  }
  /** A 'same' convolution; the border is padded by reflection so that image edges are no edges. */
  conv(x: string, weights: number[], dims: [number, number, number, number], group = 1, bias?: number[]): string {
    const w = this.init('w', dims, weights);
    const pad = (dims[2] - 1) / 2;
    const padded = pad > 0 ? this.one('Pad', [x, this.initInt64('pads', [0, 0, pad, pad, 0, 0, pad, pad])], [{ name: 'mode', type: 'string', value: 'reflect' }]) : x;
    const inputs = [padded, w];
    if (bias) inputs.push(this.init('b', [dims[0]], bias));
    return this.one(
      'Conv',
      inputs,
      [
        { name: 'kernel_shape', type: 'ints', value: [dims[2], dims[3]] },
        { name: 'group', type: 'int', value: group },
      ],
      'conv',
    );
  }
  pool(kind: 'AveragePool' | 'MaxPool', x: string, k: number): string {
    if (k === 1) return x;
    return this.one(kind, [x], [
      { name: 'kernel_shape', type: 'ints', value: [k, k] },
      { name: 'strides', type: 'ints', value: [k, k] },
    ]);
  }
}

/** What each channel of the built-in extractor means, in output order. */
export function builtinChannelNames(): string[] {
  const bank = lumaBank().map((f) => f.name);
  return [
    'mean-luma', 'mean-red-green', 'mean-yellow-blue', 'mean-redness',
    ...[1, 2, 4].flatMap((s) => bank.map((b) => `luma-${b}-x${s}|`)),
    ...['mean', 'max'].flatMap((pool) => ['+', '-'].flatMap((sign) => ['red-green', 'yellow-blue', 'redness'].map((c) => `${c}-blob${sign} ${pool}`))),
    'bright-spot-x1 max', 'dark-spot-x1 max', 'bright-spot-x2 max', 'dark-spot-x2 max',
    'max-luma', 'max-redness',
  ];
}

/**
 * The project's own fixed extractor: undo the ImageNet normalisation and convert colours (one
 * 1×1 conv), a 5×5 luma filter bank on a three-level pyramid (1, 1/2, 1/4), blob detectors on
 * the colour channels, rectified and pooled to stride 16 (mean for texture energy, max for small
 * bright/dark spots and specular sheen). Output [N, 40, S/16, S/16]. Deterministic, float32, opset 17.
 * `normalisation` is what the input was normalised with (the prepared meta.json; ImageNet's by default).
 */
export function builtinExtractor(
  imageSize: number,
  normalisation: { mean: readonly number[]; std: readonly number[] } = { mean: IMAGENET_MEAN, std: IMAGENET_STD },
): FeatureExtractor {
  if (!Number.isInteger(imageSize) || imageSize < BUILTIN_STRIDE || imageSize % BUILTIN_STRIDE !== 0) {
    throw new ConfigurationError(`the built-in extractor needs an image size divisible by ${BUILTIN_STRIDE}, got ${imageSize}`, { field: 'size' });
  }
  const g = new GraphBuilder('fx/');
  // (x·std + mean) then a colour row r: Σ r_c·std_c·x_c + Σ r_c·mean_c.
  const cw: number[] = [];
  const cb: number[] = [];
  for (const row of COLOUR_ROWS) {
    for (let c = 0; c < 3; c++) cw.push(row[c]! * normalisation.std[c]!);
    cb.push(row.reduce((a, r, c) => a + r * normalisation.mean[c]!, 0));
  }
  const colour1 = g.conv(IMAGES_INPUT, cw, [COLOUR_ROWS.length, 3, 1, 1], 1, cb);
  const colour2 = g.pool('AveragePool', colour1, 2);
  const colour4 = g.pool('AveragePool', colour2, 2);
  const splitSizes = g.initInt64('split', [1, 3]);
  const split = (x: string) => g.op('Split', [x, splitSizes], [{ name: 'axis', type: 'int', value: 1 }], 2, 'split') as [string, string];
  const [luma1] = split(colour1);
  const [luma2, chroma2] = split(colour2);
  const [luma4] = split(colour4);

  const bank = lumaBank();
  const bankWeights = bank.flatMap((f) => f.w);
  const parts: string[] = [];
  // Mean colour per cell.
  parts.push(g.pool('AveragePool', colour1, BUILTIN_STRIDE));
  // Texture energy per scale: |filter response| averaged over the cell.
  let dog1 = '';
  let dog2 = '';
  for (const [luma, scale] of [[luma1, 1], [luma2, 2], [luma4, 4]] as const) {
    const resp = g.conv(luma, bankWeights, [bank.length, 1, K, K]);
    if (scale === 1) dog1 = resp;
    if (scale === 2) dog2 = resp;
    parts.push(g.pool('AveragePool', g.one('Abs', [resp]), BUILTIN_STRIDE / scale));
  }
  // Colour blobs at half resolution (spots redder/greener/yellower than their surround), signed.
  const dog = kernel(K, (x, y) => gaussNorm(K, 0.8)(x, y) - gaussNorm(K, 1.6)(x, y), true);
  const blobs = g.conv(chroma2, [...dog, ...dog, ...dog], [3, 1, K, K], 3);
  const pos = g.one('Relu', [blobs]);
  const neg = g.one('Relu', [g.one('Neg', [blobs])]);
  const posNeg = g.one('Concat', [pos, neg], [{ name: 'axis', type: 'int', value: 1 }]);
  parts.push(g.pool('AveragePool', posNeg, BUILTIN_STRIDE / 2));
  parts.push(g.pool('MaxPool', posNeg, BUILTIN_STRIDE / 2));
  // Small bright/dark spots: the fine DoG response's extremes per cell, at two scales.
  const spots = (resp: string, scale: number) => {
    const [fine] = g.op('Split', [resp, g.initInt64('split', [1, bank.length - 1])], [{ name: 'axis', type: 'int', value: 1 }], 2, 'split');
    const bright = g.one('Relu', [fine!]);
    const dark = g.one('Relu', [g.one('Neg', [fine!])]);
    return g.pool('MaxPool', g.one('Concat', [bright, dark], [{ name: 'axis', type: 'int', value: 1 }]), BUILTIN_STRIDE / scale);
  };
  parts.push(spots(dog1, 1), spots(dog2, 2));
  // Sheen and the reddest area: the brightest luma and redness per cell (half resolution).
  const [, , , redness2] = g.op('Split', [colour2, g.initInt64('split', [1, 1, 1, 1])], [{ name: 'axis', type: 'int', value: 1 }], 4, 'split');
  parts.push(g.pool('MaxPool', g.one('Concat', [luma2, redness2!], [{ name: 'axis', type: 'int', value: 1 }]), BUILTIN_STRIDE / 2));
  const output = 'fx/features';
  g.nodes.push({ opType: 'Concat', inputs: parts, outputs: [output], attributes: [{ name: 'axis', type: 'int', value: 1 }], name: 'fx/features_node' });
  const channels = builtinChannelNames().length;
  return {
    nodes: g.nodes,
    initializers: g.initializers,
    input: IMAGES_INPUT,
    output,
    channels,
    stride: BUILTIN_STRIDE,
    imageSize,
    opset: HEAD_OPSET,
    record: {
      kind: 'builtin',
      description:
        `fixed filter bank: colour conversion (luma, red-green, yellow-blue, redness), 5×5 luma DoG/derivative/Gabor bank at 3 scales, ` +
        `colour blob detectors, rectified and pooled (mean, max) to stride ${BUILTIN_STRIDE}; ${channels} channels`,
      output,
      channels,
      stride: BUILTIN_STRIDE,
    },
  };
}

// --- standalone models and running them -------------------------------------------------------

/** The extractor alone as a model: `images` [N, 3, S, S] → its feature map. */
export function extractorModel(ex: FeatureExtractor): OnnxModel {
  const side = ex.imageSize / ex.stride;
  return {
    irVersion: HEAD_IR_VERSION,
    opsets: [{ domain: '', version: ex.opset }, ...(ex.domains ?? [])],
    producerName: 'skintwin',
    graph: {
      name: 'feature-extractor',
      nodes: ex.nodes,
      initializers: ex.initializers,
      inputs: [{ name: ex.input, elemType: DataType.FLOAT, shape: ['N', 3, ex.imageSize, ex.imageSize] }],
      outputs: [{ name: ex.output, elemType: DataType.FLOAT, shape: ['N', ex.channels, Number.isInteger(side) ? side : 'H', Number.isInteger(side) ? side : 'W'] }],
    },
  };
}

/** Load a model held in memory (written to a private temp file: loadModel reads from a path). */
export async function loadModelBytes(
  bytes: Uint8Array,
  o: { display: string; imageSize: number; inputName: string; provider: ProviderChoice; logger: Logger; threads?: number },
): Promise<LoadedModel> {
  const dir = await mkdtemp(join(tmpdir(), 'skintwin-head-'));
  const path = join(dir, `${randomBytes(4).toString('hex')}.onnx`);
  try {
    await writeFile(path, bytes);
    return await loadModel({
      path,
      display: o.display,
      inputs: [{ name: o.inputName, shape: [null, 3, o.imageSize, o.imageSize] }],
      provider: o.provider,
      logger: o.logger,
      ...(o.threads !== undefined ? { threads: o.threads } : {}),
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface ComputeFeaturesOptions {
  batchSize?: number;
  provider: ProviderChoice;
  logger: Logger;
  signal?: AbortSignal;
  /** Rows of the split to run (default all, in order). */
  rows?: readonly number[];
}

/** One image's feature map [channels, height, width], handed to a streaming consumer. */
export type FeatureSink = (index: number, values: Float32Array, height: number, width: number) => void;

/**
 * Images per extractor run: on CPU at most 8, which is faster per image than larger batches (the
 * full-resolution maps stay in cache) and bounds memory; on CUDA as many as asked.
 */
export function extractorBatch(requested: number, provider: 'cpu' | 'cuda'): number {
  return Math.max(1, provider === 'cpu' ? Math.min(requested, 8) : requested);
}

/** Errors from onnxruntime or V8 that mean the machine ran out of memory. */
function isOutOfMemory(error: unknown): boolean {
  const m = error instanceof Error ? error.message : String(error);
  return /bad_alloc|bad allocation|failed to allocate|out of memory|array buffer allocation failed|invalid typed array length|invalid array length/i.test(m);
}

function outOfMemory(what: string, error: unknown): ConfigurationError {
  return new ConfigurationError(`out of memory ${what}: ${(error instanceof Error ? error.message : String(error)).split('\n')[0]}`, {
    field: 'batch-size',
    hint: 'use a smaller `batch-size`, a smaller backbone or a runner with more memory',
  });
}

/**
 * Run the extractor over a prepared split, batched, on the chosen execution provider (the log
 * says which), handing each image's feature map to `sink` in row order: memory stays one batch.
 * Every feature must be finite: a NaN or ∞ names the split row and its image.
 */
export async function streamFeatures(
  ex: FeatureExtractor,
  file: ImageTensorFile,
  o: ComputeFeaturesOptions,
  sink: FeatureSink,
): Promise<{ images: number; provider: 'cpu' | 'cuda' }> {
  const [, h, w, c] = file.meta.shape;
  if (h !== ex.imageSize || w !== ex.imageSize || c !== 3) {
    throw new ConfigurationError(
      `prepared split \`${file.meta.split}\` holds ${w}×${h}×${c} images; the extractor expects ${ex.imageSize}×${ex.imageSize}×3 (prepare the data with size ${ex.imageSize})`,
      { field: 'size' },
    );
  }
  const rows = o.rows ?? file.items.map((i) => i.row);
  const display = extractorDisplay(ex);
  const model = await loadModelBytes(encodeModel(extractorModel(ex)), { display, imageSize: ex.imageSize, inputName: ex.input, provider: o.provider, logger: o.logger });
  const batchSize = extractorBatch(o.batchSize ?? 16, model.provider);
  let done = 0;
  const progress = o.logger.progress(`features (${file.meta.split})`, rows.length, 'images');
  try {
    for await (const batch of file.batches(batchSize, rows)) {
      if (o.signal?.aborted) throw new InterruptedError();
      const n = batch.rows.length;
      let out: Awaited<ReturnType<LoadedModel['session']['run']>>;
      try {
        out = await model.session.run({ [model.inputNames[0]!]: model.tensor(batch.data, [n, 3, ex.imageSize, ex.imageSize]) });
      } catch (error) {
        if (isOutOfMemory(error)) throw outOfMemory(`running ${display} on a batch of ${n} images`, error);
        throw error;
      }
      const t = out[ex.output];
      if (!t) throw new Error(`${display}: no output \`${ex.output}\``);
      const dims = t.dims;
      if (dims.length !== 4 || dims[0] !== n || dims[1] !== ex.channels) {
        throw new DataError(`${display}: output \`${ex.output}\` has shape [${dims.join(', ')}], expected [${n}, ${ex.channels}, H, W]`, { field: 'backbone-output' });
      }
      const plane = dims[2]! * dims[3]!;
      const per = ex.channels * plane;
      const values = t.data as Float32Array;
      for (let k = 0; k < n; k++) {
        const slice = values.subarray(k * per, (k + 1) * per);
        for (let i = 0; i < per; i++) {
          if (!Number.isFinite(slice[i]!)) {
            const item = batch.items[k]!;
            throw new DataError(
              `${display} gives a non-finite feature (${slice[i]}) for ${item.file} (split \`${file.meta.split}\`, row ${item.row}, channel ${Math.floor(i / plane)}): check the backbone and the prepared images`,
              { file: item.file, field: ex.record.kind === 'backbone' ? 'backbone' : 'images' },
            );
          }
        }
        sink(done + k, slice, dims[2]!, dims[3]!);
      }
      done += n;
      progress.tick(n);
    }
  } finally {
    progress.done();
    await model.session.release();
  }
  return { images: done, provider: model.provider };
}

/** Most bytes of feature maps held at once; beyond it the caller must stream (streamFeatures). */
const FEATURE_MAP_LIMIT = Math.min(4 * 1024 ** 3, totalmem() / 2);

/** The extractor's feature maps of a whole split (or of `rows`), [n, channels, H, W] in memory. */
export async function computeFeatures(ex: FeatureExtractor, file: ImageTensorFile, o: ComputeFeaturesOptions): Promise<FeatureMap> {
  const count = o.rows?.length ?? file.items.length;
  const side = Math.ceil(ex.imageSize / ex.stride);
  const bytes = count * ex.channels * side * side * 4;
  if (bytes > FEATURE_MAP_LIMIT) {
    throw outOfMemory(
      `holding the feature maps of ${count} images (${(bytes / 1024 ** 3).toFixed(1)} GiB, limit ${(FEATURE_MAP_LIMIT / 1024 ** 3).toFixed(1)} GiB)`,
      new Error(`${ex.channels} channels × ${side}×${side} per image`),
    );
  }
  let data: Float32Array | undefined;
  let height = side;
  let width = side;
  const { images: n } = await streamFeatures(ex, file, o, (index, values, h, w) => {
    if (!data) {
      height = h;
      width = w;
      try {
        data = new Float32Array(count * values.length);
      } catch (error) {
        throw outOfMemory(`allocating the feature maps of ${count} images`, error);
      }
    }
    data.set(values, index * values.length);
  });
  return { data: data ?? new Float32Array(0), n, channels: ex.channels, height, width };
}

/** How messages name an extractor. */
export function extractorDisplay(ex: FeatureExtractor): string {
  return ex.record.kind === 'builtin' ? 'the built-in feature extractor' : `backbone ${ex.record.backbone ?? ''} (cut at ${ex.record.output})`;
}

// --- user backbones -----------------------------------------------------------------------------

/** Every tensor name a cut could end at: graph outputs first, then node outputs deepest first. */
function availableOutputs(model: OnnxModel): string[] {
  const names = new Set<string>(model.graph.outputs.map((o) => o.name));
  for (const n of [...model.graph.nodes].reverse()) for (const o of n.outputs) if (o) names.add(o);
  return [...names];
}

/**
 * A user's backbone ONNX (e.g. an exported EfficientNet-B0 whose input is the ImageNet-normalised
 * image), cut at `outputName`: only the nodes that output needs are kept; its channel count and
 * stride come from running one zero image.
 */
export async function backboneExtractor(path: string, display: string, outputName: string, imageSize: number): Promise<FeatureExtractor> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new ConfigurationError(`backbone not found or unreadable (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: display, field: 'backbone' });
  }
  let model: OnnxModel;
  try {
    model = decodeModel(bytes);
  } catch (error) {
    throw new ConfigurationError(`not an ONNX model: ${(error as Error).message}`, { file: display, field: 'backbone' });
  }
  const g = model.graph;
  const producers = new Map<string, OnnxNode>();
  for (const n of g.nodes) for (const o of n.outputs) if (o) producers.set(o, n);
  if (!producers.has(outputName)) {
    const available = availableOutputs(model);
    const shown = available.slice(0, 40).map((a) => `\`${a}\``).join(', ');
    throw new ConfigurationError(
      `backbone has no output \`${outputName}\`; available: ${shown}${available.length > 40 ? ` (+${available.length - 40} more)` : ''}`,
      { file: display, field: 'backbone-output' },
    );
  }
  // Keep the nodes the cut output depends on, in graph (topological) order.
  const needed = new Set<OnnxNode>();
  const stack = [outputName];
  const seen = new Set<string>();
  while (stack.length) {
    const name = stack.pop()!;
    if (seen.has(name)) continue;
    seen.add(name);
    const node = producers.get(name);
    if (!node || needed.has(node)) continue;
    needed.add(node);
    for (const i of node.inputs) if (i) stack.push(i);
  }
  const nodes = g.nodes.filter((n) => needed.has(n));
  const initNames = new Set(g.initializers.map((t) => t.name));
  const used = new Set(nodes.flatMap((n) => n.inputs));
  const inputs = g.inputs.filter((i) => !initNames.has(i.name) && used.has(i.name));
  if (inputs.length !== 1) {
    throw new ConfigurationError(
      `backbone cut at \`${outputName}\` needs ${inputs.length} graph inputs (${g.inputs.filter((i) => !initNames.has(i.name)).map((i) => i.name).join(', ') || 'none'}); ` +
        'the head trainer feeds exactly one image tensor [N, 3, S, S]',
      { file: display, field: 'backbone' },
    );
  }
  const inputName = inputs[0]!.name;
  // The merged model's input is always `images`; a backbone tensor already called so is renamed away.
  const rename = new Map<string, string>();
  if (inputName !== IMAGES_INPUT) {
    rename.set(inputName, IMAGES_INPUT);
    if (seen.has(IMAGES_INPUT) || initNames.has(IMAGES_INPUT)) rename.set(IMAGES_INPUT, `${IMAGES_INPUT}__backbone`);
  }
  const mapName = (s: string) => rename.get(s) ?? s;
  const keptNodes = nodes.map((n) => ({ ...n, inputs: n.inputs.map(mapName), outputs: n.outputs.map(mapName) }));
  const initializers = g.initializers.filter((t) => used.has(t.name)).map((t) => ({ ...t, name: mapName(t.name) }));
  const output = mapName(outputName);
  const defaultOpset = model.opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version ?? HEAD_OPSET;
  const nodeDomains = new Set(keptNodes.map((n) => n.domain ?? '').filter((d) => d !== '' && d !== 'ai.onnx'));
  const domains = model.opsets.filter((o) => nodeDomains.has(o.domain));
  // Heads use ops whose meaning is the same from opset 17 on, so a newer backbone opset is kept.
  const opset = Math.max(defaultOpset, HEAD_OPSET);
  const draft: FeatureExtractor = {
    nodes: keptNodes,
    initializers,
    input: IMAGES_INPUT,
    output,
    channels: 0,
    stride: 1,
    imageSize,
    opset,
    ...(domains.length ? { domains } : {}),
    record: { kind: 'backbone', backbone: display, backboneSha256: sha256(bytes), output: outputName, channels: 1, stride: 1 },
  };
  // One zero image: the output's shape gives channels and stride.
  const probeModel = extractorModel({ ...draft, channels: 1 });
  probeModel.graph.outputs = [{ name: output, elemType: DataType.FLOAT, shape: ['N', 'C', 'H', 'W'] }];
  const probe = encodeModel(probeModel);
  const quiet: Logger = {
    debug() {},
    info() {},
    warn() {},
    error() {},
    group: (_t, fn) => fn(),
    progress: () => ({ tick() {}, set() {}, done() {} }),
    secret() {},
  };
  let dims: readonly number[];
  let session: LoadedModel | undefined;
  try {
    session = await loadModelBytes(probe, { display, imageSize, inputName: IMAGES_INPUT, provider: 'cpu', logger: quiet, threads: 1 });
    const out = await session.session.run({ [IMAGES_INPUT]: session.tensor(new Float32Array(3 * imageSize * imageSize), [1, 3, imageSize, imageSize]) });
    const t = out[output];
    if (!t) throw new Error(`no output ${output}`);
    if (t.type !== 'float32') throw new ConfigurationError(`backbone output \`${outputName}\` is ${t.type}, expected float32`, { file: display, field: 'backbone-output' });
    dims = t.dims;
  } catch (error) {
    if (error instanceof ConfigurationError) throw error;
    throw new ConfigurationError(`backbone cut at \`${outputName}\` does not run on a 1×3×${imageSize}×${imageSize} image: ${(error as Error).message.split('\n')[0]}`, {
      file: display,
      field: 'backbone',
    });
  } finally {
    await session?.session.release();
  }
  if (dims.length !== 4 || dims[2]! < 1 || dims[3]! < 1) {
    throw new ConfigurationError(
      `backbone output \`${outputName}\` has shape [${dims.join(', ')}] for one ${imageSize}×${imageSize} image; the head needs a feature map [N, C, H, W] (cut before the backbone's pooling/classifier)`,
      { file: display, field: 'backbone-output' },
    );
  }
  const channels = dims[1]!;
  const stride = Math.max(1, Math.round(imageSize / dims[2]!));
  return { ...draft, channels, stride, record: { ...draft.record, channels, stride } };
}

/** Tensor names an extractor defines (node outputs and initializers), for clash checks. */
export function extractorNames(ex: FeatureExtractor): Set<string> {
  return new Set([...ex.nodes.flatMap((n) => n.outputs), ...ex.initializers.map((t) => t.name), ex.input]);
}
