// prepare-data for the fusion table: stream the raw rows, quarantine bad ones (with their line),
// encode the 27 features, split by a hash of the row's content and profile the training split.

import { join } from 'node:path';
import { DataError } from '../../core/errors.ts';
import { sha256, writeJsonAtomic } from '../../core/fs.ts';
import type { Logger } from '../../core/logger.ts';
import { csvCell, LineWriter, readCsv } from '../fusion/csv.ts';
import {
  encodeRow,
  FEATURES,
  headerIndex,
  isIssue,
  NUMERIC_RANGES,
  schemaDocument,
  TARGET_COLUMN,
  type CategoryMap,
} from '../fusion/schema.ts';
import { featureEdges, ProfileBuilder, type ReferenceProfile } from '../profile/profile.ts';
import { checkBadFraction, Quarantine, writeValidationReport, type ValidationReport } from './report.ts';
import { splitOf, SPLITS, type SplitFractions, type SplitName } from './split.ts';
import type { PrepareResult } from './images.ts';

export interface PrepareTabularOptions {
  /** The CSV (absolute) and its path as shown in messages. */
  input: string;
  display: string;
  outDir: string;
  /** Name of the target column in the CSV. */
  target: string;
  categoryMap: CategoryMap;
  fractions: SplitFractions;
  seed: number;
  maxBadFraction: number;
  logger: Logger;
  signal?: AbortSignal;
}

function num(x: number): string {
  return String(x);
}

export async function prepareTabular(o: PrepareTabularOptions): Promise<PrepareResult> {
  const quarantine = await Quarantine.open(o.outDir);
  const writers = {} as Record<SplitName, LineWriter>;
  for (const s of SPLITS) writers[s] = await LineWriter.open(join(o.outDir, `${s}.csv`));
  const header = [...FEATURES, TARGET_COLUMN].map(csvCell).join(',');
  for (const s of SPLITS) await writers[s].write(header);
  const counts: Record<SplitName, number> = { train: 0, val: 0, test: 0 };
  const strata: Record<string, Record<SplitName, number>> = {};
  const profile = new ProfileBuilder('tabular', 'train');
  // One-hot columns are the features without a numeric range.
  const binary = new Set(FEATURES.filter((f) => !(f in NUMERIC_RANGES)));
  let index: Map<string, number> | undefined;
  let total = 0;
  const progress = o.logger.progress('validate rows', undefined, 'rows');
  try {
    for await (const { line, cells } of readCsv(o.input, o.signal)) {
      if (!index) {
        const renamed = cells.map((c) => (c.trim() === o.target ? TARGET_COLUMN : c));
        if (!renamed.some((c) => c.trim() === TARGET_COLUMN)) {
          throw new DataError(`target column \`${o.target}\` not in the header`, { file: o.display, line: 1, field: 'target' });
        }
        index = headerIndex(renamed, o.display);
        continue;
      }
      total++;
      progress.tick();
      const row = encodeRow(cells, index, o.categoryMap, { file: o.display, line });
      if (isIssue(row)) {
        await quarantine.add({ file: o.display, line, reason: row.reason, detail: row.detail, ...(row.field ? { field: row.field } : {}) });
        continue;
      }
      const encoded = [...Array.from(row.features, num), String(row.target)].join(',');
      // Content hash: identical rows land in the same split (no leakage through duplicates).
      const s = splitOf(o.seed, sha256(encoded), o.fractions);
      counts[s]++;
      const stratum = String(row.target);
      strata[stratum] ??= { train: 0, val: 0, test: 0 };
      strata[stratum][s]++;
      await writers[s].write(encoded);
      if (s === 'train') {
        profile.item();
        FEATURES.forEach((f, k) => profile.numeric(f, featureEdges(NUMERIC_RANGES[f], binary.has(f)), row.features[k]!));
        for (const [c, v] of Object.entries(row.categories)) profile.category(c, v);
        profile.label(stratum);
      }
    }
  } finally {
    progress.done();
    for (const s of SPLITS) await writers[s].close();
    await quarantine.close();
  }
  if (!index) throw new DataError('table is empty (no header)', { file: o.display, line: 1 });
  const report: ValidationReport = {
    version: 1,
    task: 'tabular',
    dataset: o.display,
    total,
    kept: total - quarantine.count,
    quarantined: quarantine.count,
    badFraction: total ? quarantine.count / total : 0,
    maxBadFraction: o.maxBadFraction,
    quarantinedByReason: quarantine.byReason,
    notes: {},
    splits: counts,
    strata: Object.fromEntries(Object.entries(strata).sort((a, b) => Number(a[0]) - Number(b[0]))),
    nearDuplicates: { distance: 0, links: 0, groups: 0, itemsInGroups: 0, largestGroup: 0, crossSplitPairs: 0 },
    classBalance: { counts: Object.fromEntries(Object.entries(strata).map(([k, v]) => [k, v.train + v.val + v.test])), imbalanceRatio: null, warnings: [] },
    warnings: [],
    quarantineSample: quarantine.sample,
  };
  await writeValidationReport(o.outDir, report);
  checkBadFraction(report);
  const finished = profile.finish();
  await writeJsonAtomic(join(o.outDir, 'reference-profile.json'), finished);
  await writeJsonAtomic(join(o.outDir, 'schema.json'), schemaDocument(o.categoryMap));
  await writeJsonAtomic(join(o.outDir, 'dataset.json'), {
    version: 1,
    task: 'tabular',
    source: o.display,
    features: FEATURES,
    target: TARGET_COLUMN,
    seed: o.seed,
    fractions: { ...o.fractions, test: 1 - o.fractions.train - o.fractions.val },
    counts,
    quarantined: quarantine.count,
  });
  return { counts, quarantined: quarantine.count, total, report, profile: finished as ReferenceProfile };
}
