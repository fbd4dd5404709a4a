// Builds the fusion table from a raw CSV: schema check, category mapping, one-hot encoding into
// the 27 features, streamed row by row so 10⁶ rows take constant memory.

import { join } from 'node:path';
import { DataError } from '../../core/errors.ts';
import { writeJsonAtomic } from '../../core/fs.ts';
import { csvCell, LineWriter, readCsv } from './csv.ts';
import {
  encodeRow,
  FEATURES,
  headerIndex,
  isIssue,
  RAW_COLUMNS,
  schemaDocument,
  TARGET_COLUMN,
  type CategoryMap,
} from './schema.ts';

export interface BuildFusionOptions {
  /** Raw CSV to read. */
  input: string;
  /** Path shown in messages (relative to the repository root). */
  displayPath: string;
  outDir: string;
  categoryMap: CategoryMap;
  signal?: AbortSignal;
  onRow?: () => void;
}

export interface BuildFusionResult {
  rows: number;
  encoded: number;
  /** Rows left out of features.csv, by reason (prepare-data quarantines them with their line). */
  rejected: Record<string, number>;
  mapped: Record<string, number>;
}

/** Format a feature value compactly and exactly (one-hots as 0/1). */
function num(x: number): string {
  return Number.isInteger(x) ? String(x) : String(x);
}

/**
 * Write `fusion.csv` (the raw rows in schema column order, categories mapped to their canonical
 * level, one line per source line so line numbers keep pointing at the source), `features.csv`
 * (27 features + target, valid rows only) and `schema.json`.
 */
export async function buildFusionTable(opts: BuildFusionOptions): Promise<BuildFusionResult> {
  const raw = await LineWriter.open(join(opts.outDir, 'fusion.csv'));
  const encodedOut = await LineWriter.open(join(opts.outDir, 'features.csv'));
  const result: BuildFusionResult = { rows: 0, encoded: 0, rejected: {}, mapped: {} };
  let index: Map<string, number> | undefined;
  try {
    for await (const { line, cells } of readCsv(opts.input, opts.signal)) {
      if (!index) {
        index = headerIndex(cells, opts.displayPath);
        await raw.write(RAW_COLUMNS.join(','));
        await encodedOut.write([...FEATURES, TARGET_COLUMN].join(','));
        continue;
      }
      result.rows++;
      opts.onRow?.();
      const row = encodeRow(cells, index, opts.categoryMap, { file: opts.displayPath, line });
      if (isIssue(row)) {
        result.rejected[row.reason] = (result.rejected[row.reason] ?? 0) + 1;
        // Keep the bad row verbatim so prepare-data can quarantine it with its line number.
        await raw.write(cells.map(csvCell).join(','));
        continue;
      }
      const out = RAW_COLUMNS.map((c) => {
        const cat = row.categories[c];
        if (cat !== undefined) {
          const original = cells[index!.get(c)!]!.trim();
          if (original !== cat) result.mapped[`${c}.${original}`] = (result.mapped[`${c}.${original}`] ?? 0) + 1;
          return csvCell(cat);
        }
        return csvCell(cells[index!.get(c)!]!.trim());
      });
      await raw.write(out.join(','));
      await encodedOut.write([...Array.from(row.features, num), String(row.target)].join(','));
      result.encoded++;
    }
  } finally {
    await raw.close();
    await encodedOut.close();
  }
  if (!index) throw new DataError('fusion table is empty (no header)', { file: opts.displayPath, line: 1 });
  await writeJsonAtomic(join(opts.outDir, 'schema.json'), {
    ...schemaDocument(opts.categoryMap),
    rows: result.rows,
    encoded: result.encoded,
    rejected: result.rejected,
    mapped: result.mapped,
  });
  return result;
}
