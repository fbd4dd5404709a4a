// Evaluation gates from pipeline.yaml: absolute minimums (and maximums for lower-is-better
// metrics), maximum regression against the champion, maximum gap between slice values. Checked
// at load time (unknown metric names, bad numbers) and applied to a finished evaluation.

import { ConfigurationError } from '../core/errors.ts';
import { suggestion } from '../core/suggest.ts';
import {
  CLASSIFICATION_HEADLINE,
  DETECTION_HEADLINE,
  LOWER_IS_BETTER,
  type ChainMetrics,
  type GateResult,
  type MetricDelta,
  type Metrics,
  type SliceReport,
} from './types.ts';

export type EvaluationTask = 'classification' | 'detection' | 'chain';

/** The chain's scalar metrics a gate may name. */
export const CHAIN_HEADLINE = ['f1_macro', 'severity_agreement'] as const;

/** Metric names a gate may use for a task. */
export function gateMetricNames(task: EvaluationTask): readonly string[] {
  if (task === 'classification') return CLASSIFICATION_HEADLINE;
  if (task === 'detection') return DETECTION_HEADLINE;
  return CHAIN_HEADLINE;
}

/** The gate params of the evaluate stage, as pipeline.yaml mappings (values are numbers as text). */
export interface GateParams {
  min: Readonly<Record<string, string>>;
  max: Readonly<Record<string, string>>;
  'max-regression': Readonly<Record<string, string>>;
  'max-slice-gap': Readonly<Record<string, string>>;
}

/** Parsed gates: metric (or slice key) → threshold. */
export interface Gates {
  min: Record<string, number>;
  max: Record<string, number>;
  maxRegression: Record<string, number>;
  maxSliceGap: Record<string, number>;
}

/**
 * Parse and check the gate mappings. Every problem is collected (unknown metric with a
 * "did you mean", a threshold that is not a number, `min` on a lower-is-better metric, a slice
 * key the model's data does not have); the caller throws them together.
 */
export function parseGates(
  params: GateParams,
  task: EvaluationTask,
  sliceKeys: readonly string[],
  where: string,
): { gates: Gates; problems: ConfigurationError[] } {
  const names = gateMetricNames(task);
  const problems: ConfigurationError[] = [];
  const gates: Gates = { min: {}, max: {}, maxRegression: {}, maxSliceGap: {} };
  const number = (param: string, key: string, text: string, nonNegative: boolean): number | undefined => {
    const v = text.trim() === '' ? NaN : Number(text);
    if (!Number.isFinite(v) || (nonNegative && v < 0)) {
      problems.push(
        new ConfigurationError(`${where}: \`${param}.${key}\` must be a ${nonNegative ? 'non-negative ' : ''}number, got \`${text}\``, { field: `${param}.${key}` }),
      );
      return undefined;
    }
    return v;
  };
  const metric = (param: string, key: string): boolean => {
    if (names.includes(key)) return true;
    problems.push(
      new ConfigurationError(`${where}: \`${param}\` names unknown ${task} metric \`${key}\``, { field: `${param}.${key}`, hint: suggestion(key, names) }),
    );
    return false;
  };
  for (const [key, text] of Object.entries(params.min)) {
    if (!metric('min', key)) continue;
    if (LOWER_IS_BETTER.has(key)) {
      problems.push(new ConfigurationError(`${where}: \`${key}\` is lower-is-better: gate it with \`max\`, not \`min\``, { field: `min.${key}` }));
      continue;
    }
    const v = number('min', key, text, false);
    if (v !== undefined) gates.min[key] = v;
  }
  for (const [key, text] of Object.entries(params.max)) {
    if (!metric('max', key)) continue;
    if (!LOWER_IS_BETTER.has(key)) {
      problems.push(new ConfigurationError(`${where}: \`${key}\` is higher-is-better: gate it with \`min\`, not \`max\``, { field: `max.${key}` }));
      continue;
    }
    const v = number('max', key, text, false);
    if (v !== undefined) gates.max[key] = v;
  }
  for (const [key, text] of Object.entries(params['max-regression'])) {
    if (!metric('max-regression', key)) continue;
    const v = number('max-regression', key, text, true);
    if (v !== undefined) gates.maxRegression[key] = v;
  }
  for (const [key, text] of Object.entries(params['max-slice-gap'])) {
    if (!sliceKeys.includes(key)) {
      problems.push(
        new ConfigurationError(
          sliceKeys.length
            ? `${where}: \`max-slice-gap\` names unknown slice \`${key}\``
            : `${where}: \`max-slice-gap\`: this model's evaluation has no slices (got \`${key}\`)`,
          { field: `max-slice-gap.${key}`, hint: suggestion(key, sliceKeys) },
        ),
      );
      continue;
    }
    const v = number('max-slice-gap', key, text, true);
    if (v !== undefined) gates.maxSliceGap[key] = v;
  }
  return { gates, problems };
}

/** What the gates are applied to. */
export interface GateInput {
  metrics: Metrics | ChainMetrics;
  slices: Readonly<Record<string, SliceReport>>;
  /** Headline deltas against the champion; empty when there is no comparison. */
  comparison: readonly MetricDelta[];
  /** Why there is no comparison (set when `comparison` is empty), for skipped regression gates. */
  noComparisonReason?: string;
}

function fmt(x: number): string {
  return Number.isInteger(x) ? String(x) : x.toFixed(4);
}

function metricValue(metrics: Metrics | ChainMetrics, name: string): number | null {
  const v = (metrics as unknown as Record<string, unknown>)[name];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/**
 * Apply the gates. A gate whose value cannot be computed (no champion, a metric that is
 * undefined on this data, fewer than two non-empty slice values) is `skipped`, never `pass`.
 */
export function applyGates(gates: Gates, input: GateInput): GateResult[] {
  const results: GateResult[] = [];
  for (const [metric, threshold] of Object.entries(gates.min)) {
    const value = metricValue(input.metrics, metric);
    const name = `min ${metric}`;
    if (value === null) {
      results.push({ name, kind: 'minimum', metric, threshold, value, status: 'skipped', message: `${metric} is not defined on this data` });
    } else {
      const ok = value >= threshold;
      results.push({ name, kind: 'minimum', metric, threshold, value, status: ok ? 'pass' : 'fail', message: `${metric} ${fmt(value)} ${ok ? '≥' : '<'} ${fmt(threshold)}` });
    }
  }
  for (const [metric, threshold] of Object.entries(gates.max)) {
    const value = metricValue(input.metrics, metric);
    const name = `max ${metric}`;
    if (value === null) {
      results.push({ name, kind: 'minimum', metric, threshold, value, status: 'skipped', message: `${metric} is not defined on this data` });
    } else {
      const ok = value <= threshold;
      results.push({ name, kind: 'minimum', metric, threshold, value, status: ok ? 'pass' : 'fail', message: `${metric} ${fmt(value)} ${ok ? '≤' : '>'} ${fmt(threshold)}` });
    }
  }
  for (const [metric, threshold] of Object.entries(gates.maxRegression)) {
    const name = `max regression ${metric}`;
    const delta = input.comparison.find((d) => d.metric === metric);
    if (!input.comparison.length || !delta) {
      const why = input.comparison.length ? `${metric} is not compared` : `no comparison: ${input.noComparisonReason ?? 'no champion'}`;
      results.push({ name, kind: 'regression', metric, threshold, value: null, status: 'skipped', message: why });
      continue;
    }
    if (delta.delta === null || delta.challenger === null || delta.champion === null) {
      results.push({ name, kind: 'regression', metric, threshold, value: null, status: 'skipped', message: `${metric} is not defined for both models` });
      continue;
    }
    // How much worse the challenger is (positive = worse), whichever way the metric points.
    const regression = LOWER_IS_BETTER.has(metric) ? delta.delta : -delta.delta;
    const ok = regression <= threshold;
    const ci = delta.ci95 ? ` (Δ 95% CI [${fmt(delta.ci95[0])}, ${fmt(delta.ci95[1])}])` : '';
    results.push({
      name,
      kind: 'regression',
      metric,
      threshold,
      value: regression,
      status: ok ? 'pass' : 'fail',
      message:
        regression > 0
          ? `${metric} ${fmt(delta.challenger)} vs champion ${fmt(delta.champion)}: worse by ${fmt(regression)}, ${ok ? 'within' : 'beyond'} the tolerance ${fmt(threshold)}${ci}`
          : `${metric} ${fmt(delta.challenger)} vs champion ${fmt(delta.champion)}: no regression${ci}`,
    });
  }
  for (const [key, threshold] of Object.entries(gates.maxSliceGap)) {
    const name = `max slice gap ${key}`;
    const slice = input.slices[key];
    const filled = slice ? Object.values(slice.values).filter((v) => v.n > 0 && v.metrics !== null).length : 0;
    if (!slice || filled < 2 || !slice.worst || !slice.best) {
      const why = !slice ? `the data has no \`${key}\` values` : `fewer than two \`${key}\` values have rows (${filled})`;
      results.push({ name, kind: 'slice-gap', metric: slice?.metric ?? key, threshold, value: null, status: 'skipped', message: why });
      continue;
    }
    const ok = slice.gap <= threshold;
    results.push({
      name,
      kind: 'slice-gap',
      metric: slice.metric,
      threshold,
      value: slice.gap,
      status: ok ? 'pass' : 'fail',
      message: `${slice.metric} ranges from ${fmt(slice.worst.score)} (${key} ${slice.worst.value}) to ${fmt(slice.best.score)} (${key} ${slice.best.value}): gap ${fmt(slice.gap)} ${ok ? '≤' : '>'} ${fmt(threshold)}`,
    });
  }
  return results;
}

/** Pass unless a gate failed; skipped gates neither pass nor fail the model. */
export function verdictOf(gates: readonly GateResult[]): 'pass' | 'fail' {
  return gates.some((g) => g.status === 'fail') ? 'fail' : 'pass';
}

/** A gate failed and the stage was told to fail on it (`fail-on-gate: true`). Exit code 1. */
export class GateFailedError extends Error {
  override name = 'GateFailedError';
  constructor(
    message: string,
    readonly failed: readonly GateResult[],
  ) {
    super(message);
  }
}
