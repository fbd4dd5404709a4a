// Tiny ONNX models for inference tests, written with the project's own ONNX encoder.

import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataType, encodeModel, floatTensor, int64Tensor, type OnnxModel, type OnnxNode } from '../../pipeline/onnx/model.ts';
import { MODEL_CARD_FILE, MODEL_CARD_FORMAT, writeModelCard, type ModelCard } from '../../pipeline/train/card.ts';

function model(nodes: OnnxNode[], inputs: OnnxModel['graph']['inputs'], outputs: OnnxModel['graph']['outputs'], initializers: OnnxModel['graph']['initializers']): Uint8Array {
  return encodeModel({
    irVersion: 8,
    opsets: [{ domain: '', version: 17 }],
    producerName: 'skintwin-test',
    graph: { name: 'g', nodes, inputs, outputs, initializers },
  });
}

/** `[N,1,1]` mean of the whole image (per batch item), for outputs that depend on the pixels. */
function meanNodes(input: string, out: string): OnnxNode[] {
  return [
    { opType: 'ReduceMean', inputs: [input], outputs: ['m4'], attributes: [{ name: 'axes', type: 'ints', value: [1, 2, 3] }, { name: 'keepdims', type: 'int', value: 1 }] },
    { opType: 'Reshape', inputs: ['m4', 'mshape'], outputs: [out], attributes: [] },
  ];
}

/**
 * A YOLOv8-layout detector: output `[N, 4 + nc, A]` = mean(image) · W + B, W and B `[4 + nc, A]`
 * row-major. Input `[batch, 3, size, size]` (`size` a number or symbolic).
 */
export function detectorModel(o: { size: number | string; bias: number[]; weight?: number[]; anchors: number; nc?: number; batch?: number | string }): Uint8Array {
  const ch = 4 + (o.nc ?? 10);
  const weight = o.weight ?? new Array(ch * o.anchors).fill(0);
  return model(
    [
      ...meanNodes('images', 'm'),
      { opType: 'Mul', inputs: ['m', 'W'], outputs: ['mw'], attributes: [] },
      { opType: 'Add', inputs: ['mw', 'B'], outputs: ['output0'], attributes: [] },
    ],
    [{ name: 'images', elemType: DataType.FLOAT, shape: [o.batch ?? 'batch', 3, o.size, o.size] }],
    [{ name: 'output0', elemType: DataType.FLOAT, shape: [o.batch ?? 'batch', ch, o.anchors] }],
    [
      int64Tensor('mshape', [3], [-1, 1, 1]),
      floatTensor('W', [1, ch, o.anchors], weight),
      floatTensor('B', [1, ch, o.anchors], o.bias),
    ],
  );
}

/** A classifier: `[N, 3]` = mean(image) · w + b, through Softmax unless `logits`. */
export function skinTypeModel(o: { size: number | string; bias: number[]; weight?: number[]; logits?: boolean }): Uint8Array {
  const out = o.logits ? 'logits' : 'probs';
  return model(
    [
      { opType: 'ReduceMean', inputs: ['input'], outputs: ['m4'], attributes: [{ name: 'axes', type: 'ints', value: [1, 2, 3] }, { name: 'keepdims', type: 'int', value: 1 }] },
      { opType: 'Reshape', inputs: ['m4', 'mshape'], outputs: ['m'], attributes: [] },
      { opType: 'Mul', inputs: ['m', 'w'], outputs: ['mw'], attributes: [] },
      { opType: 'Add', inputs: ['mw', 'b'], outputs: [o.logits ? 'logits' : 'z'], attributes: [] },
      ...(o.logits ? [] : [{ opType: 'Softmax', inputs: ['z'], outputs: ['probs'], attributes: [{ name: 'axis', type: 'int' as const, value: 1 }] }]),
    ],
    [{ name: 'input', elemType: DataType.FLOAT, shape: ['batch', 3, o.size, o.size] }],
    [{ name: out, elemType: DataType.FLOAT, shape: ['batch', 3] }],
    [int64Tensor('mshape', [2], [-1, 1]), floatTensor('w', [1, 3], o.weight ?? [0, 0, 0]), floatTensor('b', [1, 3], o.bias)],
  );
}

/** A model with a `[batch, 4]` input: the wrong kind of model for image params. */
export function tabularModel(): Uint8Array {
  return model(
    [{ opType: 'Identity', inputs: ['x'], outputs: ['y'], attributes: [] }],
    [{ name: 'x', elemType: DataType.FLOAT, shape: ['batch', 4] }],
    [{ name: 'y', elemType: DataType.FLOAT, shape: ['batch', 4] }],
    [],
  );
}

export async function save(path: string, bytes: Uint8Array): Promise<string> {
  await writeFile(path, bytes);
  return path;
}

/** Detector bias with the given class scores at given anchors (everything else 0). */
export function detectorBias(anchors: number, boxes: { anchor: number; cls: number; score: number; xywh?: [number, number, number, number] }[], nc = 10): number[] {
  const b = new Array((4 + nc) * anchors).fill(0);
  for (const x of boxes) {
    const [cx, cy, w, h] = x.xywh ?? [32, 32, 10, 10];
    b[0 * anchors + x.anchor] = cx;
    b[1 * anchors + x.anchor] = cy;
    b[2 * anchors + x.anchor] = w;
    b[3 * anchors + x.anchor] = h;
    b[(4 + x.cls) * anchors + x.anchor] = x.score;
  }
  return b;
}

/** A tabular classifier: `[N, C]` = Softmax(x · W + b), x `[N, F]`, W `[F, C]` row-major. */
export function tabularSoftmaxModel(o: { features: number; classes: number; weight: number[]; bias: number[] }): Uint8Array {
  return model(
    [
      { opType: 'MatMul', inputs: ['input', 'W'], outputs: ['xw'], attributes: [] },
      { opType: 'Add', inputs: ['xw', 'b'], outputs: ['z'], attributes: [] },
      { opType: 'Softmax', inputs: ['z'], outputs: ['probabilities'], attributes: [{ name: 'axis', type: 'int', value: 1 }] },
    ],
    [{ name: 'input', elemType: DataType.FLOAT, shape: ['N', o.features] }],
    [{ name: 'probabilities', elemType: DataType.FLOAT, shape: ['N', o.classes] }],
    [floatTensor('W', [o.features, o.classes], o.weight), floatTensor('b', [1, o.classes], o.bias)],
  );
}

export interface CardOptions {
  task: ModelCard['task'];
  classes: string[] | { id: number; name: string }[];
  inputName: string;
  inputShape: (number | string)[];
  outputName: string;
  outputShape: (number | string)[];
  preprocessing?: ModelCard['preprocessing'];
  features?: string[];
}

/** Write `bytes` as `<dir>/model.onnx` with a schema-valid model card (the sha256 of those bytes unless `sha256`). */
export async function saveWithCard(dir: string, bytes: Uint8Array, o: CardOptions, sha256?: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, 'model.onnx');
  await writeFile(path, bytes);
  const card: ModelCard = {
    format: MODEL_CARD_FORMAT,
    version: 1,
    model: 'test-model',
    task: o.task,
    createdAt: '2026-01-01T00:00:00Z',
    classes: o.classes.map((c, index) => (typeof c === 'string' ? { index, id: index, name: c } : { index, ...c })),
    input: { name: o.inputName, dtype: 'float32', shape: o.inputShape, features: o.features ?? [] },
    preprocessing: o.preprocessing ?? { type: 'numeric', target: 'target' },
    output:
      o.task === 'object-detection'
        ? { detections: { name: o.outputName, dtype: 'float32', shape: o.outputShape } }
        : { probabilities: { name: o.outputName, dtype: 'float32', shape: o.outputShape } },
    trainer: { name: 'command', params: {} },
    trainingData: { path: 'data/processed/test', sha256: '0'.repeat(64), files: 1, trainRows: 1, valRows: 1 },
    code: { commit: null },
    training: { startedAt: '2026-01-01T00:00:00Z', seconds: 1, executionProvider: 'cpu' },
    metrics: { reported: {} },
    featureImportance: [],
    onnx: { file: 'model.onnx', sha256: sha256 ?? createHash('sha256').update(bytes).digest('hex'), bytes: bytes.length },
  };
  await writeModelCard(join(dir, MODEL_CARD_FILE), card);
  return path;
}
