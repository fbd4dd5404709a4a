import { describe, expect, it } from 'vitest';
import { compareClassification, compareDetection, mcnemar, pairedBootstrap, seededRandom, type DetectionSample } from '../../pipeline/evaluate/metrics/index.ts';
import { CLASSIFICATION_HEADLINE, DETECTION_HEADLINE } from '../../pipeline/evaluate/types.ts';

describe('mcnemar', () => {
  it('uses the exact binomial p below 25 discordant pairs', () => {
    const r = mcnemar([1, 1, 1, 1, 0], [0, 0, 0, 1, 0]);
    expect(r).toMatchObject({ challengerOnly: 3, championOnly: 0 });
    expect(r.pValue).toBeCloseTo(0.25, 12); // 2 × 0.5³
    expect(r.statistic).toBeCloseTo(4 / 3, 12);
  });

  it('uses the continuity-corrected chi-square from 25 discordant pairs', () => {
    const a = [...Array(30).fill(true), ...Array(10).fill(false)];
    const b = [...Array(30).fill(false), ...Array(10).fill(true)];
    const r = mcnemar(a, b);
    expect(r.statistic).toBeCloseTo(9.025, 12);
    expect(r.pValue).toBeCloseTo(0.002663119259138558, 6); // scipy chi2.sf(9.025, 1)
  });

  it('gives p = 1 with no discordant pairs and refuses unpaired rows', () => {
    expect(mcnemar([true, false], [true, false])).toEqual({ challengerOnly: 0, championOnly: 0, statistic: 0, pValue: 1 });
    expect(() => mcnemar([1], [1, 0])).toThrow(/paired rows/);
  });
});

describe('pairedBootstrap', () => {
  const values = Array.from({ length: 200 }, (_, i) => (i % 10) / 10);
  const mean = (idx: Int32Array): number => idx.reduce((s, i) => s + values[i]!, 0) / idx.length;

  it('is seeded: same seed, same interval; another seed, another interval', () => {
    const a = pairedBootstrap(mean, values.length, { resamples: 1000, seed: 1 });
    expect(pairedBootstrap(mean, values.length, { resamples: 1000, seed: 1 })).toEqual(a);
    expect(pairedBootstrap(mean, values.length, { resamples: 1000, seed: 2 })).not.toEqual(a);
  });

  it('brackets the statistic with about ±1.96 standard errors', () => {
    const [lo, hi] = pairedBootstrap(mean, values.length, { resamples: 2000 });
    const se = Math.sqrt(0.0825 / values.length); // population variance of 0, 0.1, …, 0.9
    expect(lo).toBeLessThan(0.45);
    expect(hi).toBeGreaterThan(0.45);
    expect(hi - lo).toBeGreaterThan(2 * 1.96 * se * 0.8);
    expect(hi - lo).toBeLessThan(2 * 1.96 * se * 1.2);
  });

  it('gives NaN when the statistic is never finite and refuses bad resample counts', () => {
    expect(pairedBootstrap(() => NaN, 5, { resamples: 10 })).toEqual([NaN, NaN]);
    expect(() => pairedBootstrap(mean, 5, { resamples: 0.5 })).toThrow(/resamples/);
  });

  it('draws uniformly', () => {
    const random = seededRandom(42);
    let sum = 0;
    for (let i = 0; i < 10000; i++) sum += random();
    expect(sum / 10000).toBeGreaterThan(0.48);
    expect(sum / 10000).toBeLessThan(0.52);
  });
});

describe('compareClassification', () => {
  // 300 rows, 3 classes: the challenger is right on 90% of rows, the champion on 60%.
  const n = 300;
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const probs = (rightEvery: (i: number) => boolean): Float64Array => {
    const p = new Float64Array(n * 3);
    for (let i = 0; i < n; i++) {
      const k = rightEvery(i) ? labels[i]! : (labels[i]! + 1) % 3;
      for (let c = 0; c < 3; c++) p[i * 3 + c] = c === k ? 0.8 : 0.1;
    }
    return p;
  };
  const challenger = probs((i) => i % 10 !== 0);
  const champion = probs((i) => i % 10 < 6);

  it('gives every headline delta with a 95% interval and McNemar on accuracy', () => {
    const { comparison, mcnemar: test } = compareClassification(labels, challenger, champion, ['x', 'y', 'z'], { resamples: 1000, seed: 7 });
    expect(comparison.map((d) => d.metric)).toEqual([...CLASSIFICATION_HEADLINE]);
    const acc = comparison.find((d) => d.metric === 'accuracy')!;
    expect(acc.challenger).toBeCloseTo(0.9, 12);
    expect(acc.champion).toBeCloseTo(0.6, 12);
    expect(acc.delta).toBeCloseTo(0.3, 12);
    expect(acc.ci95![0]).toBeGreaterThan(0.2);
    expect(acc.ci95![0]).toBeLessThan(0.3);
    expect(acc.ci95![1]).toBeGreaterThan(0.3);
    expect(acc.ci95![1]).toBeLessThan(0.4);
    const loss = comparison.find((d) => d.metric === 'log_loss')!;
    expect(loss.delta).toBeLessThan(0);
    expect(test).toMatchObject({ challengerOnly: 120, championOnly: 30 });
    expect(test.pValue).toBeLessThan(1e-10);
  });

  it('turns the bootstrap off with resamples: 0', () => {
    const { comparison } = compareClassification(labels, challenger, champion, ['x', 'y', 'z'], { resamples: 0 });
    expect(comparison.every((d) => d.ci95 === null)).toBe(true);
    expect(comparison.find((d) => d.metric === 'accuracy')!.delta).toBeCloseTo(0.3, 12);
  });
});

describe('compareDetection', () => {
  const b: [number, number, number, number] = [0, 0, 10, 10];
  const images = (hit: (i: number) => boolean): DetectionSample[] =>
    Array.from({ length: 40 }, (_, i) => ({ id: `img${i}`, gt: [{ cls: 0, box: b }], pred: hit(i) ? [{ cls: 0, conf: 0.9, box: b }] : [] }));

  it('pairs images by id and bootstraps over images', () => {
    const challenger = images(() => true);
    const champion = images((i) => i % 2 === 0).reverse();
    const { comparison } = compareDetection(challenger, champion, ['spot'], { resamples: 200 });
    expect(comparison.map((d) => d.metric)).toEqual([...DETECTION_HEADLINE]);
    const recall = comparison.find((d) => d.metric === 'recall')!;
    expect(recall).toMatchObject({ challenger: 1, champion: 0.5, delta: 0.5 });
    expect(recall.ci95![0]).toBeGreaterThan(0.25);
    expect(recall.ci95![1]).toBeLessThanOrEqual(0.75);
  });

  it('refuses images the champion did not score', () => {
    const other = images(() => true).map((s, i) => (i === 3 ? { ...s, id: 'elsewhere' } : s));
    expect(() => compareDetection(images(() => true), other, ['spot'], { resamples: 0 })).toThrow(/img3/);
  });
});
