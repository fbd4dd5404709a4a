// The shapes of evaluation results: metrics from a predictions stream (classification or
// detection), per-slice breakdowns, champion/challenger comparison, gates and the report that
// `evaluation.json` holds. Metric code fills them; reports, plots and PR comments read them.

/** Per-class figures of a classifier (zero_division = 0, as scikit-learn's default in the original). */
export interface ClassScores {
  precision: number;
  recall: number;
  f1: number;
  /** True rows of this class. */
  support: number;
  /** One-vs-rest ROC-AUC; null when the class is absent or is every row. */
  roc_auc: number | null;
}

/** One equal-width confidence bin of the reliability diagram (15 bins over [0, 1]). */
export interface ReliabilityBin {
  lo: number;
  hi: number;
  count: number;
  /** Mean top-1 confidence in the bin (0 when empty). */
  confidence: number;
  /** Top-1 accuracy in the bin (0 when empty). */
  accuracy: number;
}

export interface ClassificationMetrics {
  task: 'classification';
  /** Rows scored. */
  n: number;
  /** Class names in probability-column order. */
  classes: string[];
  accuracy: number;
  balanced_accuracy: number;
  precision_macro: number;
  recall_macro: number;
  f1_macro: number;
  precision_micro: number;
  recall_micro: number;
  f1_micro: number;
  precision_weighted: number;
  recall_weighted: number;
  f1_weighted: number;
  /** Macro mean of the one-vs-rest AUCs that are defined; null when none is. */
  roc_auc_ovr: number | null;
  log_loss: number;
  brier: number;
  ece: number;
  top2_accuracy: number;
  per_class: Record<string, ClassScores>;
  /** confusion_matrix[true][predicted], class order as `classes`. */
  confusion_matrix: number[][];
  reliability: ReliabilityBin[];
}

export interface DetectionClassScores {
  ap50: number;
  ap50_95: number;
  /** At the operating confidence (0.1), IoU 0.5. */
  precision: number;
  recall: number;
  f1: number;
  /** Ground-truth boxes of this class. */
  support: number;
  /** Predicted boxes of this class (any confidence). */
  predictions: number;
}

export interface DetectionMetrics {
  task: 'detection';
  /** Images scored. */
  n: number;
  classes: string[];
  /** Mean over classes with ground truth of AP at IoU 0.5 (COCO 101-point interpolation). */
  map50: number;
  /** Mean over classes with ground truth and over IoU 0.50:0.05:0.95. */
  map50_95: number;
  /** Micro over all classes at the operating confidence, IoU 0.5. */
  precision: number;
  recall: number;
  f1: number;
  /** The operating confidence of precision/recall/f1. */
  confidence: number;
  per_class: Record<string, DetectionClassScores>;
  /** Interpolated precision at recall 0, 0.01, …, 1 (101 points), IoU 0.5, per class with ground truth. */
  pr_curves: Record<string, number[]>;
}

export type Metrics = ClassificationMetrics | DetectionMetrics;

/** The original chain (detector → skin type → context correction → 4 buckets) scored per bucket. */
export interface ChainMetrics {
  task: 'chain';
  /** Images scored. */
  n: number;
  /** acne, wrinkles, dark_spots, redness: `detected` against the ground-truth boxes' buckets. */
  buckets: Record<string, { precision: number; recall: number; f1: number; support: number; severity_agreement: number }>;
  /** Macro F1 over the 4 buckets. */
  f1_macro: number;
  /** Share of (image, bucket) pairs whose severity equals the one the chain gives for the ground-truth boxes. */
  severity_agreement: number;
}

/** The headline keys, in display order, exactly as in `evaluation.json` and `skintwin metrics --json`. */
export const CLASSIFICATION_HEADLINE = [
  'accuracy',
  'balanced_accuracy',
  'precision_macro',
  'recall_macro',
  'f1_macro',
  'precision_micro',
  'recall_micro',
  'f1_micro',
  'precision_weighted',
  'recall_weighted',
  'f1_weighted',
  'roc_auc_ovr',
  'log_loss',
  'brier',
  'ece',
  'top2_accuracy',
] as const;
export const DETECTION_HEADLINE = ['map50', 'map50_95', 'precision', 'recall', 'f1'] as const;
export type HeadlineKey = (typeof CLASSIFICATION_HEADLINE)[number] | (typeof DETECTION_HEADLINE)[number];

/** Metrics where lower is better (deltas and gates read them the other way round). */
export const LOWER_IS_BETTER: ReadonlySet<string> = new Set(['log_loss', 'brier', 'ece']);

/** One value of a slice key (e.g. skin_tone = "V"). `metrics` is null when the slice has no rows. */
export interface SliceValue {
  n: number;
  metrics: Metrics | null;
}

/** A slice key's breakdown, with the worst value and its gap to the best on the primary metric. */
export interface SliceReport {
  key: string;
  /** The metric compared across values (f1_macro for classification, map50 for detection). */
  metric: string;
  values: Record<string, SliceValue>;
  worst: { value: string; score: number } | null;
  best: { value: string; score: number } | null;
  /** best − worst on `metric` (0 with fewer than two non-empty values). */
  gap: number;
}

/** What `skintwin metrics` prints with --json and what the stage stores per model. */
export interface MetricsReport {
  metrics: Metrics;
  slices: Record<string, SliceReport>;
}

/** A headline metric of the challenger beside the champion's. */
export interface MetricDelta {
  metric: string;
  challenger: number | null;
  champion: number | null;
  /** challenger − champion. */
  delta: number | null;
  /** Paired-bootstrap 95% interval of the delta (null when bootstrap is off or not computable). */
  ci95: [number, number] | null;
}

export interface McNemarResult {
  /** Rows the challenger gets right and the champion wrong, and the reverse. */
  challengerOnly: number;
  championOnly: number;
  /** Continuity-corrected chi-square statistic (exact binomial p when discordant pairs < 25). */
  statistic: number;
  pValue: number;
}

export type ChampionSource = 'registry' | 'base-branch' | 'none';

export interface ChampionInfo {
  source: ChampionSource;
  /** Why this source (or why there is no comparison), for a person. */
  reason: string;
  version?: string;
  onnxSha256?: string;
}

export interface GateResult {
  /** e.g. `min f1_macro`, `max regression accuracy`, `max slice gap skin_tone`. */
  name: string;
  kind: 'minimum' | 'regression' | 'slice-gap';
  metric: string;
  threshold: number;
  /** The value compared with the threshold (null: not computable, e.g. no champion; such a gate is skipped, not passed). */
  value: number | null;
  status: 'pass' | 'fail' | 'skipped';
  message: string;
}

export interface EvaluationReport {
  format: 'skintwin-evaluation';
  version: 1;
  model: string;
  task: 'classification' | 'detection' | 'chain';
  createdAt: string;
  challenger: { onnx: string; onnxSha256: string; card: string };
  data: { path: string; split: string; rows: number };
  metrics: Metrics | ChainMetrics;
  slices: Record<string, SliceReport>;
  champion: ChampionInfo & { metrics?: Metrics };
  comparison: MetricDelta[];
  mcnemar: McNemarResult | null;
  gates: GateResult[];
  verdict: 'pass' | 'fail';
  /** Files next to evaluation.json (relative to it): PNG/SVG plots. */
  plots: { name: string; file: string; title: string }[];
}
