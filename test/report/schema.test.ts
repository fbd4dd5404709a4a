import { describe, it, expect } from 'vitest';
import { evaluationProblems, evaluationSchema } from '../../pipeline/report/schema.ts';
import type { EvaluationReport } from '../../pipeline/evaluate/types.ts';
import { chainReport, contextCorrectionReport, detectionReport, skinTypeReport } from './fixtures.ts';

const fixtures: [string, () => EvaluationReport][] = [
  ['classification with a registry champion and a failed gate', skinTypeReport],
  ['detection without a champion, a skipped gate, an empty slice', detectionReport],
  ['chain with a base-branch champion', chainReport],
  ['79-class context correction', contextCorrectionReport],
];

/** A fixture changed by `edit`, through JSON as evaluation.json would be read back. */
function broken(make: () => EvaluationReport, edit: (r: any) => void): unknown {
  const r = JSON.parse(JSON.stringify(make()));
  edit(r);
  return r;
}

describe('evaluation.schema.json', () => {
  it('is draft-07 and closed at the top level', () => {
    expect(evaluationSchema['$schema']).toBe('http://json-schema.org/draft-07/schema#');
    expect(evaluationSchema['additionalProperties']).toBe(false);
  });

  it.each(fixtures)('accepts %s (also after a JSON round trip)', (_, make) => {
    expect(evaluationProblems(make())).toEqual([]);
    expect(evaluationProblems(JSON.parse(JSON.stringify(make())))).toEqual([]);
  });

  it.each([
    ['a missing field', (r: any) => delete r.verdict, /must have required property 'verdict'/],
    ['an unknown field', (r: any) => (r.extra = 1), /must NOT have additional properties \(extra\)/],
    ['an unknown field in the metrics', (r: any) => (r.metrics.f2 = 0.5), /\/metrics/],
    ['a wrong format', (r: any) => (r.format = 'other'), /\/format/],
    ['a metric above 1', (r: any) => (r.metrics.accuracy = 1.5), /\/metrics/],
    ['a negative count', (r: any) => (r.data.rows = -1), /\/data\/rows must be >= 0/],
    ['a fractional support', (r: any) => (r.metrics.per_class.Dry.support = 2.5), /\/metrics/],
    ['a bad sha256', (r: any) => (r.challenger.onnxSha256 = 'abc'), /\/challenger\/onnxSha256 must match pattern/],
    ['a three-sided interval', (r: any) => (r.comparison[0].ci95 = [0, 1, 2]), /\/comparison\/0\/ci95/],
    ['an unknown gate status', (r: any) => (r.gates[0].status = 'warn'), /\/gates\/0\/status/],
    ['a createdAt that is not ISO 8601', (r: any) => (r.createdAt = 'yesterday'), /\/createdAt must match pattern/],
    ['a plot outside the report folder', (r: any) => (r.plots[0].file = '../x.png'), /\/plots\/0\/file must match pattern/],
  ])('rejects %s', (_, edit, message) => {
    const problems = evaluationProblems(broken(skinTypeReport, edit));
    expect(problems.join('\n')).toMatch(message);
  });

  it('rejects NaN and infinite numbers (JSON would turn them into null), naming only the bad fields', () => {
    const r = skinTypeReport();
    (r.metrics as { log_loss: number }).log_loss = Number.POSITIVE_INFINITY;
    r.comparison[0]!.ci95 = [Number.NaN, Number.NaN];
    expect(evaluationProblems(r)).toEqual(['/metrics/log_loss must be number', '/comparison/0/ci95/0 must be number', '/comparison/0/ci95/1 must be number']);
  });

  it('checks a slice value\'s metrics by their task, and allows null for an empty value', () => {
    const problems = evaluationProblems(broken(detectionReport, (r) => {
      r.slices.skin_tone.values.II.metrics.map50 = -1;
    }));
    expect(problems).toEqual(['/slices/skin_tone/values/II/metrics/map50 must be >= 0']);
  });

  it('rejects what the schema cannot say: a non-square confusion matrix', () => {
    const problems = evaluationProblems(broken(skinTypeReport, (r) => r.metrics.confusion_matrix.pop()));
    expect(problems).toEqual(['/metrics/confusion_matrix must be 3×3 (one row and one column per class)']);
  });

  it('rejects per-class keys that differ from the classes', () => {
    const problems = evaluationProblems(broken(detectionReport, (r) => {
      r.metrics.per_class['Acne '] = r.metrics.per_class.Acne;
      delete r.metrics.per_class.Acne;
    }));
    expect(problems).toContain('/metrics/per_class lacks classes ["Acne"]');
    expect(problems).toContain('/metrics/per_class has classes not in classes: ["Acne "]');
  });

  it('rejects a pass verdict with a failed gate', () => {
    const problems = evaluationProblems(broken(skinTypeReport, (r) => (r.verdict = 'pass')));
    expect(problems).toEqual(['/verdict is pass but gates failed: max slice gap skin_tone']);
  });

  it('rejects a task that disagrees with the metrics', () => {
    const problems = evaluationProblems(broken(chainReport, (r) => (r.task = 'detection')));
    expect(problems).toEqual(['/metrics/task is chain but /task is detection']);
  });

  it('rejects a worst slice value that has no rows or does not exist', () => {
    const empty = evaluationProblems(broken(skinTypeReport, (r) => (r.slices.skin_tone.worst.value = 'VI')));
    expect(empty).toEqual(['/slices/skin_tone/worst/value "VI" has no rows']);
    const missing = evaluationProblems(broken(skinTypeReport, (r) => (r.slices.skin_tone.best.value = 'VII')));
    expect(missing).toEqual(['/slices/skin_tone/best/value "VII" is not one of the slice\'s values']);
  });

  it('rejects something that is not a report at all', () => {
    expect(evaluationProblems(null).length).toBeGreaterThan(0);
    expect(evaluationProblems([]).length).toBeGreaterThan(0);
  });
});
