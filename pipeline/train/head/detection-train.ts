// Training the detection head: minibatch Adam over precomputed features with early stopping on the
// validation loss. The first layer (3×3 context, the bulk of the arithmetic) runs as two small
// onnxruntime graphs, its forward product and its weight gradient; the rest runs in TypeScript.

import { InterruptedError, DataError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { loadOrt } from '../../inference/session.ts';
import { DataType, encodeModel, int64Tensor, type OnnxModel, type OnnxNode } from '../../onnx/index.ts';
import {
  allocActivations,
  backward,
  BOX_ROWS,
  cloneHead,
  combineLoss,
  forwardRaw,
  gatherContext,
  headBlocks,
  imageLoss,
  iouTargets,
  type DetectionHead,
  type ImageTargets,
} from './detection-head.ts';
import { HEAD_IR_VERSION, HEAD_OPSET } from './extractor.ts';
import { Adam, Rng, shuffle } from './optim.ts';
import type { FeatureMap, HeadParams } from './types.ts';
import type { InferenceSession } from 'onnxruntime-node';

export interface TrainOptions {
  model: string;
  params: HeadParams;
  logger: Logger;
  signal?: AbortSignal;
}

export interface Trained {
  head: DetectionHead;
  epochs: number;
  bestEpoch: number;
  bestValLoss: number;
}

const FLOAT = DataType.FLOAT;

function node(opType: string, inputs: string[], outputs: string[], attributes: OnnxNode['attributes'] = []): OnnxNode {
  return { opType, inputs, outputs, attributes, name: outputs[0]! };
}

function tiny(name: string, nodes: OnnxNode[], inputs: [string, (string | number)[]][], outputs: [string, (string | number)[]][], inits = [] as OnnxModel['graph']['initializers']): Uint8Array {
  return encodeModel({
    irVersion: HEAD_IR_VERSION,
    opsets: [{ domain: '', version: HEAD_OPSET }],
    producerName: 'skintwin',
    graph: {
      name,
      nodes,
      initializers: inits,
      inputs: inputs.map(([n, shape]) => ({ name: n, elemType: FLOAT, shape })),
      outputs: outputs.map(([n, shape]) => ({ name: n, elemType: FLOAT, shape })),
    },
  });
}

/** The first layer on onnxruntime: forward `relu?(w · cols + b)` and the gradients `Σ d · colsᵀ`, `Σ d`. */
class FirstLayer {
  private constructor(
    private readonly ort: Awaited<ReturnType<typeof loadOrt>>,
    private readonly fwd: InferenceSession,
    private readonly grad: InferenceSession,
  ) {}

  static async create(relu: boolean): Promise<FirstLayer> {
    const ort = await loadOrt();
    const fwdNodes = [node('MatMul', ['w', 'cols'], ['wx']), node('Add', ['wx', 'b'], [relu ? 'pre' : 'out'])];
    if (relu) fwdNodes.push(node('Relu', ['pre'], ['out']));
    const fwd = tiny('head-first-layer', fwdNodes, [['cols', ['B', 'I', 'P']], ['w', ['O', 'I']], ['b', ['O', 1]]], [['out', ['B', 'O', 'P']]]);
    const grad = tiny(
      'head-first-layer-grad',
      [
        node('Transpose', ['cols'], ['colsT'], [{ name: 'perm', type: 'ints', value: [0, 2, 1] }]),
        node('MatMul', ['d', 'colsT'], ['dw']),
        node('ReduceSum', ['dw', 'axis0'], ['gw'], [{ name: 'keepdims', type: 'int', value: 0 }]),
        node('ReduceSum', ['d', 'axis02'], ['gb'], [{ name: 'keepdims', type: 'int', value: 0 }]),
      ],
      [['cols', ['B', 'I', 'P']], ['d', ['B', 'O', 'P']]],
      [['gw', ['O', 'I']], ['gb', ['O']]],
      [int64Tensor('axis0', [1], [0]), int64Tensor('axis02', [2], [0, 2])],
    );
    const options: InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      interOpNumThreads: 1,
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    };
    return new FirstLayer(ort, await ort.InferenceSession.create(fwd, options), await ort.InferenceSession.create(grad, options));
  }

  async forward(h: DetectionHead, cols: Float32Array, n: number): Promise<Float32Array> {
    const l = h.layers[0]!;
    const P = h.height * h.width;
    const out = await this.fwd.run({
      cols: new this.ort.Tensor('float32', cols.subarray(0, n * l.inputs * P), [n, l.inputs, P]),
      w: new this.ort.Tensor('float32', Float32Array.from(l.w.value), [l.outputs, l.inputs]),
      b: new this.ort.Tensor('float32', Float32Array.from(l.b.value), [l.outputs, 1]),
    });
    return out.out!.data as Float32Array;
  }

  /** Add the first layer's gradients for a batch (d: [n, outputs, cells]) into its blocks' `grad`. */
  async gradient(h: DetectionHead, cols: Float32Array, d: Float32Array, n: number): Promise<void> {
    const l = h.layers[0]!;
    const P = h.height * h.width;
    const out = await this.grad.run({
      cols: new this.ort.Tensor('float32', cols.subarray(0, n * l.inputs * P), [n, l.inputs, P]),
      d: new this.ort.Tensor('float32', d.subarray(0, n * l.outputs * P), [n, l.outputs, P]),
    });
    const w = out.gw!.data as Float32Array;
    const b = out.gb!.data as Float32Array;
    const gw = l.w.grad;
    const gb = l.b.grad;
    for (let i = 0; i < gw.length; i++) gw[i] = gw[i]! + w[i]!;
    for (let i = 0; i < gb.length; i++) gb[i] = gb[i]! + b[i]!;
  }

  async release(): Promise<void> {
    await this.fwd.release();
    await this.grad.release();
  }
}

/** Per-batch buffers. */
class Batch {
  readonly cols: Float32Array;
  readonly dFirst: Float32Array;
  constructor(h: DetectionHead, size: number) {
    const P = h.height * h.width;
    this.cols = new Float32Array(size * h.layers[0]!.inputs * P);
    this.dFirst = new Float32Array(size * h.layers[0]!.outputs * P);
  }
}

/** Loss over a whole split (for early stopping), in batches. */
async function splitLoss(h: DetectionHead, first: FirstLayer, f: FeatureMap, targets: ImageTargets[], batch: Batch, batchSize: number): Promise<number> {
  const P = h.height * h.width;
  const per = f.channels * P;
  const O = h.layers[0]!.outputs;
  const acts = allocActivations(h);
  let cls = 0;
  let box = 0;
  let positives = 0;
  for (let start = 0; start < f.n; start += batchSize) {
    const n = Math.min(batchSize, f.n - start);
    for (let k = 0; k < n; k++) gatherContext(h, f.data, (start + k) * per, batch.cols, k * h.layers[0]!.inputs * P);
    const out = await first.forward(h, batch.cols, n);
    for (let k = 0; k < n; k++) {
      const t = targets[start + k]!;
      const l0 = acts.layers[0]!;
      for (let i = 0; i < O * P; i++) l0[i] = out[k * O * P + i]!;
      const raw = forwardRaw(h, f.data, 0, acts, 1);
      const l = imageLoss(h, raw, t, iouTargets(h, raw, t));
      cls += l.cls;
      box += l.box;
      positives += t.cells.length;
    }
  }
  return combineLoss(cls, box, positives);
}

/**
 * Minibatch Adam (L2 weight decay on the weights) over the training images (seeded shuffle),
 * early stopping on the validation loss with `patience`; the best epoch's weights are kept.
 */
export async function trainDetectionHead(h0: DetectionHead, train: FeatureMap, trainTargets: ImageTargets[], val: FeatureMap, valTargets: ImageTargets[], o: TrainOptions): Promise<Trained> {
  const p = o.params;
  const head = cloneHead(h0);
  const adam = new Adam(headBlocks(head), p['head-learning-rate'], p['weight-decay']);
  const acts = allocActivations(head);
  const P = head.height * head.width;
  const dOut = new Float64Array((BOX_ROWS + head.classes) * P);
  const scratch = new Float64Array(Math.max(...head.layers.map((l) => l.outputs)) * P);
  const per = train.channels * P;
  const I = head.layers[0]!.inputs;
  const O = head.layers[0]!.outputs;
  const bs = p['batch-size'];
  const evalBatch = Math.max(bs, 16);
  const batch = new Batch(head, evalBatch);
  const first = await FirstLayer.create(head.layers[0]!.relu);
  try {
    const rng = new Rng(p.seed, 0x5ba7c4);
    const order = Int32Array.from({ length: train.n }, (_, i) => i);
    let best = { head: cloneHead(head), epoch: 0, loss: await splitLoss(head, first, val, valTargets, batch, evalBatch) };
    let since = 0;
    let epoch = 0;
    o.logger.info(`${o.model}: validation loss before training ${best.loss.toFixed(4)}`);
    while (epoch < p.epochs) {
      epoch++;
      shuffle(order, rng);
      let cls = 0;
      let box = 0;
      let positives = 0;
      for (let start = 0; start < order.length; start += bs) {
        if (o.signal?.aborted) throw new InterruptedError(`${o.model}: training interrupted`);
        const rows = order.subarray(start, start + bs);
        const n = rows.length;
        const npos = rows.reduce((s, i) => s + trainTargets[i]!.cells.length, 0);
        const scale = 1 / Math.max(1, npos);
        rows.forEach((i, k) => gatherContext(head, train.data, i * per, batch.cols, k * I * P));
        const out = await first.forward(head, batch.cols, n);
        for (let k = 0; k < n; k++) {
          const t = trainTargets[rows[k]!]!;
          const l0 = acts.layers[0]!;
          for (let i = 0; i < O * P; i++) l0[i] = out[k * O * P + i]!;
          const raw = forwardRaw(head, train.data, 0, acts, 1);
          const l = imageLoss(head, raw, t, iouTargets(head, raw, t), dOut, scale);
          cls += l.cls;
          box += l.box;
          const d = backward(head, acts, dOut, scratch, 1);
          for (let i = 0; i < O * P; i++) batch.dFirst[k * O * P + i] = d[i]!;
        }
        await first.gradient(head, batch.cols, batch.dFirst, n);
        positives += npos;
        adam.step();
      }
      const trainLoss = combineLoss(cls, box, positives);
      const valLoss = await splitLoss(head, first, val, valTargets, batch, evalBatch);
      if (!Number.isFinite(valLoss) || !Number.isFinite(trainLoss)) {
        throw new DataError(`${o.model}: the loss became ${trainLoss} (train) / ${valLoss} (validation) at epoch ${epoch}: lower \`head-learning-rate\``, { field: 'head-learning-rate' });
      }
      const better = valLoss < best.loss;
      if (better) {
        best = { head: cloneHead(head), epoch, loss: valLoss };
        since = 0;
      } else since++;
      o.logger.info(`${o.model}: epoch ${epoch}/${p.epochs}: train loss ${trainLoss.toFixed(4)}, validation loss ${valLoss.toFixed(4)}${better ? ' (best)' : ''}`);
      if (since >= p.patience) {
        o.logger.info(`${o.model}: no better validation loss for ${p.patience} epoch(s): stopping, keeping epoch ${best.epoch}`);
        break;
      }
    }
    // Rounded as model.onnx stores them, so the trainer's forward pass is the exported model's.
    return { head: cloneHead(best.head, true), epochs: epoch, bestEpoch: best.epoch, bestValLoss: best.loss };
  } finally {
    await first.release();
  }
}
