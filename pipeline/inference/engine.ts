// The one way to run a model of the project: open it with its model card (sha256 verified, inputs
// and outputs checked against the card), then run it over prepared splits, image files (decoded
// on the preprocessing threads while the previous batch runs through onnxruntime) or tabular
// feature rows.

import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { ConfigurationError, DataError } from '../core/errors.ts';
import { exists, sha256File } from '../core/fs.ts';
import type { Logger } from '../core/logger.ts';
import { LETTERBOX_PAD_VALUE, type LetterboxGeometry } from '../data/images/letterbox.ts';
import { IMAGENET_MEAN, IMAGENET_STD } from '../data/images/preprocess.ts';
import { PreprocessPool, type PoolSpec } from '../data/images/preprocess-pool.ts';
import { loadSharp } from '../data/images/sharp.ts';
import type { ImageTensorFile } from '../data/images/tensor-file.ts';
import { MODEL_CARD_FILE, readModelCard, type ModelCard, type TensorSpec } from '../train/card.ts';
import { DEFAULT_CONFIDENCE, decodeDetections, splitDetectorBatch, type Detection } from './detector.ts';
import { describeShape, fixedBatch, fixedImageSize, loadModel, sessionOptions, type ExpectedInput, type LoadedModel, type ProviderChoice } from './session.ts';
import { isProbabilities, softmax } from './skin-type.ts';

export interface EngineOptions {
  provider?: ProviderChoice;
  /** onnxruntime intra-op threads; default `defaultThreads()`. */
  threads?: number;
  /** Images (or rows) per model run; default `defaultBatchSize()`. */
  batchSize?: number;
  logger: Logger;
  signal?: AbortSignal;
}

export interface OpenedModel {
  card: ModelCard;
  loaded: LoadedModel;
  path: string;
  display: string;
  /** The card's path as shown in messages; null when the model has none and `role` defaults stand in. */
  cardDisplay: string | null;
  close(): Promise<void>;
}

/**
 * What a model without a card is taken to be (a bare YOLO or EfficientNet export given to
 * build-fusion-data): the original system's detector or skin-type classifier and preprocessing.
 */
export type ModelRole = 'detector' | 'skin-type';

export const DETECTOR_CLASS_NAMES = [
  'Acne', 'Blackheads', 'Dark-Spots', 'Dry-Skin', 'Englarged-Pores', 'Eyebags', 'Oily-Skin', 'Skin-Redness', 'Whiteheads', 'Wrinkles',
] as const;
export const SKIN_TYPE_CLASS_NAMES = ['Dry', 'Normal', 'Oily'] as const;
const DEFAULT_DETECTOR_SIZE = 640;
const DEFAULT_CLASSIFIER_SIZE = 224;
/** Input tensors of one batch stay under this (a 640² float image is 4.9 MB). */
const BATCH_BYTES = 64 << 20;
const DEFAULT_IMAGE_BATCH = 16;
const DEFAULT_ROW_BATCH = 8192;

/**
 * onnxruntime intra-op threads: every core the process may use. Decoding shares those cores
 * (the preprocessing threads, one per core); idle ORT threads sleep rather
 * than spin, so neither side burns CPU waiting for the other. bench/evaluate.bench.ts compares
 * cores − 1 threads: on 2 cores it gave less end-to-end throughput, not more.
 */
export function defaultThreads(): number {
  return availableParallelism();
}

/** The image model's preprocessing: from its card, else the task's conventions (as prepare-data writes them). */
export interface ImageSpec {
  size: number;
  resize: 'fill' | 'letterbox';
  mean: readonly number[];
  std: readonly number[];
}

function isImageModel(card: ModelCard): boolean {
  return card.task === 'image-classification' || card.task === 'object-detection';
}

/** Preprocessing of an image model; a tabular model is a ConfigurationError naming it. */
export function imageSpec(m: OpenedModel): ImageSpec {
  const { card } = m;
  if (!isImageModel(card)) {
    throw new ConfigurationError(`model ${m.display} is a ${card.task} model: it takes feature rows, not images`, { file: m.display });
  }
  const p = card.preprocessing;
  if (p.type === 'image') return { size: p.size, resize: p.resize, mean: p.mean, std: p.std };
  const declared = card.input.shape[2];
  const size = typeof declared === 'number' ? declared : fixedImageSize(m.loaded) ?? (card.task === 'object-detection' ? DEFAULT_DETECTOR_SIZE : DEFAULT_CLASSIFIER_SIZE);
  return card.task === 'object-detection'
    ? { size, resize: 'letterbox', mean: [0, 0, 0], std: [1, 1, 1] }
    : { size, resize: 'fill', mean: IMAGENET_MEAN, std: IMAGENET_STD };
}

/** A card for a model that has none, from the original system's conventions for its role. */
function roleCard(role: ModelRole, loaded: LoadedModel, sha256: string, bytes: number): ModelCard {
  const detector = role === 'detector';
  const size = fixedImageSize(loaded) ?? (detector ? DEFAULT_DETECTOR_SIZE : DEFAULT_CLASSIFIER_SIZE);
  const names: readonly string[] = detector ? DETECTOR_CLASS_NAMES : SKIN_TYPE_CLASS_NAMES;
  return {
    format: 'skintwin-model-card',
    version: 1,
    model: role,
    task: detector ? 'object-detection' : 'image-classification',
    createdAt: new Date(0).toISOString(),
    classes: names.map((name, index) => ({ index, id: index, name })),
    input: { name: loaded.inputNames[0]!, dtype: 'float32', shape: ['N', 3, size, size], features: [] },
    preprocessing: detector
      ? { type: 'image', description: 'the original detector: letterbox, gray 114, pixels / 255', size, resize: 'letterbox', padValue: LETTERBOX_PAD_VALUE, mean: [0, 0, 0], std: [1, 1, 1] }
      : { type: 'image', description: 'the original skin-type model: stretched, ImageNet mean/std', size, resize: 'fill', mean: [...IMAGENET_MEAN], std: [...IMAGENET_STD] },
    output: detector
      ? { detections: { name: loaded.outputNames[0]!, dtype: 'float32', shape: ['N', 4 + names.length, 'anchors'] } }
      : { probabilities: { name: loaded.outputNames[0]!, dtype: 'float32', shape: ['N', names.length] } },
    trainer: { name: 'command', params: {} },
    trainingData: { path: '', sha256: '', files: 0, trainRows: 0, valRows: 0 },
    code: { commit: null },
    training: { startedAt: new Date(0).toISOString(), seconds: 0, executionProvider: 'unknown' },
    metrics: { reported: {} },
    featureImportance: [],
    onnx: { file: 'model.onnx', sha256, bytes },
  };
}

/** The input the card promises: image models NCHW float32, tabular ones [N, features]. */
function expectedInput(card: ModelCard, cardDisplay: string): ExpectedInput {
  const shape = card.input.shape.map((d) => (typeof d === 'number' ? d : null));
  if (card.input.dtype !== 'float32') {
    throw new ConfigurationError(`model card says input \`${card.input.name}\` is ${card.input.dtype}; the engine feeds float32`, { file: cardDisplay, field: 'input.dtype' });
  }
  if (isImageModel(card)) {
    if (shape.length !== 4 || (shape[1] !== null && shape[1] !== 3)) {
      throw new ConfigurationError(`model card gives image input shape ${describeShape(card.input.shape)}, expected [N, 3, H, W]`, { file: cardDisplay, field: 'input.shape' });
    }
    const p = card.preprocessing;
    if (p.type === 'image' && ((shape[2] !== null && shape[2] !== p.size) || (shape[3] !== null && shape[3] !== p.size))) {
      throw new ConfigurationError(`model card gives input shape ${describeShape(card.input.shape)} but preprocessing size ${p.size}`, { file: cardDisplay, field: 'preprocessing.size' });
    }
    if (p.type === 'image' && p.padValue !== undefined && p.padValue !== LETTERBOX_PAD_VALUE) {
      throw new ConfigurationError(`model card asks for letterbox pad value ${p.padValue}; preprocessing pads with ${LETTERBOX_PAD_VALUE}`, { file: cardDisplay, field: 'preprocessing.padValue' });
    }
  } else if (shape.length !== 2 || (shape[1] !== null && shape[1] !== card.input.features.length)) {
    throw new ConfigurationError(`model card gives input shape ${describeShape(card.input.shape)} for ${card.input.features.length} features`, { file: cardDisplay, field: 'input.shape' });
  }
  return { name: card.input.name, shape };
}

/** The output the engine reads: probabilities of a classifier, detections of a detector. */
function mainOutput(card: ModelCard): TensorSpec | undefined {
  return card.task === 'object-detection' ? card.output.detections : card.output.probabilities;
}

/** Every output the card names exists in the model, with a compatible shape. */
function checkOutputs(m: LoadedModel, card: ModelCard, cardDisplay: string): void {
  const meta = m.session.outputMetadata;
  const declared = meta.map((v) => `${v.name} ${v.isTensor ? describeShape(v.shape) : '(not a tensor)'}`).join(', ');
  if (!mainOutput(card)) {
    throw new ConfigurationError(`model card of a ${card.task} model names no \`${card.task === 'object-detection' ? 'detections' : 'probabilities'}\` output`, {
      file: cardDisplay,
      field: 'output',
    });
  }
  for (const spec of Object.values(card.output)) {
    if (!spec) continue;
    const v = meta.find((x) => x.name === spec.name);
    if (!v) throw new ConfigurationError(`model ${m.display} has no output \`${spec.name}\` (named by ${cardDisplay}); its outputs: ${declared}`, { file: m.display });
    if (!v.isTensor) continue;
    const fits =
      v.shape.length === 0 ||
      (v.shape.length === spec.shape.length && spec.shape.every((d, i) => typeof d !== 'number' || typeof v.shape[i] !== 'number' || v.shape[i] === d));
    if (v.type !== spec.dtype || !fits) {
      throw new ConfigurationError(
        `model ${m.display}: output \`${spec.name}\` is ${v.type} ${describeShape(v.shape)}, ${cardDisplay} says ${spec.dtype} ${describeShape(spec.shape)}`,
        { file: m.display, hint: 'the card does not describe this model' },
      );
    }
  }
}

/**
 * Open a model: its card (next to the file) is read and checked, the ONNX file's sha256 must be
 * the card's, and the model's inputs and outputs must be what the card says. A model without a
 * card is accepted only with `role`, and then runs with the original system's conventions.
 */
export async function openModel(onnxPath: string, display: string, o: EngineOptions & { role?: ModelRole }): Promise<OpenedModel> {
  const cardPath = join(dirname(onnxPath), MODEL_CARD_FILE);
  const cardDisplay = join(dirname(display), MODEL_CARD_FILE);
  let card: ModelCard | undefined;
  const hasCard = await exists(cardPath);
  if (hasCard || !o.role) card = await readModelCard(onnxPath, display);
  const sha256 = await sha256File(onnxPath).catch((error: Error) => {
    throw new DataError(`model not found or unreadable: ${error.message}`, { file: display });
  });
  if (card && card.onnx.sha256 !== sha256) {
    throw new DataError(`sha256 ${sha256} does not match ${cardDisplay} (${card.onnx.sha256}): the model file was replaced or the card belongs to another model`, {
      file: display,
    });
  }
  if (card) {
    if (o.role === 'detector' && card.task !== 'object-detection') {
      throw new ConfigurationError(`model ${display} is a ${card.task} model (${cardDisplay}), expected an object-detection model`, { file: display });
    }
    if (o.role === 'skin-type' && card.task !== 'image-classification') {
      throw new ConfigurationError(`model ${display} is a ${card.task} model (${cardDisplay}), expected an image-classification model`, { file: display });
    }
  }
  const loaded = await loadModel({
    path: onnxPath,
    display,
    inputs: [card ? expectedInput(card, cardDisplay) : { shape: [null, 3, null, null] }],
    logger: o.logger,
    threads: o.threads ?? defaultThreads(),
    ...(card ? { expectedBy: cardDisplay } : {}),
    ...(o.provider ? { provider: o.provider } : {}),
  });
  try {
    if (card) checkOutputs(loaded, card, cardDisplay);
    else {
      const role = o.role!;
      card = roleCard(role, loaded, sha256, (await stat(onnxPath)).size);
      const size = fixedImageSize(loaded) ?? (role === 'detector' ? DEFAULT_DETECTOR_SIZE : DEFAULT_CLASSIFIER_SIZE);
      o.logger.info(`${display}: no ${MODEL_CARD_FILE}; runs as the original ${role} model (${role === 'detector' ? 'letterbox' : 'stretched'} to ${size}×${size})`);
    }
  } catch (error) {
    await loaded.session.release();
    throw error;
  }
  const threads = o.threads ?? defaultThreads();
  const opened: OpenedModel = {
    card,
    loaded,
    path: onnxPath,
    display,
    cardDisplay: hasCard ? cardDisplay : null,
    close: async () => {
      const thread = sessionThreads.get(opened);
      sessionThreads.delete(opened);
      await thread?.then((t) => t.close(), () => undefined);
      await loaded.session.release();
    },
  };
  runtime.set(opened, { threads, sha256 });
  return opened;
}

/** What openModel knew that a session thread needs again. */
const runtime = new WeakMap<OpenedModel, { threads: number; sha256: string }>();
const sessionThreads = new WeakMap<OpenedModel, Promise<SessionThread>>();

interface RunResult {
  data: Float32Array;
  dims: number[];
  type: string;
}

// CommonJS, evaluated as the worker's script: it loads onnxruntime-node by absolute path, so it
// needs no file of its own next to a bundle.
const SESSION_THREAD_SCRIPT = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(workerData.ortPath);
const ready = ort.InferenceSession.create(new Uint8Array(workerData.bytes), workerData.options);
ready.catch(() => undefined);
parentPort.on('message', async (msg) => {
  try {
    const session = await ready;
    const input = new ort.Tensor('float32', new Float32Array(msg.buffer, 0, msg.length), msg.dims);
    const out = (await session.run({ [msg.input]: input }, [msg.output]))[msg.output];
    const reply = { id: msg.id, type: out.type, dims: out.dims, data: out.data };
    try { parentPort.postMessage(reply, [out.data.buffer]); } catch { parentPort.postMessage(reply); }
  } catch (error) {
    parentPort.postMessage({ id: msg.id, error: String((error && error.message) || error).split('\\n')[0] });
  }
});
`;

/**
 * A second session of a model on its own thread. onnxruntime-node's run() blocks the thread that
 * calls it for the whole batch, and the preprocessing pool needs the main event loop to hand out
 * images and collect tensors: with inference on the main thread, decoding would stall during
 * every batch.
 */
class SessionThread {
  private readonly pending = new Map<number, { resolve: (r: RunResult) => void; reject: (e: Error) => void }>();
  private next = 0;
  private failed: Error | undefined;

  private constructor(private readonly worker: Worker, display: string) {
    worker.unref(); // an idle session thread never keeps the process alive
    worker.on('message', (msg: { id: number; error?: string } & RunResult) => {
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      if (!this.pending.size) worker.unref();
      if (msg.error !== undefined) p.reject(new DataError(`onnxruntime failed: ${msg.error}`, { file: display }));
      else p.resolve({ data: msg.data, dims: [...msg.dims], type: msg.type });
    });
    const fail = (error: Error): void => {
      this.failed = new DataError(`inference thread stopped: ${error.message}`, { file: display });
      for (const p of this.pending.values()) p.reject(this.failed);
      this.pending.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`exit code ${code}`)));
  }

  static async start(m: OpenedModel): Promise<SessionThread> {
    const info = runtime.get(m);
    if (!info) throw new Error(`${m.display}: not opened with openModel`);
    const bytes = await readFile(m.path);
    // The file is read again: it must still be the one whose sha256 was checked.
    if (createHash('sha256').update(bytes).digest('hex') !== info.sha256) {
      throw new DataError('the model file changed after it was opened', { file: m.display });
    }
    const options = { ...sessionOptions(info.threads), executionProviders: m.loaded.provider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'] };
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
    const worker = new Worker(SESSION_THREAD_SCRIPT, {
      eval: true,
      workerData: { ortPath: createRequire(import.meta.url).resolve('onnxruntime-node'), bytes: buffer, options },
      transferList: [buffer],
    });
    return new SessionThread(worker, m.display);
  }

  /** Run on `input` (its buffer is handed over to the thread when it owns all of it). */
  run(inputName: string, outputName: string, input: Float32Array, dims: readonly number[]): Promise<RunResult> {
    if (this.failed) return Promise.reject(this.failed);
    const owned = input.byteOffset === 0 && input.byteLength === input.buffer.byteLength ? input : input.slice();
    const id = this.next++;
    return new Promise<RunResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.ref();
      this.worker.postMessage({ id, input: inputName, output: outputName, buffer: owned.buffer, length: owned.length, dims: [...dims] }, [owned.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.worker.removeAllListeners('exit');
    await this.worker.terminate();
  }
}

function sessionThread(m: OpenedModel): Promise<SessionThread> {
  let t = sessionThreads.get(m);
  if (!t) {
    t = SessionThread.start(m);
    t.catch(() => sessionThreads.delete(m));
    sessionThreads.set(m, t);
  }
  return t;
}

/** Images per run: a model's fixed batch, else `wanted` (default 16) capped so inputs stay under 64 MB. */
export function defaultBatchSize(models: readonly OpenedModel[], wanted?: number): number {
  const fixed = models.map((m) => fixedBatch(m.loaded)).find((b) => b !== undefined);
  if (wanted === undefined && fixed !== undefined) return fixed;
  const bytes = models.reduce((s, m) => (isImageModel(m.card) ? s + 12 * imageSpec(m).size ** 2 : s), 0);
  const cap = bytes > 0 ? Math.max(1, Math.floor(BATCH_BYTES / bytes)) : Infinity;
  return Math.max(1, Math.min(wanted ?? DEFAULT_IMAGE_BATCH, cap));
}

function outputName(m: OpenedModel): string {
  return mainOutput(m.card)?.name ?? m.loaded.outputNames[0]!;
}

/**
 * Run a model over `count` rows of `input` (each `rowDims` long) and return its main output for
 * those rows. A model with a fixed batch size gets chunks of that size, the last one padded.
 * `thread` runs on the model's session thread and hands `input`'s buffer over to it when `input`
 * spans the whole buffer (the caller must not use it afterwards).
 */
export async function inferRows(
  m: OpenedModel,
  input: Float32Array,
  count: number,
  rowDims: readonly number[],
  where: 'here' | 'thread' = 'here',
): Promise<{ data: Float32Array; dims: number[] }> {
  const rowSize = rowDims.reduce((a, b) => a * b, 1);
  if (input.length < count * rowSize) throw new RangeError(`${input.length} values for ${count} rows of ${rowSize}`);
  const fixed = fixedBatch(m.loaded);
  const step = fixed ?? count;
  const name = outputName(m);
  let out: Float32Array | undefined;
  let outRow = 0;
  let dims: number[] = [];
  for (let start = 0; start < count; start += step) {
    const real = Math.min(step, count - start);
    const n = fixed ?? real;
    let chunk = input.subarray(start * rowSize, (start + real) * rowSize);
    if (n > real) {
      const padded = new Float32Array(n * rowSize);
      padded.set(chunk);
      chunk = padded;
    }
    const input0 = m.loaded.inputNames[0]!;
    const t =
      where === 'thread'
        ? await (await sessionThread(m)).run(input0, name, chunk, [n, ...rowDims])
        : (await m.loaded.session.run({ [input0]: m.loaded.tensor(chunk, [n, ...rowDims]) }, [name]))[name]!;
    if (t.type !== 'float32') throw new ConfigurationError(`model ${m.display}: output \`${name}\` is ${t.type}, expected float32`, { file: m.display });
    if (t.dims[0] !== n) throw new ConfigurationError(`model ${m.display}: output \`${name}\` has batch ${t.dims[0]} for ${n} input(s)`, { file: m.display });
    const data = t.data as Float32Array;
    if (!out) {
      outRow = data.length / n;
      dims = [count, ...t.dims.slice(1)];
      // One run over everything: hand back onnxruntime's own array.
      if (n === count) return { data, dims };
      out = new Float32Array(count * outRow);
    }
    out.set(data.subarray(0, real * outRow), start * outRow);
  }
  return { data: out ?? new Float32Array(0), dims: out ? dims : [0] };
}

/** A classifier's output must be [batch, classes]; a detector's the YOLOv8 layout [batch, 4 + classes, boxes]. */
function checkOutputDims(m: OpenedModel, dims: readonly number[]): void {
  const nc = m.card.classes.length;
  if (m.card.task === 'object-detection') {
    if (dims.length !== 3 || dims[1] !== 4 + nc) {
      throw new ConfigurationError(
        `model ${m.display}: detector output has shape [${dims.join(', ')}], expected [batch, ${4 + nc}, boxes] (cx, cy, w, h and ${nc} class scores, YOLOv8 layout)`,
        { file: m.display },
      );
    }
  } else if (dims.length !== 2 || dims[1] !== nc) {
    throw new ConfigurationError(
      `model ${m.display}: classifier output has shape [${dims.join(', ')}], expected [batch, ${nc}] (${m.card.classes.map((c) => c.name).join(', ')})`,
      { file: m.display },
    );
  }
}

/** Rows of `[n, C]` scores as probabilities in place: kept when they already are, else softmax (logits). */
export function toProbabilities(data: Float32Array, n: number, c: number): Float32Array {
  for (let r = 0; r < n; r++) {
    const row = data.subarray(r * c, r * c + c);
    if (!isProbabilities(row)) row.set(softmax(row));
  }
  return data;
}

/** The split was prepared the way the model's card preprocesses, else a ConfigurationError naming both. */
function checkPrepared(m: OpenedModel, file: ImageTensorFile): void {
  const spec = imageSpec(m);
  const [, h, w] = file.meta.shape;
  const what = `prepared split \`${file.meta.split}\``;
  if (h !== spec.size || w !== spec.size) {
    throw new ConfigurationError(`${what} holds ${w}×${h} images; model ${m.display} takes ${spec.size}×${spec.size}`, { file: m.display });
  }
  if (m.card.preprocessing.type !== 'image') return; // trainer-defined: the trainer read this very format
  const same = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((x, i) => Math.abs(x - b[i]!) < 1e-6);
  if (file.meta.resize !== spec.resize || !same(file.meta.mean, spec.mean) || !same(file.meta.std, spec.std)) {
    throw new ConfigurationError(
      `${what} is ${file.meta.resize}, mean [${file.meta.mean.join(', ')}], std [${file.meta.std.join(', ')}]; model ${m.display} expects ${spec.resize}, mean [${spec.mean.join(', ')}], std [${spec.std.join(', ')}]`,
      { file: m.display },
    );
  }
}

/** Batches of a prepared split, the next one read while the current one runs through the model. */
async function* preparedBatches(m: OpenedModel, file: ImageTensorFile, o: EngineOptions & { rows?: readonly number[] }) {
  const it = file.batches(o.batchSize ?? defaultBatchSize([m]), o.rows);
  let next = it.next();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      o.signal?.throwIfAborted();
      next = it.next();
      next.catch(() => undefined); // awaited on the next turn
      const [, h, w] = file.meta.shape;
      const out = await inferRows(m, r.value.data, r.value.rows.length, [3, h, w], 'thread');
      checkOutputDims(m, out.dims);
      yield { batch: r.value, out };
    }
  } finally {
    await it.return(undefined);
  }
}

/** Image classifier over a prepared split (no decoding) → probabilities n × C (row-major, card class order). */
export async function classifyPrepared(m: OpenedModel, file: ImageTensorFile, o: EngineOptions & { rows?: readonly number[] }): Promise<Float32Array> {
  if (m.card.task !== 'image-classification') throw new ConfigurationError(`model ${m.display} is a ${m.card.task} model, not an image classifier`, { file: m.display });
  checkPrepared(m, file);
  const n = o.rows?.length ?? file.meta.count;
  const c = m.card.classes.length;
  const probs = new Float32Array(n * c);
  let at = 0;
  for await (const { batch, out } of preparedBatches(m, file, o)) {
    probs.set(toProbabilities(out.data, batch.rows.length, c), at * c);
    at += batch.rows.length;
  }
  return probs;
}

/** Detector over a prepared split → per row its detections in ORIGINAL image pixels (the item's scale/pad/width/height). */
export async function detectPrepared(
  m: OpenedModel,
  file: ImageTensorFile,
  o: EngineOptions & { confidence?: number; iou?: number; rows?: readonly number[] },
): Promise<Detection[][]> {
  if (m.card.task !== 'object-detection') throw new ConfigurationError(`model ${m.display} is a ${m.card.task} model, not a detector`, { file: m.display });
  checkPrepared(m, file);
  const result: Detection[][] = [];
  for await (const { batch, out } of preparedBatches(m, file, o)) {
    splitDetectorBatch(out.data, out.dims).forEach((view, k) => {
      const item = batch.items[k]!;
      result.push(
        decodeDetections(view, {
          confidence: o.confidence ?? DEFAULT_CONFIDENCE,
          ...(o.iou !== undefined ? { iou: o.iou } : {}),
          mapping: { scale: item.scale, pad: item.pad },
          width: item.width,
          height: item.height,
        }),
      );
    });
  }
  return result;
}

/** Tabular model over a float32 feature matrix (card feature order) → probabilities n × C. */
export async function classifyRows(m: OpenedModel, x: Float32Array, nRows: number, o: EngineOptions): Promise<Float32Array> {
  if (isImageModel(m.card)) throw new ConfigurationError(`model ${m.display} is an ${m.card.task} model: it takes images, not feature rows`, { file: m.display });
  const f = m.card.input.features.length;
  if (x.length !== nRows * f) throw new RangeError(`${x.length} values for ${nRows} rows of ${f} features (${m.display})`);
  const c = m.card.classes.length;
  const probs = new Float32Array(nRows * c);
  const step = o.batchSize ?? DEFAULT_ROW_BATCH;
  for (let start = 0; start < nRows; start += step) {
    o.signal?.throwIfAborted();
    const n = Math.min(step, nRows - start);
    const out = await inferRows(m, x.subarray(start * f, (start + n) * f), n, [f]);
    checkOutputDims(m, out.dims);
    probs.set(toProbabilities(out.data, n, c), start * c);
  }
  return probs;
}

// ---------------------------------------------------------------------------------------------
// Image files: decoding overlapped with inference.

export interface ImageFile {
  id: string;
  path: string;
}

export interface ModelOutput {
  /** This image's slice of the model's main output (a copy). */
  output: Float32Array;
  /** Its shape without the batch dimension: [classes], or [4 + classes, boxes]. */
  dims: number[];
  /** Resize geometry of this model's input (letterbox scale and pad, or the stretch). */
  geometry: LetterboxGeometry;
}

export interface ImagesResult<T extends ImageFile> {
  item: T;
  /** Original (EXIF-oriented) size. */
  width: number;
  height: number;
  /** One per model, in the order given. */
  outputs: ModelOutput[];
}

export interface ImageRunOptions<T extends ImageFile = ImageFile> extends EngineOptions {
  /** Images decoded at once (libuv threads; default: the cores). */
  decodeConcurrency?: number;
  /** Batches decoded ahead of the one being inferred (default 2; 0 decodes only when asked: no overlap). */
  ahead?: number;
  /**
   * An image that cannot be read or decoded: without this, a DataError naming the file; with it,
   * the image is left out and reported here, in input order.
   */
  onUnreadable?: (item: T, reason: string) => void;
  /** Run the model on its own thread (default true); false runs it on this one, stalling decoding (for comparison). */
  sessionThread?: boolean;
}

interface Slot<T> {
  item: T;
  failed?: string;
  width: number;
  height: number;
  geometries: LetterboxGeometry[];
}

interface PendingBatch<T> {
  slots: Slot<T>[];
  /** Per model: capacity × plane floats. */
  inputs: Float32Array[];
  /** Slots claimed but not decoded yet. */
  decoding: number;
  /** No more slots will be added. */
  closed: boolean;
}

function toIterator<T>(items: AsyncIterable<T> | Iterable<T>): AsyncIterator<T> | Iterator<T> {
  return Symbol.asyncIterator in items ? (items as AsyncIterable<T>)[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]();
}

/**
 * Decode images into batches of normalised tensors (one tensor per spec), in input order.
 * `concurrency` images are in flight at once on the preprocessing threads, at most `ahead` batches beyond
 * the one the consumer holds: decoding batch k+1 overlaps whatever the consumer does with batch k,
 * and memory stays bounded by (ahead + 1) batches.
 */
export async function* decodedBatches<T extends ImageFile>(
  specs: readonly ImageSpec[],
  files: AsyncIterable<T> | Iterable<T>,
  o: { batchSize: number; concurrency: number; threads?: number; ahead: number; signal?: AbortSignal },
): AsyncGenerator<PendingBatch<T>> {
  await loadSharp({ threads: 1 }); // parallelism comes from images in flight, not threads per image
  // Each distinct input once per image (a detector and a classifier of one size share it).
  const distinct: PoolSpec[] = [];
  const distinctIndex = specs.map((spec) => {
    const at = distinct.findIndex((d) => d.size === spec.size && d.resize === spec.resize && `${d.normalize!.mean}/${d.normalize!.std}` === `${spec.mean}/${spec.std}`);
    return at >= 0 ? at : distinct.push({ size: spec.size, resize: spec.resize, normalize: { mean: spec.mean, std: spec.std } }) - 1;
  });
  const pool = await PreprocessPool.create(o.threads);
  const it = toIterator(files);
  const batches = new Map<number, PendingBatch<T>>();
  let created = 0;
  let consumed = 0;
  let waitingFor = -1;
  let sourceDone = false;
  let stop = false;
  let failure: { error: unknown } | undefined;
  let waiters: (() => void)[] = [];
  const changed = (): Promise<void> => new Promise((r) => waiters.push(r));
  const wake = (): void => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };
  const planes = specs.map((s) => 3 * s.size * s.size);
  const open = (): PendingBatch<T> | undefined => {
    const b = batches.get(created - 1);
    return b && !b.closed ? b : undefined;
  };
  let claiming: Promise<unknown> = Promise.resolve();

  // One claim at a time: items are taken from the source in order and given their batch slot.
  const claimNext = (): Promise<{ batch: PendingBatch<T>; index: number } | undefined> => {
    const claim = claiming.then(async () => {
      for (;;) {
        if (stop || sourceDone || failure) return undefined;
        const target = open() ? created - 1 : created;
        // Ahead of the consumer by at most `ahead` batches; the batch it waits for always.
        if (target < consumed + o.ahead || target === waitingFor) break;
        await changed();
      }
      const r = await it.next();
      if (r.done) {
        sourceDone = true;
        const b = open();
        if (b) b.closed = true;
        wake();
        return undefined;
      }
      let batch = open();
      if (!batch) {
        batch = { slots: [], inputs: planes.map((p) => new Float32Array(o.batchSize * p)), decoding: 0, closed: false };
        batches.set(created++, batch);
      }
      const index = batch.slots.length;
      batch.slots.push({ item: r.value, width: 0, height: 0, geometries: [] });
      batch.decoding++;
      if (batch.slots.length === o.batchSize) batch.closed = true;
      return { batch, index };
    });
    claiming = claim.catch(() => undefined);
    return claim;
  };

  const decode = async (batch: PendingBatch<T>, index: number): Promise<void> => {
    const slot = batch.slots[index]!;
    try {
      // Decoded on the preprocessing threads by the same functions prepare-data uses (once per DCT
      // scale the sizes call for), so evaluation and serving see the pixels the model was trained
      // on; then resampled per size.
      // Each distinct input's tensor lands straight in the batch of the first model that takes it.
      const request = distinct.map((d, at) => {
        const j = distinctIndex.indexOf(at);
        return { ...d, normalize: { ...d.normalize!, into: { array: batch.inputs[j]!, offset: index * planes[j]! } } };
      });
      const images = await pool.preprocess(slot.item.path, request);
      for (const [j, spec] of specs.entries()) {
        const image = images[distinctIndex[j]!]!;
        if (distinctIndex.indexOf(distinctIndex[j]!) !== j) batch.inputs[j]!.set(image.tensor!, index * planes[j]!);
        slot.geometries[j] = image.geometry;
        slot.width = image.width;
        slot.height = image.height;
      }
    } catch (error) {
      if (o.signal?.aborted) throw error;
      slot.failed = (error as Error).message.split('\n')[0]!;
    }
  };

  const worker = async (): Promise<void> => {
    try {
      for (;;) {
        o.signal?.throwIfAborted();
        const claim = await claimNext();
        if (!claim) return;
        await decode(claim.batch, claim.index);
        claim.batch.decoding--;
        wake();
      }
    } catch (error) {
      failure ??= { error };
      wake();
    }
  };
  const workers = Array.from({ length: Math.max(1, o.concurrency) }, worker);
  try {
    for (let k = 0; ; k++) {
      waitingFor = k;
      wake();
      for (;;) {
        if (failure) throw failure.error;
        o.signal?.throwIfAborted();
        const b = batches.get(k);
        if (b && b.closed && b.decoding === 0) break;
        if (!b && sourceDone) return;
        await changed();
      }
      const batch = batches.get(k)!;
      batches.delete(k);
      waitingFor = -1;
      consumed = k + 1;
      wake();
      yield batch;
    }
  } finally {
    stop = true;
    wake();
    await Promise.allSettled(workers);
    await pool.close();
    if (!sourceDone) await it.return?.();
  }
}

/** The rows of `data` (each `plane` long) at `keep`, contiguous. */
function compact(data: Float32Array, keep: readonly number[], plane: number): Float32Array {
  if (keep.every((i, k) => i === k)) return data.subarray(0, keep.length * plane);
  const out = new Float32Array(keep.length * plane);
  keep.forEach((i, k) => out.set(data.subarray(i * plane, (i + 1) * plane), k * plane));
  return out;
}

/**
 * Several image models over the same image files (read once, resized once per distinct
 * geometry): per image, each model's raw output. Results come in input order.
 */
export async function* runModelsOnImages<T extends ImageFile>(
  models: readonly OpenedModel[],
  files: AsyncIterable<T> | Iterable<T>,
  o: ImageRunOptions<T>,
): AsyncGenerator<ImagesResult<T>> {
  const specs = models.map(imageSpec);
  const batchSize = o.batchSize ?? defaultBatchSize(models);
  const decoded = decodedBatches(specs, files, {
    batchSize,
    // Two images per preprocessing thread keep each busy while its last result travels back.
    concurrency: o.decodeConcurrency ?? 2 * availableParallelism(),
    threads: availableParallelism(),
    ahead: o.ahead ?? 2,
    ...(o.signal ? { signal: o.signal } : {}),
  });
  for await (const batch of decoded) {
    const ok: number[] = [];
    batch.slots.forEach((s, i) => {
      if (s.failed === undefined) return void ok.push(i);
      if (!o.onUnreadable) throw new DataError(`cannot decode image: ${s.failed}`, { file: s.item.path });
    });
    const outputs: { data: Float32Array; dims: number[]; row: number }[] = [];
    if (ok.length) {
      for (const [j, m] of models.entries()) {
        const plane = 3 * specs[j]!.size ** 2;
        const out = await inferRows(m, compact(batch.inputs[j]!, ok, plane), ok.length, [3, specs[j]!.size, specs[j]!.size], o.sessionThread === false ? 'here' : 'thread');
        checkOutputDims(m, out.dims);
        outputs.push({ ...out, row: out.data.length / ok.length });
      }
    }
    let k = 0;
    for (const s of batch.slots) {
      o.signal?.throwIfAborted();
      if (s.failed !== undefined) {
        o.onUnreadable!(s.item, s.failed);
        continue;
      }
      const at = k++;
      yield {
        item: s.item,
        width: s.width,
        height: s.height,
        outputs: outputs.map((out, j) => ({ output: out.data.slice(at * out.row, (at + 1) * out.row), dims: out.dims.slice(1), geometry: s.geometries[j]! })),
      };
    }
  }
}

/** Image files on disk (JPEG/PNG) → per image the raw model output, decoding overlapped with inference (bounded queue). */
export async function* runOnImages(
  m: OpenedModel,
  files: AsyncIterable<ImageFile> | Iterable<ImageFile>,
  o: ImageRunOptions,
): AsyncGenerator<{ id: string; output: Float32Array; dims: number[]; width: number; height: number; geometry: LetterboxGeometry }> {
  for await (const r of runModelsOnImages([m], files, o)) {
    const out = r.outputs[0]!;
    yield { id: r.item.id, output: out.output, dims: out.dims, width: r.width, height: r.height, geometry: out.geometry };
  }
}
