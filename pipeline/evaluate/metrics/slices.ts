// Per-slice metrics (skin tone, data source, any key a row's `slice` object carries): every
// metric per value of each key, the worst value on the primary metric and its gap to the best.

import type { Metrics, MetricsReport, SliceReport, SliceValue } from '../types.ts';
import { classificationMetricsWithAuc, groupedAuc, metricsOfRows, rowTerms, scoreOrder, type RowTerms, type ScoreOrder } from './classification.ts';
import { prepareDetections, scorePrepared, type DetectionSample } from './detection.ts';

/** Slice values that must appear in the report even with no rows (metrics: null), per key. */
export type ExpectedSlices = Readonly<Record<string, readonly string[]>>;

/** Rows grouped by one slice key: a value index per row (−1: the row lacks the key) and the value names. */
export interface SliceColumn {
  values: string[];
  codes: Int32Array;
}

/** Slice columns from per-row slice objects (keys in first-seen order). */
export function sliceColumns(slices: readonly (Readonly<Record<string, string>> | undefined)[]): Map<string, SliceColumn> {
  const n = slices.length;
  const columns = new Map<string, SliceColumn & { index: Map<string, number> }>();
  for (let r = 0; r < n; r++) {
    const s = slices[r];
    if (!s) continue;
    for (const key of Object.keys(s)) {
      let col = columns.get(key);
      if (!col) columns.set(key, (col = { values: [], codes: new Int32Array(n).fill(-1), index: new Map() }));
      const value = String(s[key]);
      let code = col.index.get(value);
      if (code === undefined) {
        code = col.values.length;
        col.index.set(value, code);
        col.values.push(value);
      }
      col.codes[r] = code;
    }
  }
  return new Map([...columns].map(([k, c]) => [k, { values: c.values, codes: c.codes }]));
}

/** Row indices per value of a column. */
function groupRows(col: SliceColumn): Int32Array[] {
  const counts = new Int32Array(col.values.length);
  for (const c of col.codes) if (c >= 0) counts[c]!++;
  const groups = Array.from(counts, (m) => new Int32Array(m));
  const fill = new Int32Array(col.values.length);
  col.codes.forEach((c, r) => {
    if (c >= 0) groups[c]![fill[c]!++] = r;
  });
  return groups;
}

const primary = (m: Metrics): number => (m.task === 'classification' ? m.f1_macro : m.map50);

/** Values sorted by name (I, II, … VI read in order), requested-but-empty values added with null metrics. */
export function sliceReport(key: string, metric: string, values: ReadonlyMap<string, SliceValue>, expected: readonly string[] = []): SliceReport {
  const all = new Map(values);
  for (const v of expected) if (!all.has(v)) all.set(v, { n: 0, metrics: null });
  const names = [...all.keys()].sort();
  const out: Record<string, SliceValue> = {};
  let worst: { value: string; score: number } | null = null;
  let best: { value: string; score: number } | null = null;
  for (const name of names) {
    const v = all.get(name)!;
    out[name] = v;
    if (!v.metrics) continue;
    const score = primary(v.metrics);
    if (!worst || score < worst.score) worst = { value: name, score };
    if (!best || score > best.score) best = { value: name, score };
  }
  return { key, metric, values: out, worst, best, gap: worst && best ? best.score - worst.score : 0 };
}

/**
 * Classification metrics per slice value, from slice columns (the file reader builds these
 * directly). `orders`: each class's score order over all rows (scoreOrder), when already made.
 */
export function classificationSlicesFromColumns(
  labels: ArrayLike<number>,
  probs: Float32Array | Float64Array,
  classes: readonly string[],
  columns: ReadonlyMap<string, SliceColumn>,
  expected: ExpectedSlices = {},
  orders?: readonly ScoreOrder[],
  terms?: RowTerms,
): Record<string, SliceReport> {
  const C = classes.length;
  const n = labels.length;
  let rowsTerms = terms;
  const reports: Record<string, SliceReport> = {};
  const keys = [...new Set([...columns.keys(), ...Object.keys(expected)])];
  let ranked = orders;
  for (const key of keys) {
    const col = columns.get(key) ?? { values: [], codes: new Int32Array(n).fill(-1) };
    const groups = groupRows(col);
    // AUCs of every value at once: one walk per class over the rows in score order, no re-sorting.
    ranked ??= Array.from({ length: C }, (_, k) => scoreOrder(probs, n, C, k));
    const aucs = ranked.map((order, k) => groupedAuc(labels, k, order, col.codes, groups.length));
    const values = new Map<string, SliceValue>();
    // Each row's terms once for every key and value: a value's metrics sum its rows' terms.
    if (groups.length) rowsTerms ??= rowTerms(labels, probs, classes);
    groups.forEach((rows, v) => {
      const m = rows.length;
      const metrics = m ? metricsOfRows(rowsTerms!, classes, aucs.map((a) => a[v] ?? null), rows) : null;
      values.set(col.values[v]!, { n: m, metrics });
    });
    reports[key] = sliceReport(key, 'f1_macro', values, expected[key]);
  }
  return reports;
}

/** Metrics over all rows and per slice, sharing one score order per class. */
export function classificationReport(
  labels: ArrayLike<number>,
  probs: Float32Array | Float64Array,
  classes: readonly string[],
  columns: ReadonlyMap<string, SliceColumn>,
  expected: ExpectedSlices = {},
): MetricsReport {
  const n = labels.length;
  const C = classes.length;
  const orders = n > 0 ? Array.from({ length: C }, (_, k) => scoreOrder(probs, n, C, k)) : [];
  const aucs = orders.map((order, k) => groupedAuc(labels, k, order, null, 1)[0] ?? null);
  if (n === 0) return { metrics: classificationMetricsWithAuc(labels, probs, classes, null), slices: {} };
  const terms = rowTerms(labels, probs, classes);
  return {
    metrics: metricsOfRows(terms, classes, aucs, null),
    slices: classificationSlicesFromColumns(labels, probs, classes, columns, expected, orders, terms),
  };
}

/** Classification metrics per value of every slice key present in the rows' slice objects. */
export function classificationSlices(
  labels: ArrayLike<number>,
  probs: Float32Array | Float64Array,
  classes: readonly string[],
  slices: readonly (Record<string, string> | undefined)[],
  o: { expected?: ExpectedSlices } = {},
): Record<string, SliceReport> {
  return classificationSlicesFromColumns(labels, probs, classes, sliceColumns(slices), o.expected);
}

/** Detection metrics per value of every slice key present in the images' slice objects. */
export function detectionSlices(
  samples: readonly DetectionSample[],
  classes: readonly string[],
  o: { confidence?: number; expected?: ExpectedSlices } = {},
): Record<string, SliceReport> {
  const columns = sliceColumns(samples.map((s) => s.slice));
  const expected = o.expected ?? {};
  const reports: Record<string, SliceReport> = {};
  const keys = new Set([...columns.keys(), ...Object.keys(expected)]);
  // Boxes are matched once; each slice value only counts its own images.
  const prepared = keys.size && samples.length ? prepareDetections(samples, classes.length) : undefined;
  const weights = new Uint8Array(samples.length);
  for (const key of keys) {
    const col = columns.get(key) ?? { values: [], codes: new Int32Array(0) };
    const values = new Map<string, SliceValue>();
    groupRows(col).forEach((rows, v) => {
      let metrics: Metrics | null = null;
      if (rows.length && prepared) {
        weights.fill(0);
        for (const r of rows) weights[r] = 1;
        metrics = scorePrepared(prepared, classes, { ...(o.confidence === undefined ? {} : { confidence: o.confidence }), imageWeights: weights });
      }
      values.set(col.values[v]!, { n: rows.length, metrics });
    });
    reports[key] = sliceReport(key, 'map50', values, expected[key]);
  }
  return reports;
}
