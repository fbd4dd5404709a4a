// Detection metrics, COCO style: per-class AP at IoU 0.5 and averaged over 0.50:0.05:0.95 with
// 101-point interpolated precision, mAP over the classes that have ground truth, and micro
// precision / recall / F1 at the original operating confidence (0.1) with IoU 0.5 matching.

import { DataError } from '../../core/errors.ts';
import type { DETECTION_HEADLINE, DetectionClassScores, DetectionMetrics } from '../types.ts';

export type Box = [number, number, number, number];

/** One image: ground-truth and predicted boxes in pixels, [x1, y1, x2, y2]; classes by index. */
export interface DetectionSample {
  id: string;
  gt: { cls: number; box: Box }[];
  pred: { cls: number; conf: number; box: Box }[];
  slice?: Record<string, string>;
}

/** The original system's operating confidence. */
export const DEFAULT_CONFIDENCE = 0.1;
/** 0.50, 0.55, …, 0.95. */
export const IOU_THRESHOLDS: readonly number[] = Array.from({ length: 10 }, (_, i) => (50 + 5 * i) / 100);
const RECALL_POINTS = 101;

export function iou(a: Box, b: Box): number {
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/** A class's predictions, best first, each with its IoU against every ground truth of its image and class. */
interface ClassDetections {
  conf: Float64Array;
  /** Per prediction: [gt index within the image's boxes of this class, IoU] pairs with IoU > 0. */
  overlaps: Float64Array[];
  /** Per prediction: the image key of its ground-truth group. */
  image: Int32Array;
  /** Ground-truth boxes per image (for this class). */
  gtPerImage: Map<number, number>;
  nGt: number;
  /** Per IoU threshold (IOU_THRESHOLDS order): 1 where the prediction is a true positive. */
  tp: Uint8Array[];
}

/**
 * Images with their boxes checked, IoUs computed and every prediction matched at every
 * threshold, once. Matching is within an image, so a subset or a resample of images keeps each
 * prediction's outcome: slices and bootstrap resamples only reweight images.
 */
export interface PreparedDetections {
  images: number;
  perClass: ClassDetections[];
}

/**
 * Greedy matching in confidence order: each prediction takes the unmatched ground truth of its
 * image and class with the highest IoU ≥ `threshold`. Returns 1 for a true positive, 0 otherwise.
 */
function match(d: ClassDetections, threshold: number, upTo = d.conf.length): Uint8Array {
  const tp = new Uint8Array(upTo);
  const taken = new Map<number, Uint8Array>();
  for (let i = 0; i < upTo; i++) {
    const pairs = d.overlaps[i]!;
    if (!pairs.length) continue;
    const img = d.image[i]!;
    let used = taken.get(img);
    if (!used) taken.set(img, (used = new Uint8Array(d.gtPerImage.get(img) ?? 0)));
    let best = -1;
    let bestIou = threshold;
    for (let j = 0; j < pairs.length; j += 2) {
      const g = pairs[j]!;
      const v = pairs[j + 1]!;
      if (v >= bestIou && !used[g] && (best === -1 || v > bestIou)) {
        best = g;
        bestIou = v;
      }
    }
    if (best !== -1) {
      used[best] = 1;
      tp[i] = 1;
    }
  }
  return tp;
}

/**
 * COCO's 101-point interpolated precision from a ranked list of true/false positives.
 * `weights`: how many copies of each prediction count (images drawn several times by a
 * bootstrap resample; 0 leaves it out). Copies of one prediction share its outcome, so one
 * point per prediction gives the same envelope as the expanded list.
 */
export function interpolatedPrecision(tp: ArrayLike<number>, nGt: number, weights?: ArrayLike<number>): number[] {
  const all = tp.length;
  const precision = new Float64Array(all);
  const recall = new Float64Array(all);
  let cum = 0;
  let seen = 0;
  let m = 0;
  for (let i = 0; i < all; i++) {
    const w = weights ? weights[i]! : 1;
    if (w === 0) continue;
    cum += w * tp[i]!;
    seen += w;
    precision[m] = cum / seen;
    recall[m] = nGt > 0 ? cum / nGt : 0;
    m++;
  }
  // Envelope: precision at a recall is the best precision at any higher recall.
  for (let i = m - 2; i >= 0; i--) if (precision[i + 1]! > precision[i]!) precision[i] = precision[i + 1]!;
  const out: number[] = [];
  let i = 0;
  for (let p = 0; p < RECALL_POINTS; p++) {
    const r = p / (RECALL_POINTS - 1);
    while (i < m && recall[i]! < r - 1e-12) i++;
    out.push(i < m ? precision[i]! : 0);
  }
  return out;
}

const mean = (xs: readonly number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

function validBox(box: unknown): box is Box {
  return Array.isArray(box) && box.length === 4 && box.every((v) => typeof v === 'number' && Number.isFinite(v)) && box[2] >= box[0] && box[3] >= box[1];
}

export function prepareDetections(samples: readonly DetectionSample[], C: number): PreparedDetections {
  const perClass: { conf: number[]; image: number[]; overlaps: Float64Array[]; gtPerImage: Map<number, number>; nGt: number }[] = [];
  for (let k = 0; k < C; k++) perClass.push({ conf: [], image: [], overlaps: [], gtPerImage: new Map(), nGt: 0 });
  samples.forEach((s, img) => {
    const gtByClass = new Map<number, Box[]>();
    for (const g of s.gt) {
      if (!(g.cls >= 0 && g.cls < C) || !validBox(g.box)) throw new DataError(`image \`${s.id}\`: ground-truth box ${JSON.stringify(g)} has an unknown class or is not [x1, y1, x2, y2]`);
      let list = gtByClass.get(g.cls);
      if (!list) gtByClass.set(g.cls, (list = []));
      list.push(g.box);
    }
    for (const [k, list] of gtByClass) {
      perClass[k]!.gtPerImage.set(img, list.length);
      perClass[k]!.nGt += list.length;
    }
    for (const p of s.pred) {
      if (!(p.cls >= 0 && p.cls < C) || !validBox(p.box) || !Number.isFinite(p.conf)) throw new DataError(`image \`${s.id}\`: predicted box ${JSON.stringify(p)} has an unknown class, a bad confidence or is not [x1, y1, x2, y2]`);
      const gts = gtByClass.get(p.cls) ?? [];
      const pairs: number[] = [];
      gts.forEach((g, j) => {
        const v = iou(p.box, g);
        if (v > 0) pairs.push(j, v);
      });
      const c = perClass[p.cls]!;
      c.conf.push(p.conf);
      c.image.push(img);
      c.overlaps.push(Float64Array.from(pairs));
    }
  });
  const classes = perClass.map((c) => {
    // Best first; equal confidences keep image then box order (a stable sort), as COCO's mergesort.
    const order = Array.from(c.conf.keys()).sort((a, b) => c.conf[b]! - c.conf[a]! || a - b);
    const d: ClassDetections = {
      conf: Float64Array.from(order, (i) => c.conf[i]!),
      image: Int32Array.from(order, (i) => c.image[i]!),
      overlaps: order.map((i) => c.overlaps[i]!),
      gtPerImage: c.gtPerImage,
      nGt: c.nGt,
      tp: [],
    };
    d.tp = IOU_THRESHOLDS.map((t) => match(d, t));
    return d;
  });
  return { images: samples.length, perClass: classes };
}

/** Every figure of DetectionMetrics from images with their boxes. */
export function scoreDetections(samples: readonly DetectionSample[], classes: readonly string[], o: { confidence?: number } = {}): DetectionMetrics {
  if (classes.length === 0) throw new DataError('no classes to score');
  if (samples.length === 0) throw new DataError('no images to score (empty test split)');
  return scorePrepared(prepareDetections(samples, classes.length), classes, o);
}

/**
 * DetectionMetrics of prepared images, each image counted `imageWeights[i]` times (default once;
 * 0 leaves it out): a slice or a bootstrap resample without matching boxes again.
 */
export function scorePrepared(prepared: PreparedDetections, classes: readonly string[], o: { confidence?: number; imageWeights?: ArrayLike<number> } = {}): DetectionMetrics {
  const confidence = o.confidence ?? DEFAULT_CONFIDENCE;
  const C = classes.length;
  if (prepared.perClass.length !== C) throw new DataError(`prepared for ${prepared.perClass.length} classes, scored with ${C}`);
  const iw = o.imageWeights;
  let images = prepared.images;
  if (iw) {
    images = 0;
    for (let i = 0; i < prepared.images; i++) images += iw[i]!;
    if (images === 0) throw new DataError('no images to score (every weight is 0)');
  }
  const perClass: Record<string, DetectionClassScores> = {};
  const prCurves: Record<string, number[]> = {};
  const ap50s: number[] = [];
  const ap5095s: number[] = [];
  let tpAll = 0;
  let predAll = 0;
  let gtAll = 0;
  for (let k = 0; k < C; k++) {
    const d = prepared.perClass[k]!;
    const w = iw ? Float64Array.from(d.image, (img) => iw[img]!) : undefined;
    let nGt = d.nGt;
    if (iw) {
      nGt = 0;
      for (const [img, count] of d.gtPerImage) nGt += iw[img]! * count;
    }
    let ap50 = 0;
    let ap5095 = 0;
    if (nGt > 0) {
      const aps = d.tp.map((tp, i) => {
        const curve = interpolatedPrecision(tp, nGt, w);
        if (i === 0) prCurves[classes[k]!] = curve;
        return mean(curve);
      });
      ap50 = aps[0]!;
      ap5095 = mean(aps);
      ap50s.push(ap50);
      ap5095s.push(ap5095);
    }
    // The operating point: the predictions at or above the confidence are a prefix of the ranked
    // list, and greedy matching of a prefix gives the prefix the outcomes it has in the whole.
    let kept = 0;
    let tp = 0;
    let predictions = 0;
    const tp50 = d.tp[0]!;
    for (let i = 0; i < d.conf.length; i++) {
      const wi = w ? w[i]! : 1;
      predictions += wi;
      if (d.conf[i]! >= confidence) {
        kept += wi;
        tp += wi * tp50[i]!;
      }
    }
    tpAll += tp;
    predAll += kept;
    gtAll += nGt;
    perClass[classes[k]!] = {
      ap50,
      ap50_95: ap5095,
      precision: kept ? tp / kept : 0,
      recall: nGt ? tp / nGt : 0,
      f1: kept + nGt ? (2 * tp) / (kept + nGt) : 0,
      support: nGt,
      predictions,
    };
  }
  return {
    task: 'detection',
    n: images,
    classes: [...classes],
    map50: mean(ap50s),
    map50_95: mean(ap5095s),
    precision: predAll ? tpAll / predAll : 0,
    recall: gtAll ? tpAll / gtAll : 0,
    f1: predAll + gtAll ? (2 * tpAll) / (predAll + gtAll) : 0,
    confidence,
    per_class: perClass,
    pr_curves: prCurves,
  };
}

export type DetectionHeadline = Record<(typeof DETECTION_HEADLINE)[number], number>;

/** Scratch buffers of preparedDetectionHeadline, grown to the largest class. */
let scratch = { index: new Int32Array(0), weight: new Float64Array(0), precision: new Float64Array(0), recall: new Float64Array(0) };

/**
 * The headline figures of scorePrepared with `imageWeights` (a bootstrap resample), equal to
 * them bit for bit, without building the full result: no per-class arrays or curves, and the
 * predictions left out by a weight of 0 are skipped once per class, not once per IoU threshold.
 */
export function preparedDetectionHeadline(prepared: PreparedDetections, imageWeights: ArrayLike<number>, confidence = DEFAULT_CONFIDENCE): DetectionHeadline {
  let images = 0;
  for (let i = 0; i < prepared.images; i++) images += imageWeights[i]!;
  if (images === 0) throw new DataError('no images to score (every weight is 0)');
  let ap50Sum = 0;
  let ap5095Sum = 0;
  let withGt = 0;
  let tpAll = 0;
  let predAll = 0;
  let gtAll = 0;
  for (const d of prepared.perClass) {
    const all = d.conf.length;
    if (scratch.index.length < all) {
      const size = Math.max(all, 2 * scratch.index.length);
      scratch = { index: new Int32Array(size), weight: new Float64Array(size), precision: new Float64Array(size), recall: new Float64Array(size) };
    }
    const { index, weight, precision, recall } = scratch;
    let m = 0;
    for (let i = 0; i < all; i++) {
      const w = imageWeights[d.image[i]!]!;
      if (w === 0) continue;
      index[m] = i;
      weight[m] = w;
      m++;
    }
    let nGt = 0;
    for (const [img, count] of d.gtPerImage) nGt += imageWeights[img]! * count;
    if (nGt > 0) {
      // interpolatedPrecision and mean, with the same operations in the same order.
      let ap50 = 0;
      let apSum = 0;
      for (let t = 0; t < d.tp.length; t++) {
        const tp = d.tp[t]!;
        let cum = 0;
        let seen = 0;
        for (let j = 0; j < m; j++) {
          const w = weight[j]!;
          cum += w * tp[index[j]!]!;
          seen += w;
          precision[j] = cum / seen;
          recall[j] = cum / nGt;
        }
        for (let j = m - 2; j >= 0; j--) if (precision[j + 1]! > precision[j]!) precision[j] = precision[j + 1]!;
        let sum = 0;
        let j = 0;
        for (let p = 0; p < RECALL_POINTS; p++) {
          const r = p / (RECALL_POINTS - 1);
          while (j < m && recall[j]! < r - 1e-12) j++;
          sum += j < m ? precision[j]! : 0;
        }
        const ap = sum / RECALL_POINTS;
        if (t === 0) ap50 = ap;
        apSum += ap;
      }
      ap50Sum += ap50;
      ap5095Sum += apSum / d.tp.length;
      withGt++;
    }
    let kept = 0;
    let tp = 0;
    const tp50 = d.tp[0]!;
    for (let j = 0; j < m; j++) {
      const i = index[j]!;
      if (d.conf[i]! >= confidence) {
        kept += weight[j]!;
        tp += weight[j]! * tp50[i]!;
      }
    }
    tpAll += tp;
    predAll += kept;
    gtAll += nGt;
  }
  return {
    map50: withGt ? ap50Sum / withGt : 0,
    map50_95: withGt ? ap5095Sum / withGt : 0,
    precision: predAll ? tpAll / predAll : 0,
    recall: gtAll ? tpAll / gtAll : 0,
    f1: predAll + gtAll ? (2 * tpAll) / (predAll + gtAll) : 0,
  };
}
