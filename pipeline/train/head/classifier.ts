// The classification head (skin-type): global mean and max pooling of the frozen extractor's
// feature map, standardisation, softmax regression or a one-hidden-layer MLP trained in TypeScript
// (Adam, L2 decay, inverse-frequency class weights, early stopping on the validation log loss),
// merged with the extractor into one model.onnx that is checked against the trainer before it is written.

import { ConfigurationError, DataError, InterruptedError } from '../../core/errors.ts';
import { sha256 } from '../../core/fs.ts';
import { openImageTensorFile, type ImageTensorFile } from '../../data/images/tensor-file.ts';
import { encodeModel, floatTensor, DataType, type OnnxNode, type OnnxTensor } from '../../onnx/index.ts';
import type { ModelCard } from '../card.ts';
import { builtinChannelNames, extractorBatch, extractorDisplay, loadModelBytes, streamFeatures, IMAGES_INPUT } from './extractor.ts';
import { checkWritableOut, mergeModel, writeHeadModel, type HeadGraph } from './merge.ts';
import { Adam, inverseFrequencyWeights, paramBlock, Rng, shuffle, standardisation, toFloat32, type ParamBlock } from './optim.ts';
import type { FeatureExtractor, HeadFitOptions, HeadFitResult, HeadParams } from './types.ts';

export const PROBABILITIES_OUTPUT = 'probabilities';
/** Largest |onnxruntime − trainer| probability the written model may show on the validation split. */
export const HEAD_ONNX_TOLERANCE = 1e-4;
/** Default head params (the stage and the CLI fill what the user leaves out from these). */
export const HEAD_DEFAULTS: HeadParams = {
  head: 'linear',
  'hidden-units': 64,
  epochs: 500,
  'batch-size': 32,
  'head-learning-rate': 0.01,
  'weight-decay': 0.0001,
  patience: 30,
  seed: 42,
};

// --- data -----------------------------------------------------------------------------------

export interface ClassificationSplits {
  train: ImageTensorFile;
  val: ImageTensorFile;
  classNames: string[];
  yTrain: Int32Array;
  yVal: Int32Array;
}

/** Class index per row of a split; a missing or unknown label names the image and the index file. */
function labelsOf(file: ImageTensorFile, classes: number, display: string): Int32Array {
  const y = new Int32Array(file.items.length);
  file.items.forEach((item, i) => {
    const label = item.label;
    if (typeof label !== 'number' || !Number.isInteger(label) || label < 0 || label >= classes) {
      throw new DataError(`${item.file} has ${label === undefined ? 'no label' : `label ${JSON.stringify(label)}`}; expected a class index 0…${classes - 1}`, {
        file: display,
        line: i + 1,
        field: 'label',
      });
    }
    y[i] = label;
  });
  return y;
}

/**
 * The prepared classification splits with their checks: a split that is empty, training with a
 * single class, or a validation class absent from training is a DataError naming the file.
 */
export async function openClassificationSplits(dataDir: string, dataDisplay: string): Promise<ClassificationSplits> {
  const train = await openImageTensorFile(dataDir, 'train');
  let val: ImageTensorFile | undefined;
  try {
    val = await openImageTensorFile(dataDir, 'val');
    const meta = train.meta;
    const trainIndex = `${dataDisplay}/train/index.jsonl`;
    const valIndex = `${dataDisplay}/val/index.jsonl`;
    if (meta.task !== 'classification') {
      throw new ConfigurationError(`the prepared data is for task \`${meta.task}\`; the classification head needs a prepared classification image folder`, {
        file: `${dataDisplay}/train/meta.json`,
        field: 'task',
      });
    }
    const classNames = meta.classNames;
    if (classNames.length < 2) throw new DataError(`meta.json lists ${classNames.length} class(es); a classifier needs at least two`, { file: `${dataDisplay}/train/meta.json` });
    if (val.meta.classNames.join('\n') !== classNames.join('\n')) {
      throw new DataError(`validation classes (${val.meta.classNames.join(', ')}) differ from training's (${classNames.join(', ')})`, { file: `${dataDisplay}/val/meta.json` });
    }
    if (train.items.length === 0) throw new DataError('training split is empty (no images)', { file: trainIndex });
    if (val.items.length === 0) throw new DataError('validation split is empty (no images): early stopping and the model card need it', { file: valIndex });
    const yTrain = labelsOf(train, classNames.length, trainIndex);
    const yVal = labelsOf(val, classNames.length, valIndex);
    const inTrain = new Set(yTrain);
    if (inTrain.size < 2) {
      throw new DataError(`training data has a single class (${classNames[yTrain[0]!]}): a classifier needs at least two`, { file: trainIndex, field: 'label' });
    }
    const unseen = [...new Set(yVal)].filter((k) => !inTrain.has(k)).map((k) => classNames[k]!);
    if (unseen.length) {
      throw new DataError(`validation has class(es) ${unseen.join(', ')} that never occur in training: re-split the data so training covers every class`, {
        file: valIndex,
        field: 'label',
      });
    }
    return { train, val, classNames, yTrain, yVal };
  } catch (error) {
    await train.close();
    await val?.close();
    throw error;
  }
}

/** Per image: the mean of every channel, then the max of every channel (2·C values). */
export function poolFeatureMap(values: Float32Array, channels: number, plane: number, out: Float64Array, offset: number): void {
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    let max = -Infinity;
    const base = c * plane;
    for (let p = 0; p < plane; p++) {
      const v = values[base + p]!;
      sum += v;
      if (v > max) max = v;
    }
    out[offset + c] = sum / plane;
    out[offset + channels + c] = max;
  }
}

/** Pooled features of a whole split: row-major [n, 2·channels], float64; memory is n·2C values. */
export async function pooledFeatures(
  ex: FeatureExtractor,
  file: ImageTensorFile,
  o: { batchSize: number; provider: HeadFitOptions['provider']; logger: HeadFitOptions['logger']; signal?: AbortSignal },
): Promise<{ x: Float64Array; provider: 'cpu' | 'cuda' }> {
  const f = 2 * ex.channels;
  const x = new Float64Array(file.items.length * f);
  const { provider } = await streamFeatures(ex, file, o, (i, values, h, w) => poolFeatureMap(values, ex.channels, h * w, x, i * f));
  return { x, provider };
}

// --- the head -------------------------------------------------------------------------------

export interface TrainedHead {
  kind: 'linear' | 'mlp';
  features: number;
  classes: number;
  hidden: number;
  mean: Float64Array;
  std: Float64Array;
  /** linear: [w (K×F), b (K)]; mlp: [w1 (H×F), b1 (H), w2 (K×H), b2 (K)], float32-rounded. */
  blocks: ParamBlock[];
  epochs: number;
  bestEpoch: number;
  bestValLoss: number;
}

/** Probabilities of standardised rows `z` [n, F] → out [n, K]. `hiddenOut` receives the MLP's activations. */
function forward(head: Omit<TrainedHead, 'epochs' | 'bestEpoch' | 'bestValLoss'>, z: Float64Array, zOff: number, out: Float64Array, outOff: number, hiddenOut?: Float64Array): void {
  const { features: F, classes: K, hidden: H } = head;
  let input = z;
  let inOff = zOff;
  let width = F;
  let wBlock = head.blocks[0]!.value;
  let bBlock = head.blocks[1]!.value;
  if (head.kind === 'mlp') {
    const h = hiddenOut ?? new Float64Array(H);
    for (let j = 0; j < H; j++) {
      let s = bBlock[j]!;
      for (let i = 0; i < F; i++) s += wBlock[j * F + i]! * z[zOff + i]!;
      h[j] = s > 0 ? s : 0;
    }
    input = h;
    inOff = 0;
    width = H;
    wBlock = head.blocks[2]!.value;
    bBlock = head.blocks[3]!.value;
  }
  let max = -Infinity;
  for (let k = 0; k < K; k++) {
    let s = bBlock[k]!;
    for (let i = 0; i < width; i++) s += wBlock[k * width + i]! * input[inOff + i]!;
    out[outOff + k] = s;
    if (s > max) max = s;
  }
  let sum = 0;
  for (let k = 0; k < K; k++) sum += out[outOff + k] = Math.exp(out[outOff + k]! - max);
  for (let k = 0; k < K; k++) out[outOff + k] = out[outOff + k]! / sum;
}

/** Probabilities of raw pooled rows `x` [n, F] (standardised here) → [n, K]. */
export function predictHead(head: TrainedHead, x: Float64Array, n: number): Float64Array {
  const F = head.features;
  const z = new Float64Array(F);
  const out = new Float64Array(n * head.classes);
  for (let r = 0; r < n; r++) {
    for (let i = 0; i < F; i++) z[i] = (x[r * F + i]! - head.mean[i]!) / head.std[i]!;
    forward(head, z, 0, out, r * head.classes);
  }
  return out;
}

/** Mean −log p(y), weighted per class when `weights` is given. */
export function logLoss(p: Float64Array, y: Int32Array, classes: number, weights?: Float64Array): number {
  let sum = 0;
  let total = 0;
  for (let r = 0; r < y.length; r++) {
    const w = weights ? weights[y[r]!]! : 1;
    sum += -w * Math.log(Math.max(p[r * classes + y[r]!]!, 1e-15));
    total += w;
  }
  return total > 0 ? sum / total : 0;
}

export interface TrainHeadOptions {
  params: HeadParams;
  logger: HeadFitOptions['logger'];
  signal?: AbortSignal;
}

/**
 * Train the head on pooled features. Deterministic for a seed: initialisation and minibatch order
 * come from it. Keeps the weights of the epoch with the lowest class-weighted validation log loss.
 */
export function trainHead(
  xTrain: Float64Array,
  yTrain: Int32Array,
  xVal: Float64Array,
  yVal: Int32Array,
  features: number,
  classes: number,
  o: TrainHeadOptions,
): TrainedHead {
  const p = o.params;
  const F = features;
  const K = classes;
  const nTrain = yTrain.length;
  const nVal = yVal.length;
  const { mean, std } = standardisation(xTrain, nTrain, F);
  const standardise = (x: Float64Array, n: number) => {
    const z = new Float64Array(n * F);
    for (let r = 0; r < n; r++) for (let i = 0; i < F; i++) z[r * F + i] = (x[r * F + i]! - mean[i]!) / std[i]!;
    return z;
  };
  const zTrain = standardise(xTrain, nTrain);
  const zVal = standardise(xVal, nVal);
  const weights = inverseFrequencyWeights(yTrain, K);
  const rng = new Rng(p.seed, 0x4ead);
  const H = p.head === 'mlp' ? p['hidden-units'] : 0;
  const blocks =
    p.head === 'mlp'
      ? [paramBlock('w1', H * F, true), paramBlock('b1', H, false), paramBlock('w2', K * H, true), paramBlock('b2', K, false)]
      : [paramBlock('w', K * F, true), paramBlock('b', K, false)];
  if (p.head === 'mlp') {
    // He initialisation for the ReLU layer, Glorot-scale for the output layer.
    const s1 = Math.sqrt(2 / F);
    const s2 = Math.sqrt(1 / H);
    blocks[0]!.value.forEach((_, i, a) => (a[i] = rng.normal() * s1));
    blocks[2]!.value.forEach((_, i, a) => (a[i] = rng.normal() * s2));
  }
  const head = { kind: p.head, features: F, classes: K, hidden: H, mean, std, blocks };
  const adam = new Adam(blocks, p['head-learning-rate'], p['weight-decay']);
  const order = Int32Array.from({ length: nTrain }, (_, i) => i);
  const probs = new Float64Array(K);
  const hidden = new Float64Array(H);
  const dHidden = new Float64Array(H);
  const valProbs = new Float64Array(nVal * K);
  let best = { loss: Infinity, epoch: 0, values: blocks.map((b) => b.value.slice()) };
  let epoch = 0;
  const batchSize = Math.max(1, p['batch-size']);
  const logEvery = Math.max(1, Math.round(p.epochs / 10));
  for (epoch = 1; epoch <= p.epochs; epoch++) {
    if (o.signal?.aborted) throw new InterruptedError();
    shuffle(order, rng);
    for (let start = 0; start < nTrain; start += batchSize) {
      const end = Math.min(nTrain, start + batchSize);
      let wSum = 0;
      for (let b = start; b < end; b++) wSum += weights[yTrain[order[b]!]!]!;
      if (wSum <= 0) continue;
      for (let b = start; b < end; b++) {
        const r = order[b]!;
        const y = yTrain[r]!;
        const w = weights[y]! / wSum;
        forward(head, zTrain, r * F, probs, 0, hidden);
        // dL/dlogit_k = w·(p_k − [k = y]).
        if (p.head === 'linear') {
          const gw = blocks[0]!.grad;
          const gb = blocks[1]!.grad;
          for (let k = 0; k < K; k++) {
            const d = w * (probs[k]! - (k === y ? 1 : 0));
            gb[k]! += d;
            for (let i = 0; i < F; i++) gw[k * F + i]! += d * zTrain[r * F + i]!;
          }
        } else {
          const [w1, b1, w2, b2] = blocks as [ParamBlock, ParamBlock, ParamBlock, ParamBlock];
          dHidden.fill(0);
          for (let k = 0; k < K; k++) {
            const d = w * (probs[k]! - (k === y ? 1 : 0));
            b2.grad[k]! += d;
            for (let j = 0; j < H; j++) {
              w2.grad[k * H + j]! += d * hidden[j]!;
              dHidden[j]! += d * w2.value[k * H + j]!;
            }
          }
          for (let j = 0; j < H; j++) {
            if (hidden[j]! <= 0) continue;
            const d = dHidden[j]!;
            b1.grad[j]! += d;
            for (let i = 0; i < F; i++) w1.grad[j * F + i]! += d * zTrain[r * F + i]!;
          }
        }
      }
      adam.step();
    }
    for (let r = 0; r < nVal; r++) forward(head, zVal, r * F, valProbs, r * K, hidden);
    const loss = logLoss(valProbs, yVal, K, weights);
    if (!Number.isFinite(loss)) throw new DataError(`training diverged at epoch ${epoch} (validation log loss ${loss}): lower \`head-learning-rate\``, { field: 'head-learning-rate' });
    if (loss < best.loss - 1e-9) best = { loss, epoch, values: blocks.map((b) => b.value.slice()) };
    if (epoch % logEvery === 0 || epoch === 1) o.logger.info(`head: epoch ${epoch}: validation log loss ${loss.toFixed(4)} (best ${best.loss.toFixed(4)} at epoch ${best.epoch})`);
    if (epoch - best.epoch >= p.patience) {
      o.logger.info(`head: early stop at epoch ${epoch}: no better validation log loss for ${p.patience} epochs; keeping epoch ${best.epoch}`);
      break;
    }
  }
  blocks.forEach((b, k) => b.value.set(toFloat32(best.values[k]!)));
  return {
    ...head,
    mean: toFloat32(mean),
    std: toFloat32(std),
    epochs: Math.min(epoch, p.epochs),
    bestEpoch: best.epoch,
    bestValLoss: best.loss,
  };
}

/** The head as ONNX nodes reading the feature map: pool, standardise, Gemm(s), Softmax → `probabilities`. */
export function classificationHeadGraph(ex: FeatureExtractor, head: TrainedHead): HeadGraph {
  const F = head.features;
  const K = head.classes;
  const H = head.hidden;
  const inits: OnnxTensor[] = [
    floatTensor('head/mean', [F], head.mean),
    floatTensor('head/std', [F], head.std),
  ];
  const axis1 = [{ name: 'axis', type: 'int' as const, value: 1 }];
  const gemm = (x: string, w: string, b: string, out: string): OnnxNode => ({
    opType: 'Gemm',
    inputs: [x, w, b],
    outputs: [out],
    attributes: [{ name: 'transB', type: 'int', value: 1 }],
    name: `${out}_node`,
  });
  const nodes: OnnxNode[] = [
    { opType: 'GlobalAveragePool', inputs: [ex.output], outputs: ['head/mean_pool'], attributes: [], name: 'head/mean_pool_node' },
    { opType: 'GlobalMaxPool', inputs: [ex.output], outputs: ['head/max_pool'], attributes: [], name: 'head/max_pool_node' },
    { opType: 'Concat', inputs: ['head/mean_pool', 'head/max_pool'], outputs: ['head/pooled4d'], attributes: axis1, name: 'head/pooled_node' },
    { opType: 'Flatten', inputs: ['head/pooled4d'], outputs: ['head/pooled'], attributes: axis1, name: 'head/flatten_node' },
    { opType: 'Sub', inputs: ['head/pooled', 'head/mean'], outputs: ['head/centred'], attributes: [], name: 'head/centre_node' },
    { opType: 'Div', inputs: ['head/centred', 'head/std'], outputs: ['head/z'], attributes: [], name: 'head/scale_node' },
  ];
  if (head.kind === 'linear') {
    inits.push(floatTensor('head/w', [K, F], head.blocks[0]!.value), floatTensor('head/b', [K], head.blocks[1]!.value));
    nodes.push(gemm('head/z', 'head/w', 'head/b', 'head/logits'));
  } else {
    inits.push(
      floatTensor('head/w1', [H, F], head.blocks[0]!.value),
      floatTensor('head/b1', [H], head.blocks[1]!.value),
      floatTensor('head/w2', [K, H], head.blocks[2]!.value),
      floatTensor('head/b2', [K], head.blocks[3]!.value),
    );
    nodes.push(gemm('head/z', 'head/w1', 'head/b1', 'head/hidden_pre'));
    nodes.push({ opType: 'Relu', inputs: ['head/hidden_pre'], outputs: ['head/hidden'], attributes: [], name: 'head/relu_node' });
    nodes.push(gemm('head/hidden', 'head/w2', 'head/b2', 'head/logits'));
  }
  nodes.push({ opType: 'Softmax', inputs: ['head/logits'], outputs: [PROBABILITIES_OUTPUT], attributes: axis1, name: 'head/softmax_node' });
  return { nodes, initializers: inits, outputs: [{ name: PROBABILITIES_OUTPUT, elemType: DataType.FLOAT, shape: ['N', K] }] };
}

/** Accuracy, macro F1 over the classes, and the majority-class baseline. */
export function classificationMetrics(p: Float64Array, y: Int32Array, yTrain: Int32Array, classes: number): { accuracy: number; f1Macro: number; baselineAccuracy: number } {
  const tp = new Float64Array(classes);
  const predicted = new Float64Array(classes);
  const actual = new Float64Array(classes);
  let correct = 0;
  for (let r = 0; r < y.length; r++) {
    let best = 0;
    for (let k = 1; k < classes; k++) if (p[r * classes + k]! > p[r * classes + best]!) best = k;
    predicted[best]!++;
    actual[y[r]!]!++;
    if (best === y[r]) {
      correct++;
      tp[best]!++;
    }
  }
  // Macro F1 over the classes that occur in validation or are predicted there.
  let f1Sum = 0;
  let counted = 0;
  for (let k = 0; k < classes; k++) {
    if (actual[k] === 0 && predicted[k] === 0) continue;
    f1Sum += (2 * tp[k]!) / (actual[k]! + predicted[k]!);
    counted++;
  }
  const trainCounts = new Float64Array(classes);
  for (const k of yTrain) trainCounts[k]!++;
  let majority = 0;
  for (let k = 1; k < classes; k++) if (trainCounts[k]! > trainCounts[majority]!) majority = k;
  const baseline = y.reduce((n, k) => n + (k === majority ? 1 : 0), 0);
  return { accuracy: correct / y.length, f1Macro: counted ? f1Sum / counted : 0, baselineAccuracy: baseline / y.length };
}

/** Which pooled features weigh most in the head (sum of |standardised weight| over the first layer). */
function importance(ex: FeatureExtractor, head: TrainedHead): ModelCard['featureImportance'] {
  const F = head.features;
  const C = ex.channels;
  const rows = head.kind === 'mlp' ? head.hidden : head.classes;
  const w = head.blocks[0]!.value;
  const names = ex.record.kind === 'builtin' && builtinChannelNames().length === C ? builtinChannelNames() : Array.from({ length: C }, (_, c) => `channel-${c}`);
  const gains = Array.from({ length: F }, (_, i) => {
    let g = 0;
    for (let r = 0; r < rows; r++) g += Math.abs(w[r * F + i]!);
    return g;
  });
  const total = gains.reduce((a, b) => a + b, 0) || 1;
  return gains
    .map((gain, i) => ({ feature: `${i < C ? 'mean' : 'max'}:${names[i % C]}`, gain, cover: 0, gainShare: gain / total }))
    .sort((a, b) => b.gain - a.gain)
    .slice(0, 20);
}

/** Largest |onnxruntime − trainer| probability of the merged model over the validation split. */
async function verifyMerged(
  bytes: Uint8Array,
  ex: FeatureExtractor,
  val: ImageTensorFile,
  expected: Float64Array,
  classes: number,
  o: HeadFitOptions,
): Promise<number> {
  const model = await loadModelBytes(bytes, { display: `${o.outDisplay}/model.onnx`, imageSize: ex.imageSize, inputName: IMAGES_INPUT, provider: o.provider, logger: o.logger });
  let worst = 0;
  let r = 0;
  try {
    for await (const batch of val.batches(extractorBatch(o.params['batch-size'], model.provider))) {
      if (o.signal?.aborted) throw new InterruptedError();
      const n = batch.rows.length;
      const out = await model.session.run({ [IMAGES_INPUT]: model.tensor(batch.data, [n, 3, ex.imageSize, ex.imageSize]) });
      const t = out[PROBABILITIES_OUTPUT];
      const data = t?.data as Float32Array | undefined;
      if (!t || !data || data.length !== n * classes) throw new Error(`merged model output \`${PROBABILITIES_OUTPUT}\` has shape [${t?.dims.join(', ')}], expected [${n}, ${classes}]`);
      for (let i = 0; i < n * classes; i++) {
        const d = Math.abs(data[i]! - expected[r * classes + i]!);
        if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
      }
      r += n;
    }
  } finally {
    await model.session.release();
  }
  return worst;
}

/**
 * Train the classification head on the prepared image folder and write model.onnx (extractor +
 * head, input `images` [N, 3, S, S], output `probabilities` [N, K]) and model-card.json. The merged
 * file must reproduce the trainer's probabilities on the validation split, else nothing is written.
 */
export async function fitClassificationHead(o: HeadFitOptions): Promise<HeadFitResult> {
  const p = o.params;
  const ex = o.extractor;
  await checkWritableOut(o.outDir, o.outDisplay);
  const startedAt = o.now();
  const t0 = performance.now();
  const splits = await openClassificationSplits(o.dataDir, o.dataDisplay);
  try {
    const { train, val, classNames, yTrain, yVal } = splits;
    const meta = train.meta;
    const K = classNames.length;
    const F = 2 * ex.channels;
    const counts = classNames.map((name, k) => `${name} ${yTrain.reduce((n, y) => n + (y === k ? 1 : 0), 0)}`);
    o.logger.info(`head: ${yTrain.length} training images (${counts.join(', ')}), ${yVal.length} validation images; ${extractorDisplay(ex)}, ${ex.channels} channels, stride ${ex.stride}`);
    const missing = classNames.filter((_, k) => !yTrain.includes(k));
    if (missing.length) o.logger.warn(`head: class(es) ${missing.join(', ')} have no training images: the model will rarely predict them`);

    const featureOptions = { batchSize: p['batch-size'], provider: o.provider, logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) };
    const tf = performance.now();
    const { x: xTrain, provider } = await pooledFeatures(ex, train, featureOptions);
    const { x: xVal } = await pooledFeatures(ex, val, featureOptions);
    const featureSeconds = (performance.now() - tf) / 1000;
    o.logger.info(`head: features of ${yTrain.length + yVal.length} images in ${featureSeconds.toFixed(1)} s (${((featureSeconds * 1000) / (yTrain.length + yVal.length)).toFixed(1)} ms per image)`);

    const head = trainHead(xTrain, yTrain, xVal, yVal, F, K, { params: p, logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) });
    const proba = predictHead(head, xVal, yVal.length);
    const { accuracy, f1Macro, baselineAccuracy } = classificationMetrics(proba, yVal, yTrain, K);
    const valLogLoss = logLoss(proba, yVal, K);

    const onnx = encodeModel(
      mergeModel(ex, classificationHeadGraph(ex, head), {
        'skintwin.model': o.model,
        'skintwin.classes': JSON.stringify(classNames),
      }),
    );
    const diff = await verifyMerged(onnx, ex, val, proba, K, o);
    if (!(diff <= HEAD_ONNX_TOLERANCE)) {
      throw new Error(
        `the merged ONNX model disagrees with the trainer on the validation split (max |Δp| = ${diff} > ${HEAD_ONNX_TOLERANCE}): the model is not trustworthy and was not written`,
      );
    }
    const seconds = (performance.now() - t0) / 1000;
    const onnxSha256 = sha256(onnx);
    const card: ModelCard = {
      format: 'skintwin-model-card',
      version: 1,
      model: o.model,
      task: 'image-classification',
      createdAt: o.now().toISOString(),
      classes: classNames.map((name, index) => ({ index, id: index, name })),
      input: { name: IMAGES_INPUT, dtype: 'float32', shape: ['N', 3, ex.imageSize, ex.imageSize], features: [] },
      preprocessing: {
        type: 'image',
        description: `RGB, resized to ${ex.imageSize}×${ex.imageSize} (${meta.resize}), (x/255 − mean)/std per channel, NCHW float32`,
        size: ex.imageSize,
        resize: meta.resize,
        ...(meta.resize === 'letterbox' && meta.padValue !== undefined ? { padValue: meta.padValue } : {}),
        mean: [...meta.mean],
        std: [...meta.std],
      },
      output: { probabilities: { name: PROBABILITIES_OUTPUT, dtype: 'float32', shape: ['N', K] } },
      trainer: {
        name: 'head',
        objective: `softmax cross-entropy, inverse-frequency class weights (${p.head})`,
        params: {
          head: p.head,
          'hidden-units': p.head === 'mlp' ? p['hidden-units'] : null,
          epochs: p.epochs,
          'batch-size': p['batch-size'],
          'head-learning-rate': p['head-learning-rate'],
          'weight-decay': p['weight-decay'],
          patience: p.patience,
          backbone: p.backbone ?? null,
          'backbone-output': p['backbone-output'] ?? null,
          seed: p.seed,
        },
        rounds: head.epochs,
        bestIteration: head.bestEpoch,
      },
      trainingData: { ...o.trainingData, trainRows: yTrain.length, valRows: yVal.length },
      code: { commit: o.commit },
      training: { startedAt: startedAt.toISOString(), seconds: Math.round(seconds * 1000) / 1000, executionProvider: provider },
      metrics: { validation: { rows: yVal.length, accuracy, logLoss: valLogLoss, baselineAccuracy, f1Macro } },
      extractor: ex.record,
      featureImportance: importance(ex, head),
      onnx: { file: 'model.onnx', sha256: onnxSha256, bytes: onnx.length, maxAbsDiffVsTrainer: diff },
    };
    const cardPath = await writeHeadModel(o.outDir, o.outDisplay, onnx, card);
    o.logger.info(
      `head: validation accuracy ${accuracy.toFixed(4)} (majority baseline ${baselineAccuracy.toFixed(4)}), macro F1 ${f1Macro.toFixed(4)}, log loss ${valLogLoss.toFixed(4)}; ` +
        `onnxruntime matches the trainer within ${diff.toExponential(1)}; ${seconds.toFixed(1)} s`,
    );
    return { card, cardPath, onnxSha256, maxAbsDiff: diff };
  } finally {
    await splits.train.close();
    await splits.val.close();
  }
}
