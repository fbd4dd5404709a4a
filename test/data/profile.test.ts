import { describe, expect, it } from 'vitest';
import { featureEdges, finalizeProfile, mergeProfiles, ProfileBuilder } from '../../pipeline/data/profile/profile.ts';
import { addValue, evenEdges, mergeHistograms, newHistogram, quantileKey, quantiles } from '../../pipeline/data/profile/sketch.ts';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

describe('histogram sketch', () => {
  it('counts every value once: bins + underflow + overflow = count', () => {
    const h = newHistogram(evenEdges(0, 10, 10));
    for (const x of [-1, 0, 0.5, 9.99, 10, 10.5, 5, Number.NaN]) addValue(h, x);
    expect(h.count).toBe(7);
    expect(h.counts.reduce((a, b) => a + b, 0) + h.underflow + h.overflow).toBe(h.count);
    expect(h.underflow).toBe(1);
    expect(h.overflow).toBe(1);
    expect(h.counts[0]).toBe(2);
    expect(h.counts[9]).toBe(2); // 9.99 and the right edge 10
    expect(h.min).toBe(-1);
    expect(h.max).toBe(10.5);
  });

  it('merging two shards equals one pass over all values', () => {
    const rnd = seeded(3);
    const values = Array.from({ length: 5000 }, () => rnd() * 120 - 5);
    const edges = featureEdges([0, 120], false);
    const whole = newHistogram(edges);
    const a = newHistogram(edges);
    const b = newHistogram(edges);
    values.forEach((v, i) => {
      addValue(whole, v);
      addValue(i % 3 ? a : b, v);
    });
    const merged = mergeHistograms(a, b);
    expect(merged.counts).toEqual(whole.counts);
    expect([merged.count, merged.underflow, merged.overflow, merged.min, merged.max]).toEqual([whole.count, whole.underflow, whole.overflow, whole.min, whole.max]);
    expect(merged.sum).toBeCloseTo(whole.sum, 6);
    expect(() => mergeHistograms(a, newHistogram(evenEdges(0, 1, 4)))).toThrow(/different bin edges/);
  });

  it('derives quantiles within one bin width of the exact ones', () => {
    const rnd = seeded(11);
    const values = Array.from({ length: 20000 }, () => rnd() ** 2 * 100).sort((x, y) => x - y);
    const h = newHistogram(evenEdges(0, 100, 50));
    values.forEach((v) => addValue(h, v));
    const q = quantiles(h);
    expect(q.p0).toBe(values[0]);
    expect(q.p100).toBe(values[values.length - 1]);
    for (const p of [0.05, 0.25, 0.5, 0.75, 0.95]) {
      const exact = values[Math.floor(p * (values.length - 1))]!;
      expect(Math.abs(q[quantileKey(p)]! - exact)).toBeLessThanOrEqual(2);
    }
  });
});

describe('reference profile', () => {
  it('merges profiles of shards into the single-machine profile', () => {
    const rnd = seeded(5);
    const rows = Array.from({ length: 900 }, () => ({ age: rnd() * 100, tone: ['I', 'II', 'III'][Math.floor(rnd() * 3)]!, label: String(Math.floor(rnd() * 4)) }));
    const build = (subset: typeof rows) => {
      const p = new ProfileBuilder('tabular', 'train');
      for (const r of subset) {
        p.item();
        p.numeric('age', featureEdges([0, 120], false), r.age);
        p.category('skin_tone', r.tone);
        p.label(r.label);
      }
      return p.finish();
    };
    const whole = build(rows);
    const merged = mergeProfiles(build(rows.slice(0, 400)), build(rows.slice(400)));
    expect(merged.count).toBe(900);
    expect(merged.numeric.age!.counts).toEqual(whole.numeric.age!.counts);
    expect(merged.numeric.age!.quantiles).toEqual(whole.numeric.age!.quantiles);
    expect(merged.numeric.age!.mean).toBeCloseTo(whole.numeric.age!.mean!, 9);
    expect(merged.categorical.skin_tone!.counts).toEqual(whole.categorical.skin_tone!.counts);
    expect(merged.labels.counts).toEqual(whole.labels.counts);
    const freq = Object.values(merged.labels.frequencies!).reduce((a, b) => a + b, 0);
    expect(freq).toBeCloseTo(1, 9);
    expect(whole.numeric.age!.counts.reduce((a, b) => a + b, 0)).toBe(900);
    // Finalising again changes nothing (derived fields are recomputed from the sketches).
    expect(finalizeProfile(merged)).toEqual(merged);
  });
});
