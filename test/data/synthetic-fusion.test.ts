import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { encodeRow, FEATURES, headerIndex, RAW_COLUMNS, TARGET_IDS } from '../../pipeline/data/fusion/schema.ts';
import { fusionGenerator, REFERENCE_MOMENTS, writeFusionCsv } from '../../pipeline/data/synthetic/fusion.ts';

type Row = Record<string, string>;

function rows(n: number, seed = 42, shift: Record<string, number> = {}): Row[] {
  const generator = fusionGenerator(seed, shift);
  return Array.from({ length: n }, () => {
    const cells = generator.next().cells.map(String);
    return Object.fromEntries(RAW_COLUMNS.map((c, i) => [c, cells[i]!]));
  });
}

/** Where each of the 27 features comes from: a numeric column, or a category level (one-hot). */
const SOURCES = FEATURES.map((f) => {
  const column = RAW_COLUMNS.find((c) => f === c || f.startsWith(`${c}_`))!;
  return { feature: f, column, level: f === column ? undefined : f.slice(column.length + 1) };
});

/** The 27 features of a row, one-hot encoded the way the original did (first level dropped). */
function features(row: Row): Record<string, number> {
  const out: Record<string, number> = {};
  for (const { feature, column, level } of SOURCES) out[feature] = level === undefined ? Number(row[column]) : row[column] === level ? 1 : 0;
  return out;
}

const cache = new WeakMap<Row, Record<string, number>>();
function moments(data: Row[], feature: string): { mean: number; std: number } {
  const xs = data.map((r) => {
    if (!cache.has(r)) cache.set(r, features(r));
    return cache.get(r)![feature]!;
  });
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
  return { mean, std };
}

const tr = (r: Row): number[] => Array.from({ length: 10 }, (_, i) => Number(r[`tr_p${i}`]));
const sk = (r: Row): number[] => Array.from({ length: 3 }, (_, i) => Number(r[`sk_p${i}`]));
const sum = (xs: number[]): number => xs.reduce((a, b) => a + b, 0);

describe('synthetic fusion table', () => {
  const sample = rows(5000);

  it('matches the original means and standard deviations within 10%', () => {
    // As many rows as the original table: the rarest scores (Oily-Skin, Skin-Redness, pores) are
    // non-zero in a few percent of rows, so a few thousand rows cannot pin them to 10%.
    const generator = fusionGenerator(42, {});
    const n = 60_000;
    const s1 = new Map<string, number>();
    const s2 = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      const cells = generator.next().cells.map(String);
      const f = features(Object.fromEntries(RAW_COLUMNS.map((c, j) => [c, cells[j]!])));
      for (const feature of FEATURES) {
        s1.set(feature, (s1.get(feature) ?? 0) + f[feature]!);
        s2.set(feature, (s2.get(feature) ?? 0) + f[feature]! ** 2);
      }
    }
    const off: string[] = [];
    for (const feature of FEATURES) {
      const ref = REFERENCE_MOMENTS[feature]!;
      const mean = s1.get(feature)! / n;
      const std = Math.sqrt(Math.max(0, s2.get(feature)! / n - mean * mean));
      if (ref.std < 0.005) {
        // Blackheads and Whiteheads scores are almost never non-zero in the original: only an
        // absolute check makes sense.
        if (Math.abs(mean - ref.mean) > 0.001 || std > 0.005) off.push(`${feature} mean ${mean} std ${std}`);
        continue;
      }
      if (Math.abs(mean - ref.mean) > 0.1 * ref.mean) off.push(`${feature} mean ${mean} vs ${ref.mean}`);
      if (Math.abs(std - ref.std) > 0.1 * ref.std) off.push(`${feature} std ${std} vs ${ref.std}`);
    }
    expect(off).toEqual([]);
  });

  it('has about 31% rows with no detection; other score rows sum to 1', () => {
    const none = sample.filter((r) => tr(r).every((x) => x === 0)).length / sample.length;
    expect(none).toBeGreaterThan(0.26);
    expect(none).toBeLessThan(0.36);
    const bad = sample.filter((r) => {
      const s = sum(tr(r));
      return (s !== 0 && Math.abs(s - 1) > 1e-9) || Math.abs(sum(sk(r)) - 1) > 1e-9;
    });
    expect(bad).toEqual([]);
  });

  it('uses only the original vocabularies and target ids, and passes the fusion schema', () => {
    const ids = new Set(TARGET_IDS);
    const seen = new Set<number>();
    const index = headerIndex([...RAW_COLUMNS], 'fusion.csv');
    const problems: unknown[] = [];
    sample.forEach((r, i) => {
      const target = Number(r.target);
      if (!ids.has(target)) problems.push(`line ${i + 2}: target ${target}`);
      seen.add(target);
      const encoded = encodeRow(RAW_COLUMNS.map((c) => r[c]!), index, new Map(), { file: 'fusion.csv', line: i + 2 });
      if (!('features' in encoded)) problems.push(encoded);
    });
    expect(problems).toEqual([]);
    expect(seen.size).toBeGreaterThan(70);
  });

  it('has a target that a model can learn well above the majority baseline, but not trivially', () => {
    const data = rows(12_000, 9);
    const key = (r: Row): string => {
      const t = tr(r);
      const dominant = sum(t) === 0 ? -1 : t.indexOf(Math.max(...t));
      return [dominant, Math.floor(Number(r.age) / 10), r.skin_type, r.stress_level].join('|');
    };
    const train = data.slice(0, 10_000);
    const test = data.slice(10_000);
    const counts = new Map<string, Map<string, number>>();
    const overall = new Map<string, number>();
    for (const r of train) {
      const k = key(r);
      if (!counts.has(k)) counts.set(k, new Map());
      counts.get(k)!.set(r.target!, (counts.get(k)!.get(r.target!) ?? 0) + 1);
      overall.set(r.target!, (overall.get(r.target!) ?? 0) + 1);
    }
    const mode = (m: Map<string, number>): string => [...m].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))[0]![0];
    const majority = mode(overall);
    const accuracy = test.filter((r) => mode(counts.get(key(r)) ?? overall) === r.target).length / test.length;
    const baseline = test.filter((r) => r.target === majority).length / test.length;
    expect(baseline).toBeLessThan(0.1);
    expect(accuracy).toBeGreaterThan(4 * baseline);
    expect(accuracy).toBeLessThan(0.95);
  });

  it('fusion-shift moves the named feature by about k reference stds and leaves the others', () => {
    const shifted = rows(5000, 42, { age: 1, smoker_Yes: 0.5 });
    const age = (moments(shifted, 'age').mean - moments(sample, 'age').mean) / REFERENCE_MOMENTS.age!.std;
    expect(age).toBeGreaterThan(0.9);
    expect(age).toBeLessThan(1.1);
    const smoker = moments(shifted, 'smoker_Yes').mean - moments(sample, 'smoker_Yes').mean;
    expect(smoker / REFERENCE_MOMENTS.smoker_Yes!.std).toBeCloseTo(0.5, 1);
    for (const feature of ['sleep_hours', 'tr_p5', 'gender_Male', 'skin_type_Dry']) {
      expect(Math.abs(moments(shifted, feature).mean - moments(sample, feature).mean)).toBeLessThan(0.1 * REFERENCE_MOMENTS[feature]!.std);
    }
    const down = rows(3000, 42, { sleep_hours: -2 });
    const sleep = (moments(down, 'sleep_hours').mean - REFERENCE_MOMENTS.sleep_hours!.mean) / REFERENCE_MOMENTS.sleep_hours!.std;
    expect(sleep).toBeCloseTo(-2, 0);
  });

  it('streams the CSV: header, the asked number of rows, same seed same bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'synth-fusion-'));
    try {
      let ticks = 0;
      const a = await writeFusionCsv(join(dir, 'a.csv'), 10_000, 3, {}, { onRows: (n) => (ticks += n) });
      await writeFusionCsv(join(dir, 'b.csv'), 10_000, 3, {}, {});
      await writeFusionCsv(join(dir, 'c.csv'), 10_000, 4, {}, {});
      const [textA, textB, textC] = await Promise.all(['a', 'b', 'c'].map((n) => readFile(join(dir, `${n}.csv`), 'utf8')));
      const lines = textA!.trimEnd().split('\n');
      expect(lines[0]).toBe(RAW_COLUMNS.join(','));
      expect(lines).toHaveLength(10_001);
      expect(ticks).toBe(10_000);
      expect(a.rows).toBe(10_000);
      expect(a.noDetection).toBe(lines.slice(1).filter((l) => l.split(',').slice(8, 18).every((x) => x === '0')).length);
      expect(textB).toBe(textA);
      expect(textC).not.toBe(textA);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('stops when aborted', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'synth-fusion-'));
    try {
      const controller = new AbortController();
      controller.abort();
      await expect(writeFusionCsv(join(dir, 'x.csv'), 100_000, 1, {}, { signal: controller.signal })).rejects.toThrow(/interrupted/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
