// Detector output handling for YOLOv8-layout models (`[B, 4 + nc, N]`: cx, cy, w, h, then one score
// per class): the original chain's per-class scores, and boxes with per-class NMS in image pixels.

import { fromLetterbox, type BoxMapping, type BoxXYXY } from '../data/images/letterbox.ts';

/** The original chain's detection threshold: boxes scoring ≥ 0.1 count. */
export const DEFAULT_CONFIDENCE = 0.1;

/** One image's raw output: a view over `[4 + nc, N]`, row-major. */
export interface DetectorOutput {
  data: Float32Array;
  /** Rows: 4 + number of classes. */
  channels: number;
  /** Candidate boxes (anchors). */
  anchors: number;
  /** Offset of this image's `[4 + nc, N]` block in `data` (batched outputs). */
  offset?: number;
}

/** Split a batched `[B, 4 + nc, N]` output into per-image views (no copies). */
export function splitDetectorBatch(data: Float32Array, dims: readonly number[]): DetectorOutput[] {
  if (dims.length !== 3 || dims[1]! <= 4) {
    throw new RangeError(`detector output has shape [${dims.join(', ')}], expected [batch, 4 + classes, boxes]`);
  }
  const [b, channels, anchors] = dims as [number, number, number];
  return Array.from({ length: b }, (_, i) => ({ data, channels, anchors, offset: i * channels * anchors }));
}

/** The box's class (the highest-scoring one, first on ties) and that score, for anchor `a`. */
function bestClass(out: DetectorOutput, a: number): [cls: number, score: number] {
  const n = out.anchors;
  const base = (out.offset ?? 0) + 4 * n + a;
  let best = -Infinity;
  let cls = 0;
  for (let c = 0; c < out.channels - 4; c++) {
    const s = out.data[base + c * n]!;
    if (s > best) {
      best = s;
      cls = c;
    }
  }
  return [cls, best];
}

/**
 * Per-class scores exactly as the original chain computed them: each box's class is its
 * highest-scoring class and its confidence that score; boxes with confidence ≥ `confidence`
 * count; `probs[c]` is the highest confidence among the boxes of class c; then, if the sum is
 * positive, the scores are divided by it (else all zero). NMS is not needed: it always keeps the
 * best box of each class, so the per-class maximum is the same before and after it.
 * The threshold is compared in float32, the precision the model outputs.
 */
export function detectorClassScores(out: DetectorOutput, confidence = DEFAULT_CONFIDENCE): Float64Array {
  const nc = out.channels - 4;
  const threshold = Math.fround(confidence);
  const probs = new Float64Array(nc);
  for (let a = 0; a < out.anchors; a++) {
    const [cls, best] = bestClass(out, a);
    if (best >= threshold && best > probs[cls]!) probs[cls] = best;
  }
  let sum = 0;
  for (const p of probs) sum += p;
  if (sum > 0) for (let c = 0; c < nc; c++) probs[c] = probs[c]! / sum;
  return probs;
}

export interface Detection {
  /** Pixels on the original (EXIF-oriented) image, clipped to it. */
  box: BoxXYXY;
  cls: number;
  confidence: number;
}

export interface DecodeOptions {
  confidence?: number;
  /** IoU above which a lower-scoring box of the same class is suppressed (Ultralytics' default 0.7). */
  iou?: number;
  /** At most this many boxes, best first (Ultralytics' default 300). */
  maxDetections?: number;
  /** Letterbox mapping of the image (scale and left/top pad) and its original size. */
  mapping: BoxMapping;
  width: number;
  height: number;
}

function iou(a: BoxXYXY, b: BoxXYXY): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Boxes of one image: argmax class and score per candidate, threshold (≥, float32), per-class
 * greedy NMS in letterbox pixels, then mapped back to original pixels and clipped. Best first.
 */
export function decodeDetections(out: DetectorOutput, o: DecodeOptions): Detection[] {
  const n = out.anchors;
  const base = out.offset ?? 0;
  const d = out.data;
  const threshold = Math.fround(o.confidence ?? DEFAULT_CONFIDENCE);
  const iouMax = o.iou ?? 0.7;
  const candidates: { box: BoxXYXY; cls: number; confidence: number }[] = [];
  for (let a = 0; a < n; a++) {
    const [cls, best] = bestClass(out, a);
    if (!(best >= threshold)) continue;
    const cx = d[base + a]!;
    const cy = d[base + n + a]!;
    const w = d[base + 2 * n + a]!;
    const h = d[base + 3 * n + a]!;
    candidates.push({ box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], cls, confidence: best });
  }
  // Stable sort: equal scores keep the model's order, so results are deterministic.
  candidates.sort((x, y) => y.confidence - x.confidence);
  const kept: typeof candidates = [];
  const limit = o.maxDetections ?? 300;
  for (const c of candidates) {
    if (kept.length >= limit) break;
    if (kept.some((k) => k.cls === c.cls && iou(k.box, c.box) > iouMax)) continue;
    kept.push(c);
  }
  const clip = (v: number, max: number): number => Math.min(Math.max(v, 0), max);
  return kept.map((k) => {
    const b = fromLetterbox(k.box, o.mapping);
    return {
      box: [clip(b[0], o.width), clip(b[1], o.height), clip(b[2], o.width), clip(b[3], o.height)],
      cls: k.cls,
      confidence: k.confidence,
    };
  });
}
