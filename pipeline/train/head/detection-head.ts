// The detection head's arithmetic: a 3×3 then 1×1 convolutions over the grid of standardised
// extractor features, the YOLO-style box decoding, target assignment, the loss with its gradient,
// and the same head as ONNX nodes whose `output0` is the Ultralytics YOLOv8 layout [N, 4 + classes, cells].

import { floatTensor, int64Tensor, type OnnxNode, type OnnxTensor } from '../../onnx/index.ts';
import { paramBlock, Rng, toFloat32, type ParamBlock } from './optim.ts';

/**
 * One convolution over cells: `out[k, p] = b[k] + Σ_i w[k, i] · in[i, p]`, optionally ReLU'd. The
 * first layer is 3×3 (its inputs are the 3×3 neighbourhood of every channel, i = c·9 + ky·3 + kx,
 * zero beyond the grid: exactly ONNX's [outputs, channels, 3, 3] weight layout), the others 1×1.
 */
export interface HeadLayer {
  inputs: number;
  outputs: number;
  /** [outputs, inputs], row-major, with its accumulated gradient. */
  w: ParamBlock;
  b: ParamBlock;
  relu: boolean;
}

/** Everything the head's forward pass and its ONNX export need. */
export interface DetectionHead {
  classes: number;
  channels: number;
  /** Feature-map cells per side. */
  height: number;
  width: number;
  /** Input pixels per cell. */
  stride: number;
  /** Box size at the middle of the size range, in input pixels: w = (2σ(t))² · anchor. */
  anchor: [number, number];
  /** Per-channel standardisation of the features: (x − mean) · invStd. */
  mean: Float32Array;
  invStd: Float32Array;
  layers: HeadLayer[];
}

/** Rows of the raw head output before decoding: tx, ty, tw, th, then one logit per class. */
export const BOX_ROWS = 4;

/** Weight of the box (GIoU) term against the class term, both per positive cell. */
export const BOX_LOSS_WEIGHT = 5;

/** Cells the first layer sees around each cell (3×3): a box's extent shows in its neighbours' features. */
export const CONTEXT = 9;

/** Prior probability the class logits start at (focal-loss paper's initialisation). */
const PRIOR = 0.01;

export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

/** log(1 + e^x) without overflow. */
function softplus(x: number): number {
  return x > 0 ? x + Math.log1p(Math.exp(-x)) : Math.log1p(Math.exp(x));
}

/** New head with seeded weights: He-normal hidden layers, small last layer, class biases at the prior. */
export function initHead(
  shape: { classes: number; channels: number; height: number; width: number; stride: number; anchor: [number, number]; mean: Float32Array; invStd: Float32Array },
  hidden: number | null,
  seed: number,
): DetectionHead {
  const rng = new Rng(seed, 0xde7ec7);
  const rows = BOX_ROWS + shape.classes;
  const layer = (i: number, inputs: number, outputs: number, std: number, relu: boolean): HeadLayer => {
    const w = paramBlock(`w${i}`, outputs * inputs, true);
    for (let k = 0; k < w.value.length; k++) w.value[k] = rng.normal() * std;
    return { inputs, outputs, w, b: paramBlock(`b${i}`, outputs, false), relu };
  };
  const layers: HeadLayer[] = [];
  const fanIn = shape.channels * CONTEXT;
  if (hidden !== null) layers.push(layer(0, fanIn, hidden, Math.sqrt(2 / fanIn), true));
  const last = layer(layers.length, hidden ?? fanIn, rows, 0.01, false);
  last.b.value.fill(-Math.log((1 - PRIOR) / PRIOR), BOX_ROWS);
  layers.push(last);
  return { ...shape, layers };
}

/** A copy with its own weights (and zero gradients); `float32` rounds the weights as the ONNX file stores them. */
export function cloneHead(h: DetectionHead, float32 = false): DetectionHead {
  const copy = (p: ParamBlock): ParamBlock => ({ ...p, value: float32 ? toFloat32(p.value) : p.value.slice(), grad: new Float64Array(p.grad.length) });
  return { ...h, layers: h.layers.map((l) => ({ ...l, w: copy(l.w), b: copy(l.b) })) };
}

/** Every weight block, for the optimiser. */
export function headBlocks(h: DetectionHead): ParamBlock[] {
  return h.layers.flatMap((l) => [l.w, l.b]);
}

/** Standardise a feature map in place with the head's per-channel mean and 1/std. */
export function standardize(data: Float32Array, n: number, h: DetectionHead): void {
  const P = h.height * h.width;
  for (let i = 0; i < n; i++) {
    for (let c = 0; c < h.channels; c++) {
      const m = h.mean[c]!;
      const s = h.invStd[c]!;
      const base = (i * h.channels + c) * P;
      for (let p = 0; p < P; p++) data[base + p] = Math.fround(data[base + p]! - m) * s;
    }
  }
}

/** Per-channel mean and 1/std over all images and cells (std 0 → 1, so a constant channel is just centred). */
export function channelStats(data: Float32Array, n: number, channels: number, cells: number): { mean: Float32Array; invStd: Float32Array } {
  const mean = new Float32Array(channels);
  const invStd = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let sum = 0;
    let sq = 0;
    for (let i = 0; i < n; i++) {
      const base = (i * channels + c) * cells;
      for (let p = 0; p < cells; p++) {
        const v = data[base + p]!;
        sum += v;
        sq += v * v;
      }
    }
    const count = n * cells;
    const m = sum / count;
    const variance = Math.max(0, sq / count - m * m);
    mean[c] = m;
    invStd[c] = variance > 1e-12 ? 1 / Math.sqrt(variance) : 1;
  }
  return { mean, invStd };
}

/** Scratch buffers of one image's forward pass: the 3×3 neighbourhoods, [channels · 9, cells], and each layer's output, [outputs, cells]. */
export interface Activations {
  cols: Float64Array;
  layers: Float64Array[];
}

export function allocActivations(h: DetectionHead): Activations {
  const P = h.height * h.width;
  return { cols: new Float64Array(h.channels * CONTEXT * P), layers: h.layers.map((l) => new Float64Array(l.outputs * P)) };
}

/** Gather every cell's 3×3 neighbourhood of every channel (zero outside the grid) into `cols` at `at`. */
export function gatherContext(h: DetectionHead, x: Float32Array, offset: number, cols: Float64Array | Float32Array, at = 0): void {
  const W = h.width;
  const H = h.height;
  const P = W * H;
  for (let c = 0; c < h.channels; c++) {
    const src = offset + c * P;
    for (let ky = 0; ky < 3; ky++) {
      for (let kx = 0; kx < 3; kx++) {
        const dst = at + (c * CONTEXT + ky * 3 + kx) * P;
        for (let y = 0; y < H; y++) {
          const sy = y + ky - 1;
          for (let xx = 0; xx < W; xx++) {
            const sx = xx + kx - 1;
            cols[dst + y * W + xx] = sy >= 0 && sy < H && sx >= 0 && sx < W ? x[src + sy * W + sx]! : 0;
          }
        }
      }
    }
  }
}

/**
 * Raw head output of one image (standardised features `x` at `offset`, [channels, cells]) into
 * `acts`. With `start` 1 the first layer's output is already in `acts.layers[0]` (computed elsewhere).
 */
export function forwardRaw(h: DetectionHead, x: Float32Array, offset: number, acts: Activations, start: 0 | 1 = 0): Float64Array {
  const P = h.height * h.width;
  if (start === 0) gatherContext(h, x, offset, acts.cols);
  let input: ArrayLike<number> = start === 0 ? acts.cols : acts.layers[0]!;
  for (let li = start; li < h.layers.length; li++) {
    const l = h.layers[li]!;
    const out = acts.layers[li]!;
    for (let k = 0; k < l.outputs; k++) {
      const o = k * P;
      out.fill(l.b.value[k]!, o, o + P);
      for (let c = 0; c < l.inputs; c++) {
        const wv = l.w.value[k * l.inputs + c]!;
        if (wv === 0) continue;
        const ib = c * P;
        for (let p = 0; p < P; p++) out[o + p]! += wv * input[ib + p]!;
      }
      if (l.relu) for (let p = o; p < o + P; p++) if (out[p]! < 0) out[p] = 0;
    }
    input = out;
  }
  return acts.layers[h.layers.length - 1]!;
}

/** Decode raw output [rows, cells] into the YOLOv8 layout: cx, cy, w, h in input pixels, then class scores. */
export function decodeRaw(h: DetectionHead, raw: Float64Array, out: Float32Array, offset: number): void {
  const P = h.height * h.width;
  const s = h.stride;
  for (let p = 0; p < P; p++) {
    const gx = (p % h.width) - 0.5;
    const gy = Math.floor(p / h.width) - 0.5;
    // Same operation order as the ONNX graph (Sigmoid, ×2, +grid, ×stride), each rounded to float32.
    const sx = Math.fround(sigmoid(raw[p]!));
    const sy = Math.fround(sigmoid(raw[P + p]!));
    out[offset + p] = Math.fround(Math.fround(Math.fround(2 * sx) + gx) * s);
    out[offset + P + p] = Math.fround(Math.fround(Math.fround(2 * sy) + gy) * s);
    const sw = Math.fround(2 * Math.fround(sigmoid(raw[2 * P + p]!)));
    const sh = Math.fround(2 * Math.fround(sigmoid(raw[3 * P + p]!)));
    out[offset + 2 * P + p] = Math.fround(Math.fround(sw * sw) * h.anchor[0]);
    out[offset + 3 * P + p] = Math.fround(Math.fround(sh * sh) * h.anchor[1]);
  }
  for (let k = BOX_ROWS; k < BOX_ROWS + h.classes; k++) {
    for (let p = 0; p < P; p++) out[offset + k * P + p] = sigmoid(raw[k * P + p]!);
  }
}

/** An image's training targets: positive cells with their box, and the positive (cell, class) pairs. */
export interface ImageTargets {
  /** Cells that regress a box. */
  cells: Int32Array;
  /** Their ground-truth boxes in cell units: x1, y1, x2, y2 per cell. */
  boxes: Float64Array;
  /** Positive class targets as cell · classes + class, ascending. */
  positives: Int32Array;
  /** For each positive, the index of its cell in `cells` (whose box it is scored against). */
  positiveCell: Int32Array;
}

/**
 * Assign ground-truth boxes ([cls, x1, y1, x2, y2] in input pixels) to cells as YOLOv5/v8 do: the
 * cell holding the box centre, plus the horizontally and vertically nearest neighbours (the decoded
 * centre reaches half a cell beyond its own cell). A cell's box is its centre assignment if any,
 * else the first box reaching it; class targets are the union over the boxes reaching it.
 */
export function assignTargets(h: DetectionHead, boxes: readonly (readonly number[])[]): ImageTargets {
  const W = h.width;
  const H = h.height;
  const s = h.stride;
  const owner = new Map<number, { box: number; centre: boolean }>();
  const positives = new Set<number>();
  boxes.forEach((b, bi) => {
    const cls = b[0]!;
    const cx = (b[1]! + b[3]!) / 2 / s;
    const cy = (b[2]! + b[4]!) / 2 / s;
    const gx = Math.min(W - 1, Math.max(0, Math.floor(cx)));
    const gy = Math.min(H - 1, Math.max(0, Math.floor(cy)));
    const nx = cx - gx < 0.5 ? gx - 1 : gx + 1;
    const ny = cy - gy < 0.5 ? gy - 1 : gy + 1;
    const cells: [number, number, boolean][] = [[gx, gy, true]];
    if (nx >= 0 && nx < W) cells.push([nx, gy, false]);
    if (ny >= 0 && ny < H) cells.push([gx, ny, false]);
    for (const [x, y, centre] of cells) {
      const p = y * W + x;
      const prev = owner.get(p);
      if (!prev || (centre && !prev.centre)) owner.set(p, { box: bi, centre });
      positives.add(p * h.classes + cls);
    }
  });
  const order = [...owner.keys()].sort((a, b) => a - b);
  const cellBoxes = new Float64Array(order.length * 4);
  order.forEach((p, i) => {
    const b = boxes[owner.get(p)!.box]!;
    for (let j = 0; j < 4; j++) cellBoxes[i * 4 + j] = b[j + 1]! / s;
  });
  const sorted = [...positives].sort((a, b) => a - b);
  const at = new Map(order.map((p, i) => [p, i]));
  return {
    cells: Int32Array.from(order),
    boxes: cellBoxes,
    positives: Int32Array.from(sorted),
    positiveCell: Int32Array.from(sorted, (q) => at.get(Math.floor(q / h.classes))!),
  };
}

/** 1 − GIoU of two xyxy boxes and its gradient with respect to the first one's x1, y1, x2, y2. */
export function giouLoss(p: ArrayLike<number>, g: ArrayLike<number>, grad: Float64Array): number {
  const px1 = p[0]!;
  const py1 = p[1]!;
  const px2 = p[2]!;
  const py2 = p[3]!;
  const gx1 = g[0]!;
  const gy1 = g[1]!;
  const gx2 = g[2]!;
  const gy2 = g[3]!;
  const iw = Math.min(px2, gx2) - Math.max(px1, gx1);
  const ih = Math.min(py2, gy2) - Math.max(py1, gy1);
  const overlap = iw > 0 && ih > 0;
  const I = overlap ? iw * ih : 0;
  const pw = px2 - px1;
  const ph = py2 - py1;
  const Ap = pw * ph;
  const Ag = (gx2 - gx1) * (gy2 - gy1);
  const U = Ap + Ag - I + 1e-9;
  const cw = Math.max(px2, gx2) - Math.min(px1, gx1);
  const ch = Math.max(py2, gy2) - Math.min(py1, gy1);
  const C = cw * ch + 1e-9;
  const loss = 2 - I / U - U / C;
  // L = 2 − I/U − U/C with U = Ap + Ag − I.
  const dI = -1 / U - I / (U * U) + 1 / C;
  const dAp = I / (U * U) - 1 / C;
  const dC = U / (C * C);
  let d1x = dAp * -ph;
  let d2x = dAp * ph;
  let d1y = dAp * -pw;
  let d2y = dAp * pw;
  if (overlap) {
    if (px2 < gx2) d2x += dI * ih;
    if (px1 > gx1) d1x -= dI * ih;
    if (py2 < gy2) d2y += dI * iw;
    if (py1 > gy1) d1y -= dI * iw;
  }
  if (px2 > gx2) d2x += dC * ch;
  if (px1 < gx1) d1x -= dC * ch;
  if (py2 > gy2) d2y += dC * cw;
  if (py1 < gy1) d1y -= dC * cw;
  grad[0] = d1x;
  grad[1] = d1y;
  grad[2] = d2x;
  grad[3] = d2y;
  return loss;
}

/** A positive cell's predicted box in cell units (x1, y1, x2, y2) from its raw output. */
function cellBox(h: DetectionHead, raw: Float64Array, p: number): [number, number, number, number] {
  const P = h.height * h.width;
  const cx = 2 * sigmoid(raw[p]!) + (p % h.width) - 0.5;
  const cy = 2 * sigmoid(raw[P + p]!) + Math.floor(p / h.width) - 0.5;
  const w = 4 * sigmoid(raw[2 * P + p]!) ** 2 * (h.anchor[0] / h.stride);
  const hh = 4 * sigmoid(raw[3 * P + p]!) ** 2 * (h.anchor[1] / h.stride);
  return [cx - w / 2, cy - hh / 2, cx + w / 2, cy + hh / 2];
}

function iou(a: ArrayLike<number>, b: ArrayLike<number>): number {
  const w = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!);
  const hh = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!);
  if (w <= 0 || hh <= 0) return 0;
  const inter = w * hh;
  return inter / ((a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter);
}

/**
 * Class targets that follow localisation (as YOLOv8 and VarifocalNet do): each positive's target is
 * the IoU of its cell's current box with the ground truth, held fixed for the step. A cell whose box
 * is poor then scores low, so ranking and NMS prefer the well-placed boxes.
 */
export function iouTargets(h: DetectionHead, raw: Float64Array, t: ImageTargets): Float64Array {
  const perCell = Array.from(t.cells, (p, i) => iou(cellBox(h, raw, p), t.boxes.subarray(i * 4, i * 4 + 4)));
  return Float64Array.from(t.positiveCell, (i) => perCell[i]!);
}

/**
 * Loss terms of one image from its raw output, unnormalised (sums over cells): BCE over every
 * (cell, class) against `targets` (one value per positive, default 1; 0 elsewhere) and 1 − GIoU
 * over the positive cells. When `dRaw` is given, it receives d(sum)/d(raw) scaled by `scale`
 * (the batch's 1 / positives), the targets held fixed.
 */
export function imageLoss(h: DetectionHead, raw: Float64Array, t: ImageTargets, targets?: Float64Array, dRaw?: Float64Array, scale = 1): { cls: number; box: number } {
  const P = h.height * h.width;
  const K = h.classes;
  let cls = 0;
  let pi = 0;
  for (let p = 0; p < P; p++) {
    for (let k = 0; k < K; k++) {
      const idx = (BOX_ROWS + k) * P + p;
      const z = raw[idx]!;
      let target = 0;
      if (pi < t.positives.length && t.positives[pi] === p * K + k) target = targets ? targets[pi++]! : (pi++, 1);
      cls += softplus(z) - target * z;
      if (dRaw) dRaw[idx] = (sigmoid(z) - target) * scale;
    }
  }
  if (dRaw) dRaw.fill(0, 0, BOX_ROWS * P);
  let box = 0;
  const grad = new Float64Array(4);
  for (let i = 0; i < t.cells.length; i++) {
    const p = t.cells[i]!;
    const sx = sigmoid(raw[p]!);
    const sy = sigmoid(raw[P + p]!);
    const sw = sigmoid(raw[2 * P + p]!);
    const sh = sigmoid(raw[3 * P + p]!);
    // Cell units: centre 2σ − 0.5 + g, size (2σ)² · anchor / stride (as cellBox).
    const aw = h.anchor[0] / h.stride;
    const ah = h.anchor[1] / h.stride;
    const g = t.boxes.subarray(i * 4, i * 4 + 4);
    box += giouLoss(cellBox(h, raw, p), g, grad);
    if (dRaw) {
      const k = BOX_LOSS_WEIGHT * scale;
      const dcx = grad[0]! + grad[2]!;
      const dcy = grad[1]! + grad[3]!;
      const dw = (grad[2]! - grad[0]!) / 2;
      const dh = (grad[3]! - grad[1]!) / 2;
      dRaw[p] = dRaw[p]! + k * dcx * 2 * sx * (1 - sx);
      dRaw[P + p] = dRaw[P + p]! + k * dcy * 2 * sy * (1 - sy);
      dRaw[2 * P + p] = dRaw[2 * P + p]! + k * dw * 8 * aw * sw * sw * (1 - sw);
      dRaw[3 * P + p] = dRaw[3 * P + p]! + k * dh * 8 * ah * sh * sh * (1 - sh);
    }
  }
  return { cls, box };
}

/** Total loss of a set of images' terms: (BCE + weight · box) / positive cells. */
export function combineLoss(cls: number, box: number, positives: number): number {
  return (cls + BOX_LOSS_WEIGHT * box) / Math.max(1, positives);
}

/**
 * Accumulate the weight gradients (into each block's `grad`) of one image from d(loss)/d(raw output) (`dOut`, overwritten),
 * given the activations of its forward pass. `scratch` holds at least the
 * largest hidden layer's [outputs, cells]. Layers below `lowest` get no gradient here: the
 * gradient at the (pre-activation) output of layer `lowest − 1` is returned for them instead.
 */
export function backward(h: DetectionHead, acts: Activations, dOut: Float64Array, scratch: Float64Array, lowest = 0): Float64Array {
  const P = h.height * h.width;
  let d = dOut;
  for (let li = h.layers.length - 1; li >= 0; li--) {
    const l = h.layers[li]!;
    const input = li === 0 ? acts.cols : acts.layers[li - 1]!;
    const inOff = 0;
    const gw = l.w.grad;
    const gb = l.b.grad;
    if (l.relu) {
      const a = acts.layers[li]!;
      for (let i = 0; i < l.outputs * P; i++) if (a[i]! <= 0) d[i] = 0;
    }
    if (li < lowest) return d;
    for (let k = 0; k < l.outputs; k++) {
      const o = k * P;
      let sb = 0;
      for (let p = 0; p < P; p++) sb += d[o + p]!;
      gb[k] = gb[k]! + sb;
      for (let c = 0; c < l.inputs; c++) {
        const ib = inOff + c * P;
        let s = 0;
        for (let p = 0; p < P; p++) s += d[o + p]! * input[ib + p]!;
        gw[k * l.inputs + c] = gw[k * l.inputs + c]! + s;
      }
    }
    if (li === 0) break;
    // d(input) = wᵀ d, into the scratch buffer, which becomes the next layer's d.
    const dIn = scratch.subarray(0, l.inputs * P);
    dIn.fill(0);
    for (let k = 0; k < l.outputs; k++) {
      const o = k * P;
      for (let c = 0; c < l.inputs; c++) {
        const wv = l.w.value[k * l.inputs + c]!;
        if (wv === 0) continue;
        const ib = c * P;
        for (let p = 0; p < P; p++) dIn[ib + p]! += wv * d[o + p]!;
      }
    }
    d = dIn;
  }
  return d;
}

/** ONNX output name and layout shared with real YOLOv8 exports. */
export const DETECTION_OUTPUT = 'output0';

/**
 * The head as ONNX nodes reading the feature map `features` ([N, channels, H, W]) and writing
 * `output0` ([N, 4 + classes, H·W]): standardise, convolutions, reshape, then decode boxes and scores.
 */
export function headGraph(h: DetectionHead, features: string): { nodes: OnnxNode[]; initializers: OnnxTensor[] } {
  const P = h.height * h.width;
  const C = h.channels;
  const K = h.classes;
  const n = (opType: string, inputs: string[], outputs: string[], attributes: OnnxNode['attributes'] = []): OnnxNode => ({
    opType,
    name: `det_${outputs[0]!.replace(/^det_/, '')}`,
    inputs,
    outputs,
    attributes,
  });
  const grid = new Float32Array(2 * P);
  for (let p = 0; p < P; p++) {
    grid[p] = (p % h.width) - 0.5;
    grid[P + p] = Math.floor(p / h.width) - 0.5;
  }
  const initializers: OnnxTensor[] = [
    floatTensor('det_mean', [1, C, 1, 1], h.mean),
    floatTensor('det_inv_std', [1, C, 1, 1], h.invStd),
    int64Tensor('det_shape', [3], [0, BOX_ROWS + K, -1]),
    int64Tensor('det_split', [3], [2, 2, K]),
    floatTensor('det_two', [], [2]),
    floatTensor('det_grid', [1, 2, P], grid),
    floatTensor('det_stride', [], [h.stride]),
    floatTensor('det_anchor', [1, 2, 1], h.anchor),
  ];
  const nodes: OnnxNode[] = [n('Sub', [features, 'det_mean'], ['det_centred']), n('Mul', ['det_centred', 'det_inv_std'], ['det_x0'])];
  let x = 'det_x0';
  h.layers.forEach((l, i) => {
    const k = i === 0 ? 3 : 1;
    initializers.push(floatTensor(`det_w${i}`, [l.outputs, l.inputs / (k * k), k, k], l.w.value), floatTensor(`det_b${i}`, [l.outputs], l.b.value));
    const conv = l.relu ? `det_conv${i}` : `det_raw`;
    const pads = k === 3 ? [{ name: 'pads', type: 'ints' as const, value: [1, 1, 1, 1] }] : [];
    nodes.push(n('Conv', [x, `det_w${i}`, `det_b${i}`], [conv], [{ name: 'kernel_shape', type: 'ints', value: [k, k] }, ...pads]));
    x = conv;
    if (l.relu) {
      nodes.push(n('Relu', [conv], [`det_h${i}`]));
      x = `det_h${i}`;
    }
  });
  nodes.push(
    n('Reshape', [x, 'det_shape'], ['det_flat']),
    n('Split', ['det_flat', 'det_split'], ['det_txy', 'det_twh', 'det_logits'], [{ name: 'axis', type: 'int', value: 1 }]),
    n('Sigmoid', ['det_txy'], ['det_sxy']),
    n('Mul', ['det_sxy', 'det_two'], ['det_sxy2']),
    n('Add', ['det_sxy2', 'det_grid'], ['det_cells']),
    n('Mul', ['det_cells', 'det_stride'], ['det_xy']),
    n('Sigmoid', ['det_twh'], ['det_swh']),
    n('Mul', ['det_swh', 'det_two'], ['det_swh2']),
    n('Mul', ['det_swh2', 'det_swh2'], ['det_swh4']),
    n('Mul', ['det_swh4', 'det_anchor'], ['det_wh']),
    n('Sigmoid', ['det_logits'], ['det_scores']),
    n('Concat', ['det_xy', 'det_wh', 'det_scores'], [DETECTION_OUTPUT], [{ name: 'axis', type: 'int', value: 1 }]),
  );
  return { nodes, initializers };
}
