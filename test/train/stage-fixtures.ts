// A small raw fusion table with a learnable rule, and its prepared form (via the real prepare-data code).

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { prepareTabular } from '../../pipeline/data/prepare/tabular.ts';
import { RAW_COLUMNS } from '../../pipeline/data/fusion/schema.ts';
import { RecordingLogger } from '../support/logger.ts';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/**
 * Raw fusion CSV rows (header first). Target: 17 when tr_p0 > 0.6, else 42 for oily skin, else 3,
 * with 5% label noise, so a model beats the majority class by a wide margin.
 */
export function fusionRows(n: number, seed = 1, opts: { withTarget?: boolean } = {}): string[] {
  const rnd = lcg(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const withTarget = opts.withTarget ?? true;
  const header = withTarget ? [...RAW_COLUMNS] : RAW_COLUMNS.filter((c) => c !== 'target');
  const lines = [header.join(',')];
  for (let i = 0; i < n; i++) {
    const tr = Array.from({ length: 10 }, () => Number(rnd().toFixed(4)));
    const a = rnd();
    const b = rnd() * (1 - a);
    const sk = [a, b, 1 - a - b].map((v) => Number(v.toFixed(4)));
    const skin = pick(['Combination', 'Dry', 'Normal', 'Oily', 'Sensitive']);
    let target = tr[0]! > 0.6 ? 17 : skin === 'Oily' ? 42 : 3;
    if (rnd() < 0.05) target = pick([3, 17, 42]);
    const row: Record<string, string | number> = {
      age: 18 + Math.floor(rnd() * 60),
      gender: pick(['Female', 'Male']),
      sleep_hours: Number((4 + rnd() * 5).toFixed(1)),
      stress_level: 1 + Math.floor(rnd() * 10),
      diet_quality: pick(['Average', 'Excellent', 'Good', 'Poor']),
      smoker: pick(['No', 'Yes']),
      alcohol_consumption: pick(['High', 'Low', 'Moderate']),
      skin_type: skin,
      ...Object.fromEntries(tr.map((v, k) => [`tr_p${k}`, v])),
      ...Object.fromEntries(sk.map((v, k) => [`sk_p${k}`, v])),
      target,
    };
    lines.push(header.map((c) => row[c]).join(','));
  }
  return lines;
}

/** Prepare `rows` (a raw fusion CSV) into `outDir` with the real prepare-data tabular code. */
export async function prepareFusion(dir: string, rows: string[], outDir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  const input = join(dir, 'fusion.csv');
  await writeFile(input, rows.join('\n') + '\n');
  await prepareTabular({
    input,
    display: 'fusion.csv',
    outDir,
    target: 'target',
    categoryMap: new Map(),
    fractions: { train: 0.7, val: 0.15 },
    seed: 42,
    maxBadFraction: 0.05,
    logger: new RecordingLogger(),
  });
}
