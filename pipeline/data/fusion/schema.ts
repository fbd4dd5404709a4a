// The fusion table's schema: raw columns, category vocabularies and the one-hot encoding into the
// 27 features of the original context-correction model (first level of each category dropped).

import { DataError } from '../../core/errors.ts';
import { nearest } from '../../core/suggest.ts';

export const NUMERIC_COLUMNS = [
  'age',
  'sleep_hours',
  'stress_level',
  'tr_p0', 'tr_p1', 'tr_p2', 'tr_p3', 'tr_p4', 'tr_p5', 'tr_p6', 'tr_p7', 'tr_p8', 'tr_p9',
  'sk_p0', 'sk_p1', 'sk_p2',
] as const;

/**
 * Category vocabularies in encoding order. The first level of each is the dropped reference
 * level, exactly as the original's `pd.get_dummies(drop_first=True)` did (levels sorted).
 */
export const VOCABULARIES: Readonly<Record<string, readonly string[]>> = {
  gender: ['Female', 'Male'],
  skin_type: ['Combination', 'Dry', 'Normal', 'Oily', 'Sensitive'],
  smoker: ['No', 'Yes'],
  alcohol_consumption: ['High', 'Low', 'Moderate'],
  diet_quality: ['Average', 'Excellent', 'Good', 'Poor'],
};

/** One-hot blocks in the order the original's feature vector lists them. */
export const CATEGORY_ORDER = ['gender', 'skin_type', 'smoker', 'alcohol_consumption', 'diet_quality'] as const;

/** Raw columns of fusion.csv, in the order the synthetic generator writes them. */
export const RAW_COLUMNS = [
  'age', 'gender', 'sleep_hours', 'stress_level', 'diet_quality', 'smoker', 'alcohol_consumption', 'skin_type',
  'tr_p0', 'tr_p1', 'tr_p2', 'tr_p3', 'tr_p4', 'tr_p5', 'tr_p6', 'tr_p7', 'tr_p8', 'tr_p9',
  'sk_p0', 'sk_p1', 'sk_p2',
  'target',
] as const;

export const TARGET_COLUMN = 'target';

/** The 27 encoded features, in the exact order of the original model's input. */
export const FEATURES: readonly string[] = [
  ...NUMERIC_COLUMNS,
  ...CATEGORY_ORDER.flatMap((c) => VOCABULARIES[c]!.slice(1).map((level) => `${c}_${level}`)),
];

/** Plausible ranges: values outside are bad rows (quarantined by prepare-data). */
export const NUMERIC_RANGES: Readonly<Record<string, readonly [number, number]>> = {
  age: [0, 120],
  sleep_hours: [0, 24],
  stress_level: [0, 10],
  ...Object.fromEntries(NUMERIC_COLUMNS.filter((c) => /^(tr|sk)_p/.test(c)).map((c) => [c, [0, 1] as const])),
};

/** The 79 target ids of the original model. */
export const TARGET_IDS: readonly number[] = [
  0, 1, 2, 4, 6, 8, 9, 10, 11, 12, 13, 14, 17, 20, 21, 22, 23, 25, 27, 28, 29, 30, 31, 32, 33, 35, 37, 38, 39, 40, 44, 47,
  48, 50, 51, 52, 54, 55, 56, 58, 59, 60, 61, 64, 65, 66, 67, 71, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 85,
  86, 88, 89, 92, 94, 95, 96, 97, 98, 100, 101, 102, 103, 105, 106, 107, 108,
];

/** `column.Value → Canonical`, from the `category-map` param. */
export type CategoryMap = ReadonlyMap<string, ReadonlyMap<string, string>>;

/**
 * Parse `category-map` entries (`alcohol_consumption.Occasional: Low`). Throws a plain Error
 * naming the bad entry; the caller turns it into a ConfigurationError with its location.
 */
export function parseCategoryMap(raw: Readonly<Record<string, string>>): CategoryMap {
  const map = new Map<string, Map<string, string>>();
  for (const [key, target] of Object.entries(raw)) {
    const dot = key.indexOf('.');
    const column = dot > 0 ? key.slice(0, dot) : '';
    const value = key.slice(dot + 1);
    const vocabulary = VOCABULARIES[column];
    if (!vocabulary) {
      throw new Error(
        `category-map entry \`${key}\`: expected \`<column>.<value>\` with column one of ${Object.keys(VOCABULARIES).join(', ')}`,
      );
    }
    if (!vocabulary.includes(target)) {
      throw new Error(`category-map entry \`${key}\` maps to \`${target}\`, which is not a level of ${column} (${vocabulary.join(', ')})`);
    }
    if (!map.has(column)) map.set(column, new Map());
    map.get(column)!.set(value, target);
  }
  return map;
}

/** Where a row came from, for error messages. */
export interface RowSource {
  file: string;
  line: number;
}

/**
 * The canonical level for a raw category value: itself, or its mapping. An unknown value is a
 * DataError naming file, line and column, listing the known levels and the nearest one.
 */
export function canonicalCategory(column: string, value: string, map: CategoryMap, at: RowSource): string {
  const vocabulary = VOCABULARIES[column]!;
  if (vocabulary.includes(value)) return value;
  const mapped = map.get(column)?.get(value);
  if (mapped !== undefined) return mapped;
  const close = nearest(value, vocabulary);
  throw new DataError(
    `unknown ${column} value \`${value}\`; known values: ${vocabulary.join(', ')}` +
      (close ? `; did you mean \`${close}\`?` : '') +
      ` — or map it in pipeline.yaml: category-map: { ${column}.${value}: <one of the known values> }`,
    { file: at.file, line: at.line, field: column },
  );
}

export type RowProblem =
  | 'wrong-column-count'
  | 'non-numeric'
  | 'not-finite'
  | 'out-of-range'
  | 'bad-target';

export interface RowIssue {
  reason: RowProblem;
  field?: string;
  detail: string;
}

/** A raw fusion row checked and encoded. */
export interface EncodedRow {
  /** The 27 features in FEATURES order. */
  features: Float64Array;
  target: number;
  /** Canonical category values (after mapping), by column. */
  categories: Record<string, string>;
}

/**
 * Index of each raw column in a header. Missing or unexpected columns are a DataError on line 1.
 */
export function headerIndex(header: readonly string[], file: string): Map<string, number> {
  const index = new Map<string, number>();
  header.forEach((name, i) => index.set(name.trim(), i));
  const missing = RAW_COLUMNS.filter((c) => !index.has(c));
  const unknown = header.map((h) => h.trim()).filter((h) => !(RAW_COLUMNS as readonly string[]).includes(h));
  if (missing.length || unknown.length) {
    const parts: string[] = [];
    if (missing.length) parts.push(`missing column(s) ${missing.join(', ')}`);
    if (unknown.length) {
      parts.push(
        `unknown column(s) ${unknown.map((u) => `${u}${nearest(u, RAW_COLUMNS) ? ` (did you mean ${nearest(u, RAW_COLUMNS)}?)` : ''}`).join(', ')}`,
      );
    }
    throw new DataError(`fusion table header does not match the schema: ${parts.join('; ')}`, {
      file,
      line: 1,
      hint: `expected columns: ${RAW_COLUMNS.join(',')}`,
    });
  }
  return index;
}

/**
 * Check one raw row and encode it. Row-level problems (wrong column count, non-numeric, NaN/∞,
 * out-of-range) come back as an issue so the caller can quarantine the row; an unknown category
 * throws (it is a schema problem, fixed by a mapping, not a bad row).
 */
export function encodeRow(
  cells: readonly string[],
  index: ReadonlyMap<string, number>,
  map: CategoryMap,
  at: RowSource,
): EncodedRow | RowIssue {
  if (cells.length !== index.size) {
    return { reason: 'wrong-column-count', detail: `${cells.length} columns, expected ${index.size}` };
  }
  const features = new Float64Array(FEATURES.length);
  let k = 0;
  for (const column of NUMERIC_COLUMNS) {
    const text = cells[index.get(column)!]!.trim();
    const issue = numericIssue(column, text);
    if (issue) return issue;
    features[k++] = Number(text);
  }
  const categories: Record<string, string> = {};
  for (const column of CATEGORY_ORDER) {
    const level = canonicalCategory(column, cells[index.get(column)!]!.trim(), map, at);
    categories[column] = level;
    const levels = VOCABULARIES[column]!;
    for (let i = 1; i < levels.length; i++) features[k++] = levels[i] === level ? 1 : 0;
  }
  const targetText = cells[index.get(TARGET_COLUMN)!]!.trim();
  const target = Number(targetText);
  if (targetText === '' || !Number.isInteger(target) || target < 0) {
    return { reason: 'bad-target', field: TARGET_COLUMN, detail: `\`${targetText}\` is not a non-negative integer class id` };
  }
  return { features, target, categories };
}

function numericIssue(column: string, text: string): RowIssue | undefined {
  if (/^[+-]?(nan|inf|infinity)$/i.test(text)) return { reason: 'not-finite', field: column, detail: `${column} is \`${text}\`` };
  const value = text === '' ? NaN : Number(text);
  if (Number.isNaN(value)) return { reason: 'non-numeric', field: column, detail: `${column} is \`${text}\`, not a number` };
  if (!Number.isFinite(value)) return { reason: 'not-finite', field: column, detail: `${column} is \`${text}\`` };
  const range = NUMERIC_RANGES[column];
  if (range && (value < range[0] || value > range[1])) {
    return { reason: 'out-of-range', field: column, detail: `${column} ${value} is outside [${range[0]}, ${range[1]}]` };
  }
  return undefined;
}

export function isIssue(row: EncodedRow | RowIssue): row is RowIssue {
  return 'reason' in row;
}

/** The schema document written next to encoded tables (schema.json). */
export function schemaDocument(map: CategoryMap): Record<string, unknown> {
  return {
    version: 1,
    rawColumns: RAW_COLUMNS,
    features: FEATURES,
    target: TARGET_COLUMN,
    targetIds: TARGET_IDS,
    vocabularies: VOCABULARIES,
    droppedLevels: Object.fromEntries(CATEGORY_ORDER.map((c) => [c, VOCABULARIES[c]![0]])),
    numericRanges: NUMERIC_RANGES,
    categoryMap: Object.fromEntries([...map].map(([c, m]) => [c, Object.fromEntries(m)])),
  };
}
