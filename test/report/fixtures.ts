// Realistic evaluation reports for the report tests: metrics computed from confusion matrices
// (so per-class, macro and weighted figures agree), skin-tone and source slices with an empty
// value, champions from the registry, the base branch or none, and gates that pass, fail or skip.

import type {
  ChainMetrics,
  ClassificationMetrics,
  DetectionMetrics,
  EvaluationReport,
  GateResult,
  MetricDelta,
  ReliabilityBin,
  SliceReport,
  SliceValue,
} from '../../pipeline/evaluate/types.ts';
import { CLASSIFICATION_HEADLINE } from '../../pipeline/evaluate/types.ts';

/** Seeded uniform [0, 1): the same fixture every run. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SHA = (c: string) => c.repeat(64).slice(0, 64);
export const TONES = ['I', 'II', 'III', 'IV', 'V', 'VI'];
export const DETECTOR_CLASSES = ['Acne', 'Blackheads', 'Dark-Spots', 'Dry-Skin', 'Englarged-Pores', 'Eyebags', 'Oily-Skin', 'Skin-Redness', 'Whiteheads', 'Wrinkles'];

/** A confusion matrix with `n` rows per class on average and the given accuracy (roughly). */
export function confusion(k: number, n: number, accuracy: number, rand: () => number): number[][] {
  return Array.from({ length: k }, (_, i) => {
    const support = Math.max(1, Math.round(n * (0.5 + rand())));
    const row = new Array<number>(k).fill(0);
    const right = Math.round(support * Math.min(1, Math.max(0, accuracy + (rand() - 0.5) * 0.2)));
    row[i] = right;
    for (let left = support - right; left > 0; left--) {
      const j = Math.floor(rand() * k);
      row[j === i ? (i + 1) % k : j]! += 1;
    }
    return row;
  });
}

/** Classification metrics consistent with a confusion matrix. */
export function classificationMetrics(classes: string[], cm: number[][], rand: () => number): ClassificationMetrics {
  const k = classes.length;
  const support = cm.map((row) => row.reduce((a, b) => a + b, 0));
  const predicted = classes.map((_, j) => cm.reduce((a, row) => a + (row[j] ?? 0), 0));
  const n = support.reduce((a, b) => a + b, 0);
  const correct = cm.reduce((a, row, i) => a + (row[i] ?? 0), 0);
  const per_class: ClassificationMetrics['per_class'] = {};
  let pSum = 0, rSum = 0, fSum = 0, pW = 0, rW = 0, fW = 0;
  classes.forEach((c, i) => {
    const tp = cm[i]![i]!;
    const precision = predicted[i] ? tp / predicted[i]! : 0;
    const recall = support[i] ? tp / support[i]! : 0;
    const f1 = precision + recall ? (2 * precision * recall) / (precision + recall) : 0;
    per_class[c] = { precision, recall, f1, support: support[i]!, roc_auc: support[i] ? 0.5 + recall / 2 : null };
    pSum += precision; rSum += recall; fSum += f1;
    pW += precision * support[i]!; rW += recall * support[i]!; fW += f1 * support[i]!;
  });
  const accuracy = n ? correct / n : 0;
  const reliability: ReliabilityBin[] = Array.from({ length: 15 }, (_, b) => {
    const lo = b / 15, hi = (b + 1) / 15;
    const count = b < 4 ? 0 : Math.round(rand() * n * 0.2);
    const confidence = count ? lo + (hi - lo) * (0.3 + rand() * 0.4) : 0;
    const acc = count ? Math.min(1, Math.max(0, confidence + (rand() - 0.6) * 0.2)) : 0;
    return { lo, hi, count, confidence, accuracy: acc };
  });
  return {
    task: 'classification',
    n,
    classes,
    accuracy,
    balanced_accuracy: rSum / k,
    precision_macro: pSum / k,
    recall_macro: rSum / k,
    f1_macro: fSum / k,
    precision_micro: accuracy,
    recall_micro: accuracy,
    f1_micro: accuracy,
    precision_weighted: n ? pW / n : 0,
    recall_weighted: n ? rW / n : 0,
    f1_weighted: n ? fW / n : 0,
    roc_auc_ovr: 0.5 + accuracy / 2,
    log_loss: 1.2 - accuracy,
    brier: (1 - accuracy) * 0.9,
    ece: 0.02 + (1 - accuracy) * 0.1,
    top2_accuracy: Math.min(1, accuracy + 0.15),
    per_class,
    confusion_matrix: cm,
    reliability,
  };
}

export function detectionMetrics(n: number, quality: number, rand: () => number): DetectionMetrics {
  const per_class: DetectionMetrics['per_class'] = {};
  const pr_curves: DetectionMetrics['pr_curves'] = {};
  let ap = 0, ap95 = 0;
  for (const c of DETECTOR_CLASSES) {
    const q = Math.min(0.98, Math.max(0.05, quality + (rand() - 0.5) * 0.4));
    // Interpolated precision is non-increasing in recall.
    const curve = Array.from({ length: 101 }, (_, i) => Math.max(0, Math.min(1, q * (1 - Math.pow(i / 100, 3 + 6 * q)) + 0.02)));
    const ap50 = curve.reduce((a, b) => a + b, 0) / 101;
    const support = Math.round(n * (0.5 + rand()));
    per_class[c] = { ap50, ap50_95: ap50 * 0.55, precision: q, recall: q * 0.9, f1: (2 * q * q * 0.9) / (q + q * 0.9), support, predictions: Math.round(support * 1.4) };
    pr_curves[c] = curve;
    ap += ap50;
    ap95 += ap50 * 0.55;
  }
  return {
    task: 'detection',
    n,
    classes: DETECTOR_CLASSES,
    map50: ap / DETECTOR_CLASSES.length,
    map50_95: ap95 / DETECTOR_CLASSES.length,
    precision: quality,
    recall: quality * 0.9,
    f1: (2 * quality * quality * 0.9) / (quality * 1.9),
    confidence: 0.1,
    per_class,
    pr_curves,
  };
}

/** A slice report over `values`, where `empty` values have no rows; worst/best/gap computed. */
export function sliceOf(key: string, metric: 'f1_macro' | 'map50', values: Record<string, SliceValue>): SliceReport {
  let worst: SliceReport['worst'] = null;
  let best: SliceReport['best'] = null;
  for (const [value, v] of Object.entries(values)) {
    if (!v.metrics) continue;
    const score = (v.metrics as unknown as Record<string, number>)[metric]!;
    if (!worst || score < worst.score) worst = { value, score };
    if (!best || score > best.score) best = { value, score };
  }
  return { key, metric, values, worst, best, gap: worst && best ? best.score - worst.score : 0 };
}

function deltas(keys: readonly string[], challenger: object, champion: object, rand: () => number, withCi = true): MetricDelta[] {
  return keys.map((metric) => {
    const a = (challenger as Record<string, number | null>)[metric] ?? null;
    const b = (champion as Record<string, number | null>)[metric] ?? null;
    const delta = a !== null && b !== null ? a - b : null;
    const half = 0.005 + rand() * 0.03;
    return { metric, challenger: a, champion: b, delta, ci95: withCi && delta !== null ? [delta - half, delta + half] : null };
  });
}

function verdictOf(gates: GateResult[]): 'pass' | 'fail' {
  return gates.some((g) => g.status === 'fail') ? 'fail' : 'pass';
}

const BASE = {
  format: 'skintwin-evaluation' as const,
  version: 1 as const,
  createdAt: '2026-11-26T22:40:00.000Z',
};

/** skin-type: 3 classes, 6 Fitzpatrick tones (VI empty), 2 sources, registry champion, a failing slice-gap gate. */
export function skinTypeReport(): EvaluationReport {
  const rand = rng(7);
  const classes = ['Dry', 'Normal', 'Oily'];
  const metrics = classificationMetrics(classes, confusion(3, 140, 0.82, rand), rand);
  const champion = classificationMetrics(classes, confusion(3, 140, 0.78, rand), rand);
  const toneQuality = [0.88, 0.86, 0.83, 0.8, 0.62];
  const tones: Record<string, SliceValue> = {};
  TONES.forEach((t, i) => {
    const q = toneQuality[i];
    if (q === undefined) tones[t] = { n: 0, metrics: null };
    else {
      const m = classificationMetrics(classes, confusion(3, 25, q, rand), rand);
      tones[t] = { n: m.n, metrics: m };
    }
  });
  const sources: Record<string, SliceValue> = {};
  for (const [s, q] of [['kaggle-datasetam', 0.84], ['clinic-upload', 0.76]] as const) {
    const m = classificationMetrics(classes, confusion(3, 60, q, rand), rand);
    sources[s] = { n: m.n, metrics: m };
  }
  const slices = { skin_tone: sliceOf('skin_tone', 'f1_macro', tones), source: sliceOf('source', 'f1_macro', sources) };
  const comparison = deltas(CLASSIFICATION_HEADLINE, metrics, champion, rand);
  const gap = slices.skin_tone.gap;
  const gates: GateResult[] = [
    { name: 'min f1_macro', kind: 'minimum', metric: 'f1_macro', threshold: 0.6, value: metrics.f1_macro, status: metrics.f1_macro >= 0.6 ? 'pass' : 'fail', message: `f1_macro ${metrics.f1_macro.toFixed(4)} ≥ 0.6` },
    { name: 'max regression accuracy', kind: 'regression', metric: 'accuracy', threshold: 0.02, value: champion.accuracy - metrics.accuracy, status: 'pass', message: 'accuracy did not drop by more than 0.02' },
    { name: 'max slice gap skin_tone', kind: 'slice-gap', metric: 'f1_macro', threshold: 0.1, value: gap, status: gap <= 0.1 ? 'pass' : 'fail', message: `f1_macro gap between skin tones ${gap.toFixed(4)} > 0.1` },
  ];
  return {
    ...BASE,
    model: 'skin-type',
    task: 'classification',
    challenger: { onnx: 'models/skin-type/model.onnx', onnxSha256: SHA('a1'), card: 'models/skin-type/model-card.json' },
    data: { path: 'data/processed/skin-type', split: 'test', rows: metrics.n },
    metrics,
    slices,
    champion: { source: 'registry', reason: 'production version in models/registry.yaml', version: 'skin-type@v1.2.0', onnxSha256: SHA('b2'), metrics: champion },
    comparison,
    mcnemar: { challengerOnly: 31, championOnly: 18, statistic: 2.9388, pValue: 0.0864 },
    gates,
    verdict: verdictOf(gates),
    plots: [
      { name: 'confusion-matrix', file: 'confusion-matrix.png', title: 'Confusion matrix' },
      { name: 'reliability', file: 'reliability.png', title: 'Reliability diagram' },
      { name: 'slice-skin_tone', file: 'slice-skin_tone.png', title: 'f1_macro per skin_tone' },
    ],
  };
}

/** skin-detection: 10 classes, no champion (first version), a skipped regression gate. */
export function detectionReport(): EvaluationReport {
  const rand = rng(11);
  const metrics = detectionMetrics(120, 0.55, rand);
  const tones: Record<string, SliceValue> = {};
  TONES.forEach((t, i) => {
    tones[t] = i === 0 ? { n: 0, metrics: null } : { n: 20, metrics: detectionMetrics(20, 0.6 - i * 0.04, rand) };
  });
  const gates: GateResult[] = [
    { name: 'min map50', kind: 'minimum', metric: 'map50', threshold: 0.3, value: metrics.map50, status: 'pass', message: 'map50 above 0.3' },
    { name: 'max regression map50', kind: 'regression', metric: 'map50', threshold: 0.02, value: null, status: 'skipped', message: 'no champion to compare with' },
  ];
  return {
    ...BASE,
    model: 'skin-detection',
    task: 'detection',
    challenger: { onnx: 'models/skin-detection/model.onnx', onnxSha256: SHA('c3'), card: 'models/skin-detection/model-card.json' },
    data: { path: 'data/processed/face-troubles', split: 'test', rows: 120 },
    metrics,
    slices: { skin_tone: sliceOf('skin_tone', 'map50', tones) },
    champion: { source: 'none', reason: 'no production version of skin-detection in models/registry.yaml yet' },
    comparison: [],
    mcnemar: null,
    gates,
    verdict: verdictOf(gates),
    plots: [{ name: 'pr-curves', file: 'pr-curves.png', title: 'Precision-recall curves' }],
  };
}

/** The chain: per-bucket scores, a base-branch champion without intervals, no slices. */
export function chainReport(): EvaluationReport {
  const bucket = (f1: number, support: number) => ({ precision: f1 + 0.05, recall: f1 - 0.05, f1, support, severity_agreement: f1 - 0.1 });
  const metrics: ChainMetrics = {
    task: 'chain',
    n: 90,
    buckets: { acne: bucket(0.71, 60), wrinkles: bucket(0.64, 35), dark_spots: bucket(0.58, 40), redness: bucket(0.4, 12) },
    f1_macro: 0.5825,
    severity_agreement: 0.4825,
  };
  const comparison: MetricDelta[] = [
    { metric: 'f1_macro', challenger: 0.5825, champion: 0.61, delta: 0.5825 - 0.61, ci95: null },
    { metric: 'severity_agreement', challenger: 0.4825, champion: 0.47, delta: 0.0125, ci95: null },
  ];
  const gates: GateResult[] = [
    { name: 'min f1_macro', kind: 'minimum', metric: 'f1_macro', threshold: 0.5, value: 0.5825, status: 'pass', message: 'f1_macro above 0.5' },
    { name: 'max regression f1_macro', kind: 'regression', metric: 'f1_macro', threshold: 0.02, value: 0.0275, status: 'fail', message: 'f1_macro dropped by 0.0275 (> 0.02)' },
  ];
  return {
    ...BASE,
    model: 'chain',
    task: 'chain',
    challenger: { onnx: 'models/skin-detection/model.onnx', onnxSha256: SHA('d4'), card: 'models/skin-detection/model-card.json' },
    data: { path: 'data/processed/face-troubles', split: 'test', rows: 90 },
    metrics,
    slices: {},
    champion: { source: 'base-branch', reason: 'no production version; compared with the models built on main', onnxSha256: SHA('e5') },
    comparison,
    mcnemar: null,
    gates,
    verdict: verdictOf(gates),
    plots: [],
  };
}

/** context-correction: 79 classes (the fusion target ids), a champion, source slices. */
export function contextCorrectionReport(): EvaluationReport {
  const rand = rng(79);
  const ids = '0 1 2 4 6 8 9 10 11 12 13 14 17 20 21 22 23 25 27 28 29 30 31 32 33 35 37 38 39 40 44 47 48 50 51 52 54 55 56 58 59 60 61 64 65 66 67 71 72 73 74 75 76 77 78 79 80 81 82 83 84 85 86 88 89 92 94 95 96 97 98 100 101 102 103 105 106 107 108'.split(' ');
  const metrics = classificationMetrics(ids, confusion(79, 40, 0.55, rand), rand);
  const champion = classificationMetrics(ids, confusion(79, 40, 0.53, rand), rand);
  const sources: Record<string, SliceValue> = {};
  for (const [s, q] of [['wiki-csv', 0.56], ['derived', 0.5]] as const) {
    const m = classificationMetrics(ids, confusion(79, 10, q, rand), rand);
    sources[s] = { n: m.n, metrics: m };
  }
  const gates: GateResult[] = [
    { name: 'min accuracy', kind: 'minimum', metric: 'accuracy', threshold: 0.3, value: metrics.accuracy, status: 'pass', message: 'accuracy above 0.3' },
  ];
  return {
    ...BASE,
    model: 'context-correction',
    task: 'classification',
    challenger: { onnx: 'models/context-correction/model.onnx', onnxSha256: SHA('f6'), card: 'models/context-correction/model-card.json' },
    data: { path: 'data/processed/fusion', split: 'test', rows: metrics.n },
    metrics,
    slices: { source: sliceOf('source', 'f1_macro', sources) },
    champion: { source: 'registry', reason: 'production version in models/registry.yaml', version: 'context-correction@v0.3.1', onnxSha256: SHA('07'), metrics: champion },
    comparison: deltas(CLASSIFICATION_HEADLINE, metrics, champion, rand),
    mcnemar: { challengerOnly: 140, championOnly: 101, statistic: 6.1494, pValue: 0.0131 },
    gates,
    verdict: 'pass',
    plots: [
      { name: 'confusion-matrix', file: 'confusion-matrix.png', title: 'Confusion matrix' },
      { name: 'reliability', file: 'reliability.png', title: 'Reliability diagram' },
    ],
  };
}

