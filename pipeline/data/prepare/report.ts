// The validation report of prepare-data: quarantined items with their reason, notes (conversions
// applied), split counts per stratum, the leakage check and class balance — as JSON and markdown.

import { join } from 'node:path';
import { DataError } from '../../core/errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../../core/fs.ts';
import { LineWriter } from '../fusion/csv.ts';
import type { SplitName } from './split.ts';

export interface QuarantineEntry {
  /** Image or table path relative to the dataset root. */
  file: string;
  /** CSV line (tabular) . */
  line?: number;
  reason: string;
  detail: string;
  field?: string;
}

export interface ValidationReport {
  version: 1;
  task: string;
  dataset: string;
  total: number;
  kept: number;
  quarantined: number;
  badFraction: number;
  maxBadFraction: number;
  quarantinedByReason: Record<string, number>;
  /** Conversions applied to kept items (grayscale, cmyk, 16-bit, alpha, exif-orientation). */
  notes: Record<string, number>;
  splits: Record<SplitName, number>;
  /** Realised split fractions per stratum (class). */
  strata: Record<string, Record<SplitName, number>>;
  /** `links`: matches that joined two groups (pairs inside a group are not enumerated: a group of n has up to n²/2). */
  nearDuplicates: { distance: number; links: number; groups: number; itemsInGroups: number; largestGroup: number; crossSplitPairs: number };
  classBalance: { counts: Record<string, number>; imbalanceRatio: number | null; warnings: string[] };
  warnings: string[];
  /** The first quarantined items (all of them are in quarantine.jsonl). */
  quarantineSample: QuarantineEntry[];
}

const SAMPLE = 50;

/** Collects quarantined items, streaming them to quarantine.jsonl. */
export class Quarantine {
  readonly byReason: Record<string, number> = {};
  readonly sample: QuarantineEntry[] = [];
  count = 0;
  private constructor(private readonly writer: LineWriter) {}
  static async open(outDir: string): Promise<Quarantine> {
    return new Quarantine(await LineWriter.open(join(outDir, 'quarantine.jsonl')));
  }
  async add(entry: QuarantineEntry): Promise<void> {
    this.count++;
    this.byReason[entry.reason] = (this.byReason[entry.reason] ?? 0) + 1;
    if (this.sample.length < SAMPLE) this.sample.push(entry);
    await this.writer.write(JSON.stringify(entry));
  }
  close(): Promise<void> {
    return this.writer.close();
  }
}

export function imbalance(counts: Record<string, number>, classNames: readonly string[], maxRatio: number): ValidationReport['classBalance'] {
  const warnings: string[] = [];
  const values = classNames.map((c) => counts[c] ?? 0);
  const missing = classNames.filter((c) => !(counts[c] ?? 0));
  if (missing.length) warnings.push(`class(es) with no examples: ${missing.join(', ')}`);
  const present = values.filter((v) => v > 0);
  const ratio = present.length ? Math.max(...present) / Math.min(...present) : null;
  if (ratio !== null && ratio > maxRatio) {
    warnings.push(`class imbalance: largest/smallest class = ${ratio.toFixed(1)} (> ${maxRatio})`);
  }
  return { counts: Object.fromEntries(classNames.map((c) => [c, counts[c] ?? 0])), imbalanceRatio: ratio, warnings };
}

export async function writeValidationReport(outDir: string, report: ValidationReport): Promise<void> {
  await writeJsonAtomic(join(outDir, 'validation.json'), report);
  await writeFileAtomic(join(outDir, 'validation.md'), validationMarkdown(report));
}

export function validationMarkdown(r: ValidationReport): string {
  const lines = [
    `## Validation: ${r.dataset} (${r.task})`,
    '',
    `${r.total} items, ${r.kept} kept, **${r.quarantined} quarantined** (${(100 * r.badFraction).toFixed(2)}%, limit ${(100 * r.maxBadFraction).toFixed(2)}%).`,
    '',
    `| split | items |`,
    `|---|---|`,
    ...(['train', 'val', 'test'] as const).map((s) => `| ${s} | ${r.splits[s]} |`),
    '',
  ];
  if (Object.keys(r.quarantinedByReason).length) {
    lines.push('| quarantine reason | items |', '|---|---|', ...Object.entries(r.quarantinedByReason).map(([k, v]) => `| ${k} | ${v} |`), '');
  }
  if (Object.keys(r.notes).length) {
    lines.push('| normalised on the way in | items |', '|---|---|', ...Object.entries(r.notes).map(([k, v]) => `| ${k} | ${v} |`), '');
  }
  const nd = r.nearDuplicates;
  lines.push(
    `Near duplicates (256-bit pHash, Hamming ≤ ${nd.distance}): ${nd.groups} groups holding ${nd.itemsInGroups} items (largest ${nd.largestGroup}); ` +
      `near-duplicate pairs across splits: **${nd.crossSplitPairs}**${nd.crossSplitPairs === 0 ? ' — no leakage' : ''}.`,
    '',
  );
  const strata = Object.entries(r.strata);
  if (strata.length) {
    lines.push('| stratum | train | val | test |', '|---|---|---|---|');
    for (const [k, v] of strata) lines.push(`| ${k} | ${v.train} | ${v.val} | ${v.test} |`);
    lines.push('');
  }
  for (const w of [...r.classBalance.warnings, ...r.warnings]) lines.push(`- ⚠️ ${w}`);
  if (r.quarantineSample.length) {
    lines.push('', '<details><summary>Quarantined items (first ' + r.quarantineSample.length + '; all in quarantine.jsonl)</summary>', '');
    lines.push('| file | reason | detail |', '|---|---|---|');
    for (const q of r.quarantineSample) lines.push(`| \`${q.file}${q.line ? `:${q.line}` : ''}\` | ${q.reason} | ${q.detail.replace(/\|/g, '\\|')} |`);
    lines.push('', '</details>');
  }
  return lines.join('\n') + '\n';
}

/** Fail when too much is bad, summarising counts by reason. */
export function checkBadFraction(r: ValidationReport): void {
  if (r.total > 0 && r.badFraction > r.maxBadFraction) {
    const reasons = Object.entries(r.quarantinedByReason)
      .sort((a, b) => b[1] - a[1])
      .map(([k, v]) => `${k}: ${v}`)
      .join(', ');
    throw new DataError(
      `${r.quarantined} of ${r.total} items are bad (${(100 * r.badFraction).toFixed(1)}% > max-bad-fraction ${(100 * r.maxBadFraction).toFixed(1)}%): ${reasons}`,
      { file: r.dataset, field: 'max-bad-fraction', hint: 'see quarantine.jsonl / validation.md for each item; fix the data or raise max-bad-fraction' },
    );
  }
}
