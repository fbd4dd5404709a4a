// The shipped JSON Schema of evaluation.json (pipeline/evaluate/evaluation.schema.json) and the
// check every report passes before it is written or read: the schema, then the few cross-field
// facts a schema cannot say (square confusion matrix, per-class keys, verdict vs gates).

import { Ajv, type ValidateFunction } from 'ajv';
import schema from '../evaluate/evaluation.schema.json' with { type: 'json' };
import type { EvaluationReport, Metrics } from '../evaluate/types.ts';

/** The shipped JSON Schema of evaluation.json. */
export const evaluationSchema: Readonly<Record<string, unknown>> = schema;

let validator: ValidateFunction | undefined;

/** Problems of an evaluation report, one line each (empty when it is valid). */
export function evaluationProblems(report: unknown): string[] {
  validator ??= new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);
  if (!validator(report)) {
    // An if/then's own "must match then schema" repeats the errors listed under it.
    return (validator.errors ?? []).filter((e) => e.keyword !== 'if').map(
      (e) =>
        `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.params && 'allowedValues' in e.params ? ` (${JSON.stringify(e.params.allowedValues)})` : ''}${e.params && 'additionalProperty' in e.params ? ` (${String(e.params.additionalProperty)})` : ''}`,
    );
  }
  return consistencyProblems(report as EvaluationReport);
}

function metricsProblems(m: Metrics, at: string): string[] {
  const problems: string[] = [];
  const keys = Object.keys(m.per_class);
  const missing = m.classes.filter((c) => !keys.includes(c));
  const extra = keys.filter((c) => !m.classes.includes(c));
  if (missing.length) problems.push(`${at}/per_class lacks classes ${JSON.stringify(missing)}`);
  if (extra.length) problems.push(`${at}/per_class has classes not in classes: ${JSON.stringify(extra)}`);
  if (m.task === 'classification') {
    const k = m.classes.length;
    if (m.confusion_matrix.length !== k || m.confusion_matrix.some((row) => row.length !== k)) {
      problems.push(`${at}/confusion_matrix must be ${k}×${k} (one row and one column per class)`);
    }
  } else {
    const extraCurves = Object.keys(m.pr_curves).filter((c) => !m.classes.includes(c));
    if (extraCurves.length) problems.push(`${at}/pr_curves has classes not in classes: ${JSON.stringify(extraCurves)}`);
  }
  return problems;
}

function consistencyProblems(r: EvaluationReport): string[] {
  const problems: string[] = [];
  if (r.metrics.task !== r.task) problems.push(`/metrics/task is ${r.metrics.task} but /task is ${r.task}`);
  if (r.metrics.task !== 'chain') problems.push(...metricsProblems(r.metrics, '/metrics'));
  if (r.champion.metrics) problems.push(...metricsProblems(r.champion.metrics, '/champion/metrics'));
  for (const [key, slice] of Object.entries(r.slices)) {
    const at = `/slices/${key}`;
    if (slice.key !== key) problems.push(`${at}/key is ${JSON.stringify(slice.key)}, not the slice's name`);
    for (const end of ['worst', 'best'] as const) {
      const v = slice[end];
      if (v && !(v.value in slice.values)) problems.push(`${at}/${end}/value ${JSON.stringify(v.value)} is not one of the slice's values`);
      else if (v && slice.values[v.value]?.metrics === null) problems.push(`${at}/${end}/value ${JSON.stringify(v.value)} has no rows`);
    }
    for (const [value, sv] of Object.entries(slice.values)) {
      if (sv.metrics) problems.push(...metricsProblems(sv.metrics, `${at}/values/${value}/metrics`));
    }
  }
  const failed = r.gates.filter((g) => g.status === 'fail');
  if (r.verdict === 'pass' && failed.length) problems.push(`/verdict is pass but gates failed: ${failed.map((g) => g.name).join(', ')}`);
  const files = r.plots.map((p) => p.file);
  const dup = files.filter((f, i) => files.indexOf(f) !== i);
  if (dup.length) problems.push(`/plots lists ${JSON.stringify(dup)} more than once`);
  return problems;
}
