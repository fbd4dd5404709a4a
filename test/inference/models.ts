// Tiny ONNX models for inference tests, written with the project's own ONNX encoder.

import { writeFile } from 'node:fs/promises';
import { DataType, encodeModel, floatTensor, int64Tensor, type OnnxModel, type OnnxNode } from '../../pipeline/onnx/model.ts';

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
