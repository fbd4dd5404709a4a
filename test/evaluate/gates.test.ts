import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../pipeline/core/errors.ts';
import { loadPipeline } from '../../pipeline/engine/index.ts';
import { applyGates, parseGates, verdictOf, type GateParams } from '../../pipeline/evaluate/gates.ts';
import type { ChainMetrics, MetricDelta, SliceReport } from '../../pipeline/evaluate/types.ts';

const none: GateParams = { min: {}, max: {}, 'max-regression': {}, 'max-slice-gap': {} };

function gates(p: Partial<GateParams>, task: 'classification' | 'detection' | 'chain' = 'classification', keys = ['skin_tone', 'source']) {
  return parseGates({ ...none, ...p }, task, keys, 'evaluate-skin-type');
}

/** Only the fields gates read; a chain metrics object is the smallest valid `metrics`. */
const metrics = { task: 'chain', n: 10, buckets: {}, f1_macro: 0.7, severity_agreement: 0.9 } satisfies ChainMetrics;
const classification = { accuracy: 0.8, f1_macro: 0.75, log_loss: 0.5, roc_auc_ovr: null } as unknown as ChainMetrics;

function slice(values: Record<string, number | null>): SliceReport {
  const entries = Object.entries(values);
  const filled = entries.filter(([, v]) => v !== null) as [string, number][];
  filled.sort((a, b) => a[1] - b[1]);
  const worst = filled[0] ? { value: filled[0][0], score: filled[0][1] } : null;
  const best = filled.at(-1) ? { value: filled.at(-1)![0], score: filled.at(-1)![1] } : null;
  return {
    key: 'skin_tone',
    metric: 'f1_macro',
    values: Object.fromEntries(entries.map(([k, v]) => [k, { n: v === null ? 0 : 5, metrics: v === null ? null : ({ f1_macro: v } as never) }])),
    worst,
    best,
    gap: filled.length > 1 ? best!.score - worst!.score : 0,
  };
}

function delta(metric: string, challenger: number | null, champion: number | null): MetricDelta {
  return { metric, challenger, champion, delta: challenger !== null && champion !== null ? challenger - champion : null, ci95: [-0.01, 0.02] };
}

describe('gate params', () => {
  it('parses numbers and keeps each gate family apart', () => {
    const { gates: g, problems } = gates({ min: { accuracy: '0.7' }, max: { ece: '0.1' }, 'max-regression': { f1_macro: '0.02' }, 'max-slice-gap': { skin_tone: '0.15' } });
    expect(problems).toEqual([]);
    expect(g).toEqual({ min: { accuracy: 0.7 }, max: { ece: 0.1 }, maxRegression: { f1_macro: 0.02 }, maxSliceGap: { skin_tone: 0.15 } });
  });

  it('names an unknown metric with a did-you-mean, and every other problem at once', () => {
    const { problems } = gates({ min: { acuracy: '0.7', log_loss: '1' }, max: { accuracy: '1' }, 'max-regression': { f1_macro: '-1' }, 'max-slice-gap': { skin_tones: 'x' } });
    const text = problems.map((p) => p.message);
    expect(text).toHaveLength(5);
    expect(text[0]).toContain('unknown classification metric `acuracy`');
    expect(text[0]).toContain('did you mean `accuracy`?');
    expect(text.find((t) => t.includes('log_loss'))).toContain('gate it with `max`');
    expect(text.find((t) => t.includes('max.accuracy') || t.includes('`accuracy` is higher'))).toContain('gate it with `min`');
    expect(text.find((t) => t.includes('max-regression.f1_macro'))).toContain('non-negative number');
    expect(text.find((t) => t.includes('skin_tones'))).toContain('did you mean `skin_tone`?');
    expect(problems.every((p) => p instanceof ConfigurationError)).toBe(true);
  });

  it('knows the metric names of each task', () => {
    expect(gates({ min: { map50: '0.3' } }, 'detection').problems).toEqual([]);
    expect(gates({ min: { map50: '0.3' } }, 'classification').problems[0]!.message).toContain('unknown classification metric `map50`');
    expect(gates({ min: { severity_agreement: '0.5' } }, 'chain', []).problems).toEqual([]);
    expect(gates({ 'max-slice-gap': { skin_tone: '0.1' } }, 'chain', []).problems[0]!.message).toContain('has no slices');
  });

  it('is checked when pipeline.yaml is loaded: an unknown metric is a ConfigurationError there', async () => {
    const root = await mkdtemp(join(tmpdir(), 'skintwin-gates-'));
    try {
      await mkdir(join(root, 'pipeline'), { recursive: true });
      await writeFile(
        join(root, 'pipeline/pipeline.yaml'),
        'stages:\n  evaluate-skin-type:\n    kind: evaluate\n    params:\n      model: skin-type\n      min: { f1_macr: 0.5 }\n      bootstrap-resamples: 10\n' +
          '    deps: [data/processed/skin-type, models/skin-type]\n    outs: [reports/skin-type]\n',
      );
      const error = await loadPipeline({ root }).then(() => undefined, (e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect((error as Error).message).toContain('did you mean `f1_macro`?');
      expect((error as Error).message).toContain('`bootstrap-resamples` must be 0 (off) or at least 1000');
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});

describe('applying gates', () => {
  it('minimums and maximums pass or fail on the value; an undefined metric is skipped, not passed', () => {
    const { gates: g } = gates({ min: { accuracy: '0.8', f1_macro: '0.8', roc_auc_ovr: '0.5' }, max: { log_loss: '0.4' } });
    const r = applyGates(g, { metrics: classification, slices: {}, comparison: [] });
    expect(r.map((x) => [x.name, x.status])).toEqual([
      ['min accuracy', 'pass'],
      ['min f1_macro', 'fail'],
      ['min roc_auc_ovr', 'skipped'],
      ['max log_loss', 'fail'],
    ]);
    expect(r[1]!.value).toBe(0.75);
    expect(verdictOf(r)).toBe('fail');
  });

  it('regression: worse by more than the tolerance fails, within passes, lower-is-better reads the other way', () => {
    const { gates: g } = gates({ 'max-regression': { accuracy: '0.02', f1_macro: '0.02', log_loss: '0.05' } });
    const r = applyGates(g, {
      metrics: classification,
      slices: {},
      comparison: [delta('accuracy', 0.8, 0.81), delta('f1_macro', 0.75, 0.8), delta('log_loss', 0.5, 0.4)],
    });
    expect(r.map((x) => x.status)).toEqual(['pass', 'fail', 'fail']);
    expect(r[1]!.value).toBeCloseTo(0.05);
    expect(r[2]!.value).toBeCloseTo(0.1);
    expect(r[1]!.message).toContain('beyond the tolerance');
    const better = applyGates(g, { metrics: classification, slices: {}, comparison: [delta('accuracy', 0.9, 0.8), delta('f1_macro', 0.9, 0.8), delta('log_loss', 0.3, 0.4)] });
    expect(better.map((x) => x.status)).toEqual(['pass', 'pass', 'pass']);
    expect(better[0]!.value).toBeLessThan(0);
  });

  it('regression without a champion is skipped with the reason, and the verdict rests on the other gates', () => {
    const { gates: g } = gates({ min: { accuracy: '0.5' }, 'max-regression': { accuracy: '0' } });
    const r = applyGates(g, { metrics: classification, slices: {}, comparison: [], noComparisonReason: 'the champion failed to load: bad sha256' });
    expect(r[1]).toMatchObject({ status: 'skipped', value: null });
    expect(r[1]!.message).toContain('the champion failed to load: bad sha256');
    expect(verdictOf(r)).toBe('pass');
    const nullDelta = applyGates(g, { metrics: classification, slices: {}, comparison: [delta('accuracy', 0.8, null)] });
    expect(nullDelta[1]!.status).toBe('skipped');
  });

  it('slice gap: fails beyond the threshold, skipped with fewer than two non-empty values or no such slice', () => {
    const { gates: g } = gates({ 'max-slice-gap': { skin_tone: '0.1', source: '0.1' } });
    const wide = applyGates(g, { metrics, slices: { skin_tone: slice({ I: 0.9, V: 0.6, VI: null }) }, comparison: [] });
    expect(wide[0]).toMatchObject({ status: 'fail', metric: 'f1_macro' });
    expect(wide[0]!.value).toBeCloseTo(0.3);
    expect(wide[0]!.message).toContain('skin_tone V');
    expect(wide[1]).toMatchObject({ status: 'skipped', value: null });
    expect(wide[1]!.message).toContain('no `source` values');
    const narrow = applyGates(g, { metrics, slices: { skin_tone: slice({ I: 0.9, V: 0.85 }) }, comparison: [] });
    expect(narrow[0]!.status).toBe('pass');
    const single = applyGates(g, { metrics, slices: { skin_tone: slice({ I: 0.9, V: null }) }, comparison: [] });
    expect(single[0]!.status).toBe('skipped');
    expect(single[0]!.message).toContain('fewer than two');
  });

  it('no gates: pass', () => {
    expect(verdictOf(applyGates(gates({}).gates, { metrics, slices: {}, comparison: [] }))).toBe('pass');
  });
});
