import { describe, expect, it } from 'vitest';
import { classificationMetrics, classificationSlices, detectionSlices, scoreDetections, type DetectionSample } from '../../pipeline/evaluate/metrics/index.ts';
import type { ClassificationMetrics } from '../../pipeline/evaluate/types.ts';

const CLASSES = ['a', 'b'];
// Tone I: both right; tone V: one right, one wrong; one row without a tone; two sources.
const LABELS = [0, 1, 0, 1, 1];
const PROBS = Float64Array.from([0.9, 0.1, 0.3, 0.7, 0.8, 0.2, 0.9, 0.1, 0.2, 0.8]);
const SLICES: Record<string, string>[] = [{ skin_tone: 'I', source: 'kaggle' }, { skin_tone: 'I', source: 'kaggle' }, { skin_tone: 'V', source: 'synthetic' }, { skin_tone: 'V', source: 'synthetic' }, { source: 'kaggle' }];

describe('classificationSlices', () => {
  const slices = classificationSlices(LABELS, PROBS, CLASSES, SLICES, { expected: { skin_tone: ['I', 'III', 'V'] } });

  it('scores every value of every key with the same metrics as a subset', () => {
    expect(Object.keys(slices)).toEqual(['skin_tone', 'source']);
    const tone = slices.skin_tone!;
    expect(tone.metric).toBe('f1_macro');
    expect(tone.values.I!.n).toBe(2);
    expect(tone.values.V!.n).toBe(2);
    const v = tone.values.V!.metrics as ClassificationMetrics;
    const direct = classificationMetrics([0, 1], Float64Array.from([0.8, 0.2, 0.9, 0.1]), CLASSES);
    expect(v).toEqual(direct);
    expect(v.accuracy).toBe(0.5);
    expect(v.roc_auc_ovr).toBe(0); // the positive scores lower than the negative, in the slice alone
    expect((slices.source!.values.kaggle!.metrics as ClassificationMetrics).n).toBe(3);
  });

  it('names the worst value and the gap to the best, and gives a requested value without rows null metrics', () => {
    const tone = slices.skin_tone!;
    expect(tone.values.III).toEqual({ n: 0, metrics: null });
    expect(tone.worst).toEqual({ value: 'V', score: (tone.values.V!.metrics as ClassificationMetrics).f1_macro });
    expect(tone.best).toEqual({ value: 'I', score: 1 });
    expect(tone.gap).toBeCloseTo(1 - tone.worst!.score, 12);
    expect(Object.keys(tone.values)).toEqual(['I', 'III', 'V']);
  });

  it('handles a single-class slice (ROC-AUC undefined) and a key with no rows at all', () => {
    const r = classificationSlices([0, 0, 1], Float64Array.from([0.9, 0.1, 0.6, 0.4, 0.3, 0.7]), CLASSES, [{ s: 'x' }, { s: 'x' }, { s: 'y' }], {
      expected: { source: ['kaggle'] },
    });
    const x = r.s!.values.x!.metrics as ClassificationMetrics;
    expect(x.roc_auc_ovr).toBeNull();
    expect(x.per_class.b).toMatchObject({ support: 0, precision: 0, recall: 0, f1: 0 });
    expect(r.source).toMatchObject({ worst: null, best: null, gap: 0, values: { kaggle: { n: 0, metrics: null } } });
  });

  it('gives no slice reports when no row has a slice', () => {
    expect(classificationSlices(LABELS, PROBS, CLASSES, LABELS.map(() => undefined))).toEqual({});
  });
});

describe('detectionSlices', () => {
  const b: [number, number, number, number] = [0, 0, 10, 10];
  const samples: DetectionSample[] = [
    { id: '1', gt: [{ cls: 0, box: b }], pred: [{ cls: 0, conf: 0.9, box: b }], slice: { skin_tone: 'II' } },
    { id: '2', gt: [{ cls: 0, box: b }], pred: [], slice: { skin_tone: 'VI' } },
    { id: '3', gt: [], pred: [], slice: { skin_tone: 'VI' } },
  ];

  it('compares map50 across values', () => {
    const r = detectionSlices(samples, ['spot'], { expected: { skin_tone: ['IV'] } }).skin_tone!;
    expect(r.metric).toBe('map50');
    expect(r.values.II).toMatchObject({ n: 1, metrics: { map50: 1 } });
    expect(r.values.VI).toMatchObject({ n: 2, metrics: { map50: 0, recall: 0 } });
    expect(r.values.IV).toEqual({ n: 0, metrics: null });
    expect(r).toMatchObject({ worst: { value: 'VI', score: 0 }, best: { value: 'II', score: 1 }, gap: 1 });
    expect(r.values.VI!.metrics).toEqual(scoreDetections(samples.slice(1), ['spot']));
  });
});
