// The `head` trainer's detection head (skin-detection): a single-shot head on the frozen extractor's
// per-cell features, trained in TypeScript, merged with the extractor into one model.onnx whose
// `output0` has the Ultralytics YOLOv8 layout, checked in onnxruntime, then written with its card.

import { join } from 'node:path';
import { ConfigurationError, DataError, InterruptedError } from '../../core/errors.ts';
import { sha256 } from '../../core/fs.ts';
import { openImageTensorFile, type ImageTensorFile } from '../../data/images/tensor-file.ts';
import { fromLetterbox } from '../../data/images/letterbox.ts';
import { scoreDetections, type DetectionSample } from '../../evaluate/metrics/detection.ts';
import { decodeDetections, splitDetectorBatch } from '../../inference/detector.ts';
import { DataType, encodeModel, type OnnxModel } from '../../onnx/index.ts';
import type { ModelCard } from '../card.ts';
import {
  allocActivations,
  assignTargets,
  BOX_ROWS,
  channelStats,
  decodeRaw,
  DETECTION_OUTPUT,
  forwardRaw,
  headGraph,
  initHead,
  standardize,
  type DetectionHead,
} from './detection-head.ts';
import { trainDetectionHead } from './detection-train.ts';
import { HEAD_ONNX_TOLERANCE } from './classifier.ts';
import { computeFeatures, HEAD_OPSET, loadModelBytes } from './extractor.ts';
import { checkWritableOut, mergeModel, writeHeadModel } from './merge.ts';
import type { FeatureExtractor, FeatureMap, HeadFitOptions, HeadFitResult, HeadParams } from './types.ts';


/** Images per onnxruntime batch when checking the merged model. */
const VERIFY_BATCH = 16;

type Box = [number, number, number, number, number];

function checkParams(p: HeadParams): void {
  const problems: ConfigurationError[] = [];
  const positiveInt = (field: keyof HeadParams, min: number) => {
    const v = p[field];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) problems.push(new ConfigurationError(`param \`${field}\` must be an integer ≥ ${min}, got ${String(v)}`, { field }));
  };
  if (p.head !== 'linear' && p.head !== 'mlp') problems.push(new ConfigurationError(`param \`head\` must be linear or mlp, got ${String(p.head)}`, { field: 'head' }));
  if (p.head === 'mlp') positiveInt('hidden-units', 1);
  positiveInt('epochs', 1);
  positiveInt('batch-size', 1);
  positiveInt('patience', 1);
  if (!(p['head-learning-rate'] > 0) || !Number.isFinite(p['head-learning-rate'])) {
    problems.push(new ConfigurationError(`param \`head-learning-rate\` must be > 0, got ${p['head-learning-rate']}`, { field: 'head-learning-rate' }));
  }
  if (!(p['weight-decay'] >= 0) || !Number.isFinite(p['weight-decay'])) {
    problems.push(new ConfigurationError(`param \`weight-decay\` must be ≥ 0, got ${p['weight-decay']}`, { field: 'weight-decay' }));
  }
  if (!Number.isInteger(p.seed)) problems.push(new ConfigurationError(`param \`seed\` must be an integer, got ${p.seed}`, { field: 'seed' }));
  if (problems.length) throw ConfigurationError.all(problems);
}

/** Open a split and check it is a detection split with valid boxes; returns the boxes per row. */
async function openSplit(o: HeadFitOptions, split: 'train' | 'val'): Promise<{ file: ImageTensorFile; boxes: Box[][]; display: string }> {
  const display = join(o.dataDisplay, split);
  const file = await openImageTensorFile(o.dataDir, split);
  try {
    const meta = file.meta;
    const indexFile = join(display, 'index.jsonl');
    if (meta.task !== 'detection') {
      throw new DataError(`prepared split is for task \`${meta.task}\`, the detection head needs a detection split (prepare-data task detection)`, { file: join(display, 'meta.json'), field: 'task' });
    }
    if (!Array.isArray(meta.classNames) || meta.classNames.length < 2) {
      throw new DataError('meta.json needs at least two `classNames`', { file: join(display, 'meta.json'), field: 'classNames' });
    }
    if (file.items.length === 0) {
      throw new DataError(
        split === 'train' ? 'training data is empty (no images)' : 'validation data is empty (no images): early stopping and the model card need it',
        { file: indexFile },
      );
    }
    const K = meta.classNames.length;
    const size = meta.shape[1];
    const boxes = file.items.map((item, line) => {
      const list = item.boxes ?? [];
      if (!Array.isArray(list)) throw new DataError(`image ${item.id}: \`boxes\` is not a list`, { file: indexFile, line: line + 1, field: 'boxes' });
      return list.map((b, j) => {
        const ok =
          Array.isArray(b) &&
          b.length === 5 &&
          b.every((v) => typeof v === 'number' && Number.isFinite(v)) &&
          Number.isInteger(b[0]) &&
          b[0] >= 0 &&
          b[0] < K &&
          b[3] > b[1] &&
          b[4] > b[2];
        if (!ok) {
          throw new DataError(`image ${item.id}: box ${j} ${JSON.stringify(b)} is not [class 0..${K - 1}, x1, y1, x2 > x1, y2 > y1] in ${size}-pixel letterbox coordinates`, {
            file: indexFile,
            line: line + 1,
            field: 'boxes',
          });
        }
        return b as Box;
      });
    });
    return { file, boxes, display };
  } catch (error) {
    await file.close();
    throw error;
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Nearest-rank quantile of sorted values. */
function quantile(sorted: number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

/**
 * Anchor per axis: the training boxes' median size, raised where needed so the largest sizes
 * (99th percentile) stay within reach of (2σ)² · anchor < 4 · anchor.
 */
export function fitAnchor(boxes: readonly (readonly number[])[]): [number, number] {
  const ws = boxes.map((b) => b[3]! - b[1]!).sort((a, b) => a - b);
  const hs = boxes.map((b) => b[4]! - b[2]!).sort((a, b) => a - b);
  return [Math.max(median(ws), quantile(ws, 0.99) / 3.9), Math.max(median(hs), quantile(hs, 0.99) / 3.9)];
}

/** Extractor and head as one model: `images` [N, 3, S, S] → `output0` [N, 4 + classes, cells]. */
export function detectionModel(ex: FeatureExtractor, head: DetectionHead, classNames: readonly string[]): OnnxModel {
  const graph = headGraph(head, ex.output);
  const model = mergeModel(
    { ...ex, opset: Math.max(ex.opset, HEAD_OPSET) },
    { ...graph, outputs: [{ name: DETECTION_OUTPUT, elemType: DataType.FLOAT, shape: ['N', BOX_ROWS + head.classes, head.height * head.width] }] },
    // As Ultralytics exports carry them, so tools that read YOLO metadata find the classes.
    {
      task: 'detect',
      stride: String(head.stride),
      imgsz: `[${ex.imageSize}, ${ex.imageSize}]`,
      names: `{${classNames.map((n, i) => `${i}: '${n.replace(/'/g, "\\'")}'`).join(', ')}}`,
    },
  );
  return { ...model, docString: 'Skin-Twin detection head on a frozen feature extractor; output0 in the YOLOv8 layout [N, 4 + classes, cells]' };
}

/** Confidence the validation mAP is computed at (as Ultralytics' val does). */
const MAP_CONFIDENCE = 0.001;

/**
 * Run the merged model in onnxruntime over the validation images and compare with the trainer's
 * forward pass on the same images: the largest absolute difference over every output value. The
 * same outputs, decoded as any YOLOv8 export is, give the validation samples for mAP.
 */
async function verifyOnnx(
  bytes: Uint8Array,
  ex: FeatureExtractor,
  head: DetectionHead,
  val: ImageTensorFile,
  valFeatures: FeatureMap,
  o: HeadFitOptions,
): Promise<{ maxAbsDiff: number; provider: string; samples: DetectionSample[] }> {
  const model = await loadModelBytes(bytes, { display: `${o.outDisplay}/model.onnx`, imageSize: ex.imageSize, inputName: ex.input, provider: o.provider, logger: o.logger });
  const P = head.height * head.width;
  const rows = BOX_ROWS + head.classes;
  const per = valFeatures.channels * P;
  const acts = allocActivations(head);
  const mine = new Float32Array(rows * P);
  let worst = 0;
  let done = 0;
  const samples: DetectionSample[] = [];
  try {
    for await (const batch of val.batches(VERIFY_BATCH)) {
      if (o.signal?.aborted) throw new InterruptedError(`${o.model}: interrupted`);
      const n = batch.rows.length;
      const out = await model.session.run({ [model.inputNames[0]!]: model.tensor(batch.data, [n, 3, ex.imageSize, ex.imageSize]) });
      const t = out[DETECTION_OUTPUT];
      if (!t || t.dims.length !== 3 || t.dims[0] !== n || t.dims[1] !== rows || t.dims[2] !== P) {
        throw new Error(`the merged model's ${DETECTION_OUTPUT} has shape [${t?.dims.join(', ') ?? ''}], expected [${n}, ${rows}, ${P}]`);
      }
      const data = t.data as Float32Array;
      splitDetectorBatch(data, t.dims).forEach((view, k) => {
        const item = batch.items[k]!;
        const pred = decodeDetections(view, { confidence: MAP_CONFIDENCE, mapping: item, width: item.width, height: item.height });
        samples.push({
          id: item.id,
          gt: (item.boxes ?? []).map((b) => ({ cls: b[0], box: fromLetterbox([b[1], b[2], b[3], b[4]], item) })),
          pred: pred.map((d) => ({ cls: d.cls, conf: d.confidence, box: d.box })),
        });
      });
      for (let k = 0; k < n; k++) {
        decodeRaw(head, forwardRaw(head, valFeatures.data, (done + k) * per, acts), mine, 0);
        const base = k * rows * P;
        for (let i = 0; i < rows * P; i++) {
          const d = Math.abs(data[base + i]! - mine[i]!);
          if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
        }
      }
      done += n;
    }
  } finally {
    await model.session.release();
  }
  return { maxAbsDiff: worst, provider: model.provider, samples };
}

/**
 * Train the detection head on a prepared detection folder, merge it with the extractor, check the
 * merged model in onnxruntime against the trainer on the validation split, and write model.onnx
 * and model-card.json (atomically; nothing is written when any step fails).
 */
export async function fitDetectionHead(o: HeadFitOptions): Promise<HeadFitResult> {
  checkParams(o.params);
  await checkWritableOut(o.outDir, o.outDisplay);
  const ex = o.extractor;
  const startedAt = o.now();
  const t0 = performance.now();
  const train = await openSplit(o, 'train');
  let val: Awaited<ReturnType<typeof openSplit>> | undefined;
  try {
    val = await openSplit(o, 'val');
    const meta = train.file.meta;
    const classNames = meta.classNames;
    if (val.file.meta.classNames.join('\n') !== classNames.join('\n')) {
      throw new DataError('validation and training splits name different classes', { file: join(val.display, 'meta.json'), field: 'classNames' });
    }
    const allTrainBoxes = train.boxes.flat();
    if (allTrainBoxes.length === 0) {
      throw new DataError(`the training split has ${train.file.items.length} image(s) and no boxes at all: a detector needs labelled boxes`, {
        file: join(train.display, 'index.jsonl'),
        field: 'boxes',
      });
    }
    const size = meta.shape[1];
    if (size !== ex.imageSize || meta.shape[2] !== ex.imageSize) {
      throw new ConfigurationError(`prepared images are ${meta.shape[2]}×${size}, the extractor expects ${ex.imageSize}×${ex.imageSize} (prepare the data with that size)`, {
        file: join(train.display, 'meta.json'),
        field: 'size',
      });
    }
    o.logger.info(
      `${o.model}: detection head on ${train.file.items.length} training images (${allTrainBoxes.length} boxes), ${val.file.items.length} validation images, ${classNames.length} classes`,
    );

    const trainFeatures = await computeFeatures(ex, train.file, { provider: o.provider, logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) });
    const valFeatures = await computeFeatures(ex, val.file, { provider: o.provider, logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) });
    const P = trainFeatures.height * trainFeatures.width;
    const stats = channelStats(trainFeatures.data, trainFeatures.n, trainFeatures.channels, P);
    const anchor = fitAnchor(allTrainBoxes);
    const h0 = initHead(
      {
        classes: classNames.length,
        channels: trainFeatures.channels,
        height: trainFeatures.height,
        width: trainFeatures.width,
        stride: ex.stride,
        anchor,
        mean: stats.mean,
        invStd: stats.invStd,
      },
      o.params.head === 'mlp' ? o.params['hidden-units'] : null,
      o.params.seed,
    );
    standardize(trainFeatures.data, trainFeatures.n, h0);
    standardize(valFeatures.data, valFeatures.n, h0);
    const trainTargets = train.boxes.map((b) => assignTargets(h0, b));
    const valTargets = val.boxes.map((b) => assignTargets(h0, b));
    o.logger.info(
      `${o.model}: ${trainFeatures.channels} feature channels on a ${trainFeatures.width}×${trainFeatures.height} grid (stride ${ex.stride}), ` +
        `anchor ${anchor[0].toFixed(1)}×${anchor[1].toFixed(1)} px, ${trainTargets.reduce((s, t) => s + t.cells.length, 0)} positive cells`,
    );
    const trained = await o.logger.group(`${o.model}: training the detection head`, () =>
      trainDetectionHead(h0, trainFeatures, trainTargets, valFeatures, valTargets, { model: o.model, params: o.params, logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) }),
    );
    const seconds = (performance.now() - t0) / 1000;

    const bytes = encodeModel(detectionModel(ex, trained.head, classNames));
    const { maxAbsDiff, provider, samples } = await verifyOnnx(bytes, ex, trained.head, val.file, valFeatures, o);
    if (!(maxAbsDiff <= HEAD_ONNX_TOLERANCE)) {
      throw new Error(
        `the exported ONNX model disagrees with the trainer on the validation split (max |Δ| = ${maxAbsDiff} > ${HEAD_ONNX_TOLERANCE}): the model is not trustworthy and was not published`,
      );
    }

    const scores = scoreDetections(samples, classNames);
    const onnxSha256 = sha256(bytes);
    const params = Object.fromEntries(Object.entries(o.params).filter(([, v]) => v !== undefined)) as Record<string, number | string>;
    const card: ModelCard = {
      format: 'skintwin-model-card',
      version: 1,
      model: o.model,
      task: 'object-detection',
      createdAt: o.now().toISOString(),
      classes: classNames.map((name, i) => ({ index: i, id: i, name })),
      input: { name: ex.input, dtype: 'float32', shape: ['N', 3, size, size], features: [] },
      preprocessing: {
        type: 'image',
        size,
        resize: meta.resize,
        ...(meta.padValue !== undefined ? { padValue: meta.padValue } : {}),
        mean: [...meta.mean],
        std: [...meta.std],
      },
      output: { detections: { name: DETECTION_OUTPUT, dtype: 'float32', shape: ['N', BOX_ROWS + classNames.length, P] } },
      trainer: {
        name: 'head',
        objective: `detection: BCE class scores over every cell + GIoU boxes on positive cells, anchor ${anchor.map((a) => a.toFixed(2)).join('×')} px`,
        params,
        rounds: trained.epochs,
        bestIteration: trained.bestEpoch,
      },
      trainingData: { ...o.trainingData, trainRows: train.file.items.length, valRows: val.file.items.length },
      code: { commit: o.commit },
      training: { startedAt: startedAt.toISOString(), seconds: Math.round(seconds * 1000) / 1000, executionProvider: provider },
      metrics: { validation: { rows: val.file.items.length, map50: scores.map50, map50_95: scores.map50_95 } },
      extractor: ex.record,
      featureImportance: [],
      onnx: { file: 'model.onnx', sha256: onnxSha256, bytes: bytes.length, maxAbsDiffVsTrainer: maxAbsDiff },
    };
    const cardPath = await writeHeadModel(o.outDir, o.outDisplay, bytes, card);
    o.logger.info(
      `${o.model}: ${trained.epochs} epoch(s), best ${trained.bestEpoch} (validation loss ${trained.bestValLoss.toFixed(4)}), ${seconds.toFixed(1)} s; ` +
        `validation mAP@0.5 ${scores.map50.toFixed(4)}, mAP@0.5:0.95 ${scores.map50_95.toFixed(4)}; onnxruntime matches the trainer within ${maxAbsDiff.toExponential(1)}`,
    );
    return { card, cardPath, onnxSha256, maxAbsDiff };
  } finally {
    await train.file.close();
    await val?.file.close();
  }
}
