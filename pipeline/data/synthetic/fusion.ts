// The synthetic fusion table: raw rows whose one-hot features reproduce the original table's
// means and standard deviations, with a target produced by a hidden rule of the features plus
// noise. Rows are generated and written in chunks, so 10⁶ rows take constant memory.

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { InterruptedError } from '../../core/errors.ts';
import { RAW_COLUMNS, TARGET_IDS, VOCABULARIES } from '../fusion/schema.ts';
import { hashInts, pickWith, Rng } from './rng.ts';

/** Means and standard deviations of the original's 27 features (reference/original-system.md). */
export const REFERENCE_MOMENTS: Readonly<Record<string, { mean: number; std: number }>> = {
  age: { mean: 50.9798, std: 28.0157 },
  sleep_hours: { mean: 7.05209, std: 1.07591 },
  stress_level: { mean: 6.06506, std: 1.63666 },
  tr_p0: { mean: 0.03612, std: 0.13485 },
  tr_p1: { mean: 0.0, std: 0.00032 },
  tr_p2: { mean: 0.11759, std: 0.26666 },
  tr_p3: { mean: 0.14717, std: 0.27644 },
  tr_p4: { mean: 0.01014, std: 0.07233 },
  tr_p5: { mean: 0.25186, std: 0.36183 },
  tr_p6: { mean: 0.00864, std: 0.06647 },
  tr_p7: { mean: 0.00566, std: 0.04554 },
  tr_p8: { mean: 0.00001, std: 0.00106 },
  tr_p9: { mean: 0.10969, std: 0.24273 },
  sk_p0: { mean: 0.20879, std: 0.27904 },
  sk_p1: { mean: 0.61593, std: 0.36666 },
  sk_p2: { mean: 0.17528, std: 0.25591 },
  gender_Male: { mean: 0.49612, std: 0.49998 },
  skin_type_Dry: { mean: 0.30004, std: 0.45828 },
  skin_type_Normal: { mean: 0.2064, std: 0.40472 },
  skin_type_Oily: { mean: 0.1355, std: 0.34225 },
  skin_type_Sensitive: { mean: 0.23143, std: 0.42174 },
  smoker_Yes: { mean: 0.38817, std: 0.48733 },
  alcohol_consumption_Low: { mean: 0.40178, std: 0.49026 },
  alcohol_consumption_Moderate: { mean: 0.30344, std: 0.45974 },
  diet_quality_Excellent: { mean: 0.2124, std: 0.40901 },
  diet_quality_Good: { mean: 0.31012, std: 0.46254 },
  diet_quality_Poor: { mean: 0.21586, std: 0.41142 },
};

const ref = (name: string): { mean: number; std: number } => REFERENCE_MOMENTS[name]!;

/**
 * A distribution on the simplex (or the all-zero vector) with given per-component means and
 * standard deviations: all zeros with probability `zero`, the one-hot vector of component c
 * with probability `oneHot[c]`, else Dirichlet(`alpha`) with probability `dirichlet`.
 * With Dirichlet concentration γ and mean μ, E[x_c] = α_c + βμ_c and
 * E[x_c] − E[x_c²] = βγμ_c(1 − μ_c)/(γ + 1): solving for β with Σμ = 1 matches both moments.
 */
export interface SimplexMixture {
  zero: number;
  oneHot: number[];
  dirichlet: number;
  alpha: number[];
}

export function solveSimplexMixture(means: readonly number[], stds: readonly number[], gamma: number): SimplexMixture {
  const d = means.map((m, i) => Math.max(0, m - (stds[i]! ** 2 + m * m)));
  const mu = (beta: number): number[] =>
    d.map((x) => {
      const k = (x * (gamma + 1)) / (beta * gamma);
      return k > 0.25 ? Number.NaN : (1 - Math.sqrt(1 - 4 * k)) / 2;
    });
  const total = (beta: number): number => mu(beta).reduce((a, b) => a + b, 0);
  let lo = 1e-9;
  let hi = 1;
  for (let i = 0; i < 200; i++) {
    const mid = (lo + hi) / 2;
    const s = total(mid);
    if (Number.isNaN(s) || s > 1) lo = mid;
    else hi = mid;
  }
  const m = mu(hi);
  const sum = means.reduce((a, b) => a + b, 0);
  return {
    zero: Math.max(0, 1 - sum),
    oneHot: means.map((x, i) => Math.max(0, x - hi * m[i]!)),
    dirichlet: hi,
    alpha: m.map((x) => x * gamma),
  };
}

const TR_MIXTURE = solveSimplexMixture(
  Array.from({ length: 10 }, (_, i) => ref(`tr_p${i}`).mean),
  Array.from({ length: 10 }, (_, i) => ref(`tr_p${i}`).std),
  4,
);
const SK_MIXTURE = solveSimplexMixture(
  Array.from({ length: 3 }, (_, i) => ref(`sk_p${i}`).mean),
  Array.from({ length: 3 }, (_, i) => ref(`sk_p${i}`).std),
  2,
);

/**
 * Component orders for the coupled draws: detector scores follow age (acne-like classes for the
 * young, wrinkles and eyebags for the old), the skin-type model follows the declared skin type.
 * A shared uniform keeps each marginal exactly as solved while inducing the correlation.
 */
const TR_ORDER: readonly (number | 'zero' | 'dirichlet')[] = [0, 8, 1, 6, 7, 'zero', 'dirichlet', 4, 3, 2, 5, 9];
const SKIN_TYPE_ORDER = ['Dry', 'Sensitive', 'Combination', 'Normal', 'Oily'] as const;
const SK_ORDER: readonly (number | 'dirichlet')[] = [0, 'dirichlet', 1, 2];
const AGE_COUPLING = 0.5;
const SKIN_COUPLING = 0.7;

/** Age is uniform on whole years 3..99: mean 51, std 28.0, as the original's. */
const AGE_MIN = 3;
const AGE_SPAN = 97;
/** Latent normal whose rounding to 1..10 gives the reference stress mean and std. */
const STRESS_LATENT = { mean: 6.06833, std: 1.62231 };

/** Probabilities of each level of a category, from the reference one-hot means. */
function levelProbabilities(column: string): number[] {
  const levels = VOCABULARIES[column]!;
  const rest = levels.slice(1).map((l) => ref(`${column}_${l}`).mean);
  return [1 - rest.reduce((a, b) => a + b, 0), ...rest];
}

/** Move level `level`'s probability by `k` reference stds; the other levels share the rest. */
function shiftLevel(probs: number[], level: number, k: number, std: number): number[] {
  const p = probs[level]!;
  const target = Math.min(1, Math.max(0, p + k * std));
  const scale = p < 1 ? (1 - target) / (1 - p) : 0;
  return probs.map((q, i) => (i === level ? target : q * scale));
}

export interface FusionGenerator {
  /** The next row's cells, in RAW_COLUMNS order. */
  next(): { cells: (string | number)[]; noDetection: boolean; target: number };
}

/** Hidden-rule noise: share of targets drawn uniformly, share with a jittered age band. */
const TARGET_NOISE = 0.15;
const AGE_JITTER = 0.1;

/**
 * The hidden rule: the detector's dominant class (or none), an age band, the declared skin type
 * and high stress pick a cell; a fixed hash maps each cell to one of the 79 target ids.
 */
export function hiddenTarget(dominant: number, age: number, skinType: number, stress: number): number {
  const band = age < 30 ? 0 : age < 60 ? 1 : 2;
  const cell = (((dominant + 1) * 3 + band) * 5 + skinType) * 2 + (stress >= 8 ? 1 : 0);
  return TARGET_IDS[hashInts(0x5eed, cell) % TARGET_IDS.length]!;
}

export function fusionGenerator(seed: number, shift: Readonly<Record<string, number>>): FusionGenerator {
  const rng = new Rng(seed, 0xf0510);
  const probs: Record<string, number[]> = {};
  for (const column of Object.keys(VOCABULARIES)) {
    let p = levelProbabilities(column);
    const levels = VOCABULARIES[column]!;
    for (const [feature, k] of Object.entries(shift).sort(([a], [b]) => (a < b ? -1 : 1))) {
      const level = levels.findIndex((l, i) => i > 0 && `${column}_${l}` === feature);
      if (level > 0) p = shiftLevel(p, level, k, ref(feature).std);
    }
    probs[column] = p;
  }
  const skinLevels = VOCABULARIES.skin_type!;
  const skinWeights = SKIN_TYPE_ORDER.map((l) => probs.skin_type![skinLevels.indexOf(l)]!);
  const trWeights = TR_ORDER.map((c) => (c === 'zero' ? TR_MIXTURE.zero : c === 'dirichlet' ? TR_MIXTURE.dirichlet : TR_MIXTURE.oneHot[c]!));
  const skWeights = SK_ORDER.map((c) => (c === 'dirichlet' ? SK_MIXTURE.dirichlet : SK_MIXTURE.oneHot[c]!));
  const ageShift = (shift.age ?? 0) * ref('age').std;
  const sleepShift = (shift.sleep_hours ?? 0) * ref('sleep_hours').std;
  const stressShift = (shift.stress_level ?? 0) * ref('stress_level').std;
  const level = (column: string): string => VOCABULARIES[column]![rng.pick(probs[column]!)]!;

  const simplex = (component: number | 'zero' | 'dirichlet', mixture: SimplexMixture, n: number): number[] => {
    const x = new Array<number>(n).fill(0);
    if (component === 'zero') return x;
    if (component !== 'dirichlet') {
      x[component] = 1;
      return x;
    }
    let sum = 0;
    while (!(sum > 0)) {
      sum = 0;
      for (let i = 0; i < n; i++) sum += x[i] = rng.gamma(mixture.alpha[i]!);
    }
    return x.map((v) => v / sum);
  };

  return {
    next() {
      const uAge = rng.float();
      const age = clamp(Math.round(AGE_MIN + Math.floor(uAge * AGE_SPAN) + ageShift), 0, 120);
      const gender = level('gender');
      const sleep = clamp(Math.round((ref('sleep_hours').mean + ref('sleep_hours').std * rng.normal() + sleepShift) * 10) / 10, 0, 24);
      const stress = clamp(Math.round(STRESS_LATENT.mean + STRESS_LATENT.std * rng.normal() + stressShift), 1, 10);
      const diet = level('diet_quality');
      const smoker = level('smoker');
      const alcohol = level('alcohol_consumption');
      const uSkin = rng.float();
      const skinType = SKIN_TYPE_ORDER[pickWith(uSkin, skinWeights)]!;

      const uTr = rng.chance(AGE_COUPLING) ? uAge : rng.float();
      const tr = micro(simplex(TR_ORDER[pickWith(uTr, trWeights)]!, TR_MIXTURE, 10));
      const uSk = rng.chance(SKIN_COUPLING) ? uSkin : rng.float();
      const skComponent = SK_ORDER[pickWith(uSk, skWeights)]!;
      const sk = micro(simplex(skComponent, SK_MIXTURE, 3));

      let dominant = -1;
      for (let c = 0; c < 10; c++) if (tr[c]! > 0 && (dominant < 0 || tr[c]! > tr[dominant]!)) dominant = c;
      const skinIndex = skinLevels.indexOf(skinType);
      const ruleAge = rng.chance(AGE_JITTER) ? age + 6 * rng.normal() : age;
      const target = rng.chance(TARGET_NOISE)
        ? TARGET_IDS[rng.int(TARGET_IDS.length)]!
        : hiddenTarget(dominant, ruleAge, skinIndex, stress);

      const cells: (string | number)[] = [
        age,
        gender,
        sleep.toFixed(1),
        stress,
        diet,
        smoker,
        alcohol,
        skinType,
        ...tr.map(formatMicro),
        ...sk.map(formatMicro),
        target,
      ];
      return { cells, noDetection: dominant < 0, target };
    },
  };
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

/**
 * Scores in millionths, rounded so that a non-zero vector sums to exactly 10⁶: the CSV's decimal
 * values then sum to exactly 1.
 */
function micro(x: readonly number[]): number[] {
  const out = x.map((v) => Math.round(v * 1e6));
  const total = out.reduce((a, b) => a + b, 0);
  if (total === 0) return out;
  let largest = 0;
  for (let i = 1; i < out.length; i++) if (out[i]! > out[largest]!) largest = i;
  out[largest]! += 1e6 - total;
  return out;
}

function formatMicro(n: number): string {
  if (n === 0) return '0';
  if (n === 1e6) return '1';
  return (n / 1e6).toFixed(6).replace(/0+$/, '');
}

export interface FusionSummary {
  rows: number;
  noDetection: number;
  noDetectionFraction: number;
}

const CHUNK = 4096;

/** Stream `rows` rows of the synthetic fusion table to `path` (header first). */
export async function writeFusionCsv(
  path: string,
  rows: number,
  seed: number,
  shift: Readonly<Record<string, number>>,
  io: { signal?: AbortSignal; onRows?: (n: number) => void },
): Promise<FusionSummary> {
  const out = createWriteStream(path, { encoding: 'utf8' });
  const failed = new Promise<never>((_, reject) => out.once('error', reject));
  failed.catch(() => undefined);
  const generator = fusionGenerator(seed, shift);
  let noDetection = 0;
  try {
    let pending = RAW_COLUMNS.join(',') + '\n';
    for (let done = 0; done < rows; ) {
      if (io.signal?.aborted) throw new InterruptedError('synthetic dataset generation interrupted');
      const n = Math.min(CHUNK, rows - done);
      const lines: string[] = [];
      for (let i = 0; i < n; i++) {
        const row = generator.next();
        if (row.noDetection) noDetection++;
        lines.push(row.cells.join(','));
      }
      pending += lines.join('\n') + '\n';
      done += n;
      if (!out.write(pending)) await Promise.race([once(out, 'drain'), failed]);
      pending = '';
      io.onRows?.(n);
    }
    if (pending) out.write(pending);
    out.end();
    await Promise.race([once(out, 'finish'), failed]);
  } catch (error) {
    out.destroy();
    throw error;
  }
  return { rows, noDetection, noDetectionFraction: rows ? noDetection / rows : 0 };
}
