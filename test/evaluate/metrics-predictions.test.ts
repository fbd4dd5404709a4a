import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { classificationMetrics, metricsFromFile, readClassificationPredictions } from '../../pipeline/evaluate/metrics/index.ts';
import type { ClassificationMetrics, DetectionMetrics } from '../../pipeline/evaluate/types.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skintwin-metrics-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let counter = 0;
async function file(lines: readonly (string | object)[]): Promise<string> {
  const path = join(dir, `p${counter++}.jsonl`);
  await writeFile(path, lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return path;
}

const row = (id: string, label: string, dry: number, normal: number, oily: number, slice?: Record<string, string>): object => ({
  id,
  label,
  probs: { Dry: dry, Normal: normal, Oily: oily },
  ...(slice ? { slice } : {}),
});

describe('metricsFromFile, classification', () => {
  it('scores the rows as classificationMetrics does, with a report per slice key', async () => {
    const path = await file([
      row('1', 'Dry', 0.7, 0.2, 0.1, { skin_tone: 'V', source: 'kaggle' }),
      row('2', 'Dry', 0.4, 0.4, 0.2, { skin_tone: 'I' }),
      '',
      row('3', 'Normal', 0.3, 0.6, 0.1, { skin_tone: 'V' }),
      row('4', 'Normal', 0.5, 0.3, 0.2),
      row('5', 'Oily', 0.2, 0.2, 0.6, { skin_tone: 'I', source: 'kaggle' }),
    ]);
    const report = await metricsFromFile(path, 'preds.jsonl', 'classification');
    const direct = classificationMetrics([0, 0, 1, 1, 2], Float64Array.from([0.7, 0.2, 0.1, 0.4, 0.4, 0.2, 0.3, 0.6, 0.1, 0.5, 0.3, 0.2, 0.2, 0.2, 0.6]), ['Dry', 'Normal', 'Oily']);
    expect(report.metrics).toEqual(direct);
    expect(Object.keys(report.slices)).toEqual(['skin_tone', 'source']);
    expect(report.slices.skin_tone!.values.V!.n).toBe(2);
    expect(report.slices.source!.values.kaggle!.n).toBe(2);
    const v = report.slices.skin_tone!.values.V!.metrics as ClassificationMetrics;
    expect(v).toEqual(classificationMetrics([0, 1], Float64Array.from([0.7, 0.2, 0.1, 0.3, 0.6, 0.1]), ['Dry', 'Normal', 'Oily']));
  });

  it('takes the class order from --classes, and numeric labels and ids as text', async () => {
    const path = await file([{ id: 7, label: 2, probs: { '1': 0.25, '2': 0.75 } }, { id: 8, label: 1, probs: { '2': 0.5, '1': 0.5 } }]);
    const read = await readClassificationPredictions(path, 'p', { classes: ['2', '1'] });
    expect(read.classes).toEqual(['2', '1']);
    expect(Array.from(read.labels)).toEqual([0, 1]);
    expect(Array.from(read.probs)).toEqual([0.75, 0.25, 0.5, 0.5]);
  });

  it('grows past its first buffers', async () => {
    const lines = Array.from({ length: 3000 }, (_, i) => row(`r${i}`, ['Dry', 'Normal', 'Oily'][i % 3]!, 0.6, 0.3, 0.1, { skin_tone: i < 2500 ? 'I' : 'II' }));
    const report = await metricsFromFile(await file(lines), 'p', 'classification');
    expect(report.metrics.n).toBe(3000);
    expect((report.metrics as ClassificationMetrics).accuracy).toBeCloseTo(1 / 3, 12);
    expect(report.slices.skin_tone!.values.II!.n).toBe(500);
  });

  const bad: [string, (string | object)[], RegExp][] = [
    ['invalid JSON', [row('1', 'Dry', 1, 0, 0), '{"id": "2",'], /^bad\.jsonl:2: not valid JSON/],
    ['NaN', [row('1', 'Dry', 1, 0, 0), '{"id": "2", "label": "Dry", "probs": {"Dry": NaN, "Normal": 0.5, "Oily": 0.5}}'], /^bad\.jsonl:2: NaN or Infinity is not a JSON number/],
    ['a missing id', [{ label: 'Dry', probs: { Dry: 1, Normal: 0, Oily: 0 } }], /^bad\.jsonl:1: missing `id`/],
    ['a duplicate id', [row('1', 'Dry', 1, 0, 0), row('1', 'Oily', 0, 0, 1)], /^bad\.jsonl:2: duplicate id `1`/],
    ['an unknown label', [row('1', 'Dry', 1, 0, 0), row('2', 'Oilly', 0, 0, 1)], /^bad\.jsonl:2: unknown label `Oilly` \(did you mean `Oily`\?\)/],
    ['a missing label', [{ id: '1', probs: { Dry: 1, Normal: 0, Oily: 0 } }], /^bad\.jsonl:1: missing `label`/],
    ['a missing class', [row('1', 'Dry', 1, 0, 0), { id: '2', label: 'Dry', probs: { Dry: 0.5, Normal: 0.5 } }], /^bad\.jsonl:2: `probs` has no `Oily`/],
    ['an unknown class', [row('1', 'Dry', 1, 0, 0), { id: '2', label: 'Dry', probs: { Dry: 0.5, Normal: 0.5, Oily: 0, Combination: 0 } }], /^bad\.jsonl:2: unknown class `Combination` in `probs`/],
    ['probabilities not summing to 1', [row('1', 'Dry', 1, 0, 0), row('2', 'Dry', 0.5, 0.4, 0.05)], /^bad\.jsonl:2: probabilities sum to 0\.95\d*, not 1/],
    ['a probability outside [0, 1]', [row('1', 'Dry', 1.5, -0.5, 0)], /^bad\.jsonl:1: probability of `Dry` is 1\.5, outside \[0, 1\]/],
    ['a probability that is not a number', [{ id: '1', label: 'Dry', probs: { Dry: null, Normal: 0.5, Oily: 0.5 } }], /^bad\.jsonl:1: probability of `Dry` is null/],
    ['a line that is not an object', [row('1', 'Dry', 1, 0, 0), '[1, 2]'], /^bad\.jsonl:2: each line must be one JSON object/],
    ['a bad slice', [{ ...row('1', 'Dry', 1, 0, 0), slice: { skin_tone: ['V'] } }], /^bad\.jsonl:1: slice `skin_tone` must be a string/],
  ];
  for (const [what, lines, message] of bad) {
    it(`names the file and line of ${what}`, async () => {
      const path = await file(lines);
      const error = await metricsFromFile(path, 'bad.jsonl', 'classification').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(Error);
      expect((error as Error).name).toBe('DataError');
      expect((error as Error).message).toMatch(message);
    });
  }

  it('refuses an empty file (empty test split) and names a missing file', async () => {
    await expect(metricsFromFile(await file(['', '  ']), 'empty.jsonl', 'classification')).rejects.toThrow(/^empty\.jsonl: no predictions in the file \(empty test split\)/);
    await expect(metricsFromFile(join(dir, 'absent.jsonl'), 'absent.jsonl', 'classification')).rejects.toMatchObject({ name: 'ConfigurationError', message: expect.stringMatching(/^absent\.jsonl: cannot read/) });
  });

  it('a label outside the given classes is unknown', async () => {
    await expect(metricsFromFile(await file([row('1', 'Dry', 1, 0, 0)]), 'x.jsonl', 'classification', { classes: ['Normal', 'Oily'] })).rejects.toThrow(/^x\.jsonl:1: unknown label `Dry`/);
  });

  it('stops when aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(metricsFromFile(await file([row('1', 'Dry', 1, 0, 0)]), 'x', 'classification', { signal: controller.signal })).rejects.toMatchObject({ name: 'InterruptedError' });
  });
});

describe('metricsFromFile, detection', () => {
  const b = [0, 0, 10, 10];
  it('scores images with classes in first-seen order, including images without boxes', async () => {
    const path = await file([
      { id: 'a', gt: [{ cls: 'Acne', box: b }], pred: [{ cls: 'Acne', conf: 0.9, box: b }], slice: { skin_tone: 'III' } },
      { id: 'b', gt: [{ cls: 'Wrinkles', box: b }], pred: [], slice: { skin_tone: 'IV' } },
      { id: 'c', gt: [], pred: [] },
    ]);
    const report = await metricsFromFile(path, 'det.jsonl', 'detection');
    const m = report.metrics as DetectionMetrics;
    expect(m.classes).toEqual(['Acne', 'Wrinkles']);
    expect(m).toMatchObject({ n: 3, map50: 0.5, precision: 1, recall: 0.5 });
    expect(report.slices.skin_tone).toMatchObject({ worst: { value: 'IV', score: 0 }, best: { value: 'III', score: 1 }, gap: 1 });
  });

  const bad: [string, object[], RegExp, string[]?][] = [
    ['a bad box', [{ id: 'a', gt: [{ cls: 'Acne', box: [0, 0, 10] }] }], /^det\.jsonl:1: `box` must be \[x1, y1, x2, y2\]/],
    ['an inverted box', [{ id: 'a', gt: [], pred: [{ cls: 'Acne', conf: 0.5, box: [10, 0, 0, 10] }] }], /^det\.jsonl:1: box \[10,0,0,10\] has x2 < x1/],
    ['a bad confidence', [{ id: 'a', gt: [], pred: [{ cls: 'Acne', conf: 2, box: b }] }], /^det\.jsonl:1: confidence 2 is not a number in \[0, 1\]/],
    ['an unknown class', [{ id: 'a', gt: [{ cls: 'Acnee', box: b }] }], /^det\.jsonl:1: unknown class `Acnee` \(did you mean `Acne`\?\)/, ['Acne', 'Wrinkles']],
    ['a missing id', [{ gt: [] }], /^det\.jsonl:1: missing `id`/],
    ['a missing confidence', [{ id: 'a', pred: [{ cls: 'Acne', score: 0.5, box: b }] }], /^det\.jsonl:1: a prediction needs `conf`/],
    ['gt that is not a list', [{ id: 'a', gt: { cls: 'Acne' } }], /^det\.jsonl:1: `gt` must be a list of boxes/],
  ];
  for (const [what, lines, message, classes] of bad) {
    it(`names the file and line of ${what}`, async () => {
      await expect(metricsFromFile(await file(lines), 'det.jsonl', 'detection', classes ? { classes } : {})).rejects.toThrow(message);
    });
  }

  it('needs the classes when no image has a box', async () => {
    await expect(metricsFromFile(await file([{ id: 'a', gt: [], pred: [] }]), 'det.jsonl', 'detection')).rejects.toThrow(/pass the class list/);
    const report = await metricsFromFile(await file([{ id: 'a', gt: [], pred: [] }]), 'det.jsonl', 'detection', { classes: ['Acne'] });
    expect(report.metrics).toMatchObject({ map50: 0, precision: 0, recall: 0, n: 1 });
  });
});
