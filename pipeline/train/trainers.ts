// Tabular training shared by the `train` stage and `skintwin train gbdt`: read feature tables
// (the prepared fusion splits, or any CSV), train the gbdt model, check that the written ONNX file
// gives the trainer's own probabilities in onnxruntime, and write the model card beside it.

import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { ConfigurationError, DataError } from '../core/errors.ts';
import { sha256, sha256File } from '../core/fs.ts';
import type { Logger } from '../core/logger.ts';
import { readCsv } from '../data/fusion/csv.ts';
import {
  CATEGORY_ORDER,
  encodeRow,
  FEATURES,
  headerIndex,
  isIssue,
  NUMERIC_COLUMNS,
  NUMERIC_RANGES,
  RAW_COLUMNS,
  TARGET_COLUMN,
  VOCABULARIES,
  type CategoryMap,
} from '../data/fusion/schema.ts';
import { writeModelCard, MODEL_CARD_FILE, type CardClass, type TabularModelCard } from './card.ts';
import {
  GBDT_ONNX_INPUT,
  GBDT_ONNX_LABEL,
  GBDT_ONNX_PROBABILITIES,
  logLoss,
  predictProba,
  saveGbdt,
  trainGbdt,
  type GbdtModel,
  type GbdtParams,
  type SavedGbdt,
} from './gbdt/index.ts';

/** A feature table read from a CSV: row-major float32 features, raw target text, row ids. */
export interface FeatureTable {
  /** The file as shown in messages. */
  file: string;
  x: Float32Array;
  nRows: number;
  featureNames: string[];
  /** Raw target value per row (trimmed), when the table has the target column. */
  targets: string[] | undefined;
  /** The `id` column's value, else the CSV line number, per row (empty when not kept). */
  ids: string[];
  /** CSV line of each row, for messages. */
  lines: Int32Array;
}

/** Growable float32 rows without per-row objects. */
class RowBuffer {
  private data: Float32Array;
  nRows = 0;
  constructor(private readonly width: number) {
    this.data = new Float32Array(Math.max(width, 1) * 1024);
  }
  push(values: ArrayLike<number>): void {
    const need = (this.nRows + 1) * this.width;
    if (need > this.data.length) {
      const grown = new Float32Array(Math.max(need, this.data.length * 2));
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(values, this.nRows * this.width);
    this.nRows++;
  }
  finish(): Float32Array {
    return this.data.slice(0, this.nRows * this.width);
  }
}

class LineBuffer {
  private data = new Int32Array(1024);
  n = 0;
  push(v: number): void {
    if (this.n === this.data.length) {
      const grown = new Int32Array(this.data.length * 2);
      grown.set(this.data);
      this.data = grown;
    }
    this.data[this.n++] = v;
  }
  finish(): Int32Array {
    return this.data.slice(0, this.n);
  }
}

export interface NumericTableOptions {
  /** Feature columns in model order (default: every column but the target and `id`). */
  features?: readonly string[];
  /** Target column name. */
  target: string;
  /** Fail when the target column is missing (training) instead of returning no targets. */
  targetRequired: boolean;
  /** Empty cells and `NaN` are missing values (NaN) rather than errors. */
  allowMissing: boolean;
  /** Collect row ids (default true); training does not need them, so it saves one string per row. */
  keepIds?: boolean;
  signal?: AbortSignal;
}

const ID_COLUMN = 'id';

/**
 * A CSV of numeric feature columns. A non-numeric or infinite cell is a DataError naming the
 * file, line and column; a header without some of the wanted features names them.
 */
export async function readNumericTable(path: string, display: string, o: NumericTableOptions): Promise<FeatureTable> {
  let featureCols: number[] | undefined;
  let featureNames: string[] = [];
  let targetCol = -1;
  let idCol = -1;
  let width = 0;
  let rows: RowBuffer | undefined;
  const lines = new LineBuffer();
  const targets: string[] = [];
  const ids: string[] = [];
  let values = new Float64Array(0);
  for await (const { line, cells } of readCsvChecked(path, display, o.signal)) {
    if (!featureCols) {
      const header = cells.map((c) => c.trim());
      targetCol = header.indexOf(o.target);
      if (targetCol < 0 && o.targetRequired) {
        throw new ConfigurationError(`target column \`${o.target}\` is not in the header (columns: ${header.join(', ')})`, { file: display, line: 1, field: 'target' });
      }
      idCol = o.target === ID_COLUMN ? -1 : header.indexOf(ID_COLUMN);
      if (o.features) {
        const missing = o.features.filter((f) => !header.includes(f));
        if (missing.length) {
          const available = header.filter((h, i) => i !== targetCol && i !== idCol).length;
          throw new DataError(
            `the model expects ${o.features.length} features, the table has ${available} feature column(s); missing: ${missing.slice(0, 10).join(', ')}${missing.length > 10 ? ` (+${missing.length - 10} more)` : ''}`,
            { file: display, line: 1 },
          );
        }
        featureNames = [...o.features];
        featureCols = o.features.map((f) => header.indexOf(f));
      } else {
        featureCols = header.map((_, i) => i).filter((i) => i !== targetCol && i !== idCol);
        featureNames = featureCols.map((i) => header[i]!);
        if (!featureNames.length) throw new DataError('the table has no feature columns besides the target', { file: display, line: 1 });
      }
      width = header.length;
      rows = new RowBuffer(featureCols.length);
      values = new Float64Array(featureCols.length);
      continue;
    }
    if (cells.length !== width) throw new DataError(`${cells.length} columns, the header has ${width}`, { file: display, line });
    for (let k = 0; k < featureCols.length; k++) {
      const text = cells[featureCols[k]!]!.trim();
      values[k] = parseFeature(text, featureNames[k]!, display, line, o.allowMissing);
    }
    rows!.push(values);
    lines.push(line);
    if (targetCol >= 0) {
      const t = cells[targetCol]!.trim();
      if (t === '') throw new DataError(`empty target \`${o.target}\``, { file: display, line, field: o.target });
      targets.push(t);
    }
    if (o.keepIds !== false) ids.push(idCol >= 0 ? cells[idCol]!.trim() : String(line));
  }
  if (!featureCols || !rows) throw new DataError('table is empty (no header)', { file: display, line: 1 });
  return { file: display, x: rows.finish(), nRows: rows.nRows, featureNames, targets: targetCol >= 0 ? targets : undefined, ids, lines: lines.finish() };
}

function parseFeature(text: string, column: string, file: string, line: number, allowMissing: boolean): number {
  if (text === '' || /^[+-]?nan$/i.test(text)) {
    if (allowMissing) return NaN;
    throw new DataError(`${column} is ${text === '' ? 'empty' : `\`${text}\``}: the prepared data must not have missing values`, { file, line, field: column });
  }
  const v = Number(text);
  if (Number.isNaN(v)) throw new DataError(`${column} is \`${text}\`, not a number (numeric columns only; the fusion table's raw columns are one-hot encoded automatically)`, { file, line, field: column });
  if (!Number.isFinite(v) || Math.abs(v) > 3.4e38) throw new DataError(`${column} is \`${text}\`: features must be finite`, { file, line, field: column });
  return v;
}

async function* readCsvChecked(path: string, display: string, signal?: AbortSignal): AsyncGenerator<{ line: number; cells: string[] }> {
  try {
    yield* readCsv(path, signal);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ConfigurationError('file not found', { file: display });
    if (code === 'EISDIR') throw new ConfigurationError('is a folder, expected a CSV file', { file: display });
    throw error;
  }
}

/** Whether a header is the fusion table's raw schema (all raw columns, the target aside). */
export function isFusionHeader(header: readonly string[], target: string): boolean {
  const names = new Set(header.map((h) => (h.trim() === target ? TARGET_COLUMN : h.trim())));
  return RAW_COLUMNS.every((c) => c === TARGET_COLUMN || names.has(c)) && [...names].every((n) => (RAW_COLUMNS as readonly string[]).includes(n) || n === ID_COLUMN);
}

/** The first line of a CSV, split into cells. */
export async function readHeader(path: string, display: string): Promise<string[]> {
  for await (const { cells } of readCsvChecked(path, display)) return cells.map((c) => c.trim());
  throw new DataError('table is empty (no header)', { file: display, line: 1 });
}

/**
 * The fusion table's raw columns, one-hot encoded exactly as build-fusion-data / prepare-data do
 * (the shared encoder). A bad row is an error here, naming its line and column: the CLI trains on
 * what it is given, it does not quarantine.
 */
export async function readFusionTable(
  path: string,
  display: string,
  o: { target: string; targetRequired: boolean; categoryMap: CategoryMap; signal?: AbortSignal },
): Promise<FeatureTable> {
  let index: Map<string, number> | undefined;
  let hasTarget = false;
  let idCol = -1;
  const rows = new RowBuffer(FEATURES.length);
  const lines = new LineBuffer();
  const targets: string[] = [];
  const ids: string[] = [];
  for await (const { line, cells } of readCsvChecked(path, display, o.signal)) {
    if (!index) {
      const header = cells.map((c) => c.trim());
      hasTarget = header.includes(o.target);
      if (!hasTarget && o.targetRequired) throw new ConfigurationError(`target column \`${o.target}\` is not in the header`, { file: display, line: 1, field: 'target' });
      idCol = header.indexOf(ID_COLUMN);
      // The shared encoder expects exactly the raw columns, target included.
      const named = header.map((c) => (c === o.target ? TARGET_COLUMN : c));
      if (!hasTarget) named.push(TARGET_COLUMN);
      index = headerIndex(named.filter((_, i) => i !== idCol), display);
      continue;
    }
    let raw = idCol >= 0 ? cells.filter((_, i) => i !== idCol) : cells;
    if (!hasTarget) raw = [...raw, '0'];
    const row = encodeRow(raw, index, o.categoryMap, { file: display, line });
    if (isIssue(row)) throw new DataError(row.detail, { file: display, line, ...(row.field ? { field: row.field } : {}) });
    rows.push(row.features);
    lines.push(line);
    if (hasTarget) targets.push(String(row.target));
    ids.push(idCol >= 0 ? cells[idCol]!.trim() : String(line));
  }
  if (!index) throw new DataError('table is empty (no header)', { file: display, line: 1 });
  return { file: display, x: rows.finish(), nRows: rows.nRows, featureNames: [...FEATURES], targets: hasTarget ? targets : undefined, ids, lines: lines.finish() };
}

/** The card's preprocessing block for the fusion one-hot encoding. */
export function fusionPreprocessing(target: string, categoryMap: Record<string, Record<string, string>>): TabularModelCard['preprocessing'] {
  return {
    type: 'fusion-one-hot',
    description: 'Numeric columns as they are, then one-hot blocks `<column>_<level>` for every level but the first (dropped) one, in this order',
    target,
    rawColumns: RAW_COLUMNS.filter((c) => c !== TARGET_COLUMN),
    numericColumns: [...NUMERIC_COLUMNS],
    numericRanges: Object.fromEntries(Object.entries(NUMERIC_RANGES).map(([k, v]) => [k, [...v]])),
    categories: Object.fromEntries(CATEGORY_ORDER.map((c) => [c, { levels: [...VOCABULARIES[c]!], dropped: VOCABULARIES[c]![0]! }])),
    categoryMap,
  };
}

/** Classes from the training targets: integer ids sorted numerically, else names sorted, ids 0…C−1. */
export function classesFromTargets(targets: readonly string[]): CardClass[] {
  const unique = [...new Set(targets)];
  const integers = unique.every((t) => /^[+-]?\d+$/.test(t) && Number.isSafeInteger(Number(t)));
  if (integers) {
    return unique
      .map(Number)
      .sort((a, b) => a - b)
      .map((id, index) => ({ index, id, name: String(id) }));
  }
  return unique.sort().map((name, index) => ({ index, id: index, name }));
}

/** Class index per row; the caller has checked every target is a known class. */
function classIndices(targets: readonly string[], classes: readonly CardClass[]): Int32Array {
  const byName = new Map(classes.map((c) => [c.name, c.index]));
  const byId = new Map(classes.map((c) => [String(c.id), c.index]));
  const y = new Int32Array(targets.length);
  targets.forEach((t, i) => (y[i] = byName.get(t) ?? byId.get(String(Number(t))) ?? -1));
  return y;
}

/** sha256 over a folder's files (relative path and content hash of each, sorted), or over one file. */
export async function hashData(absPath: string): Promise<{ sha256: string; files: number }> {
  let entries: string[];
  try {
    entries = (await readdir(absPath, { recursive: true, withFileTypes: true }))
      .filter((e) => e.isFile())
      .map((e) => relative(absPath, join(e.parentPath, e.name)).split('\\').join('/'))
      .sort();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOTDIR') throw error;
    return { sha256: await sha256File(absPath), files: 1 };
  }
  const parts: string[] = [];
  for (const rel of entries) parts.push(`${rel}\0${await sha256File(join(absPath, rel))}\n`);
  return { sha256: sha256(parts.join('')), files: entries.length };
}

/** The code commit: GITHUB_SHA in Actions, else `git rev-parse HEAD` in `root`, else null. */
export async function codeCommit(env: Readonly<Record<string, string | undefined>>, root: string): Promise<string | null> {
  const fromEnv = env.GITHUB_SHA?.trim().toLowerCase();
  if (fromEnv && /^[0-9a-f]{7,64}$/.test(fromEnv)) return fromEnv;
  return new Promise((resolve) => {
    execFile('git', ['rev-parse', 'HEAD'], { cwd: root, timeout: 10_000 }, (error, stdout) => {
      const sha = String(stdout ?? '').trim();
      resolve(!error && /^[0-9a-f]{7,64}$/.test(sha) ? sha : null);
    });
  });
}

export interface FitTabularOptions {
  /** Registry name written into the card. */
  model: string;
  train: FeatureTable;
  val: FeatureTable;
  params: Partial<GbdtParams>;
  outDir: string;
  /** Out dir as shown in messages. */
  outDisplay: string;
  preprocessing: TabularModelCard['preprocessing'];
  trainingData: { path: string; sha256: string; files: number };
  commit: string | null;
  now: () => Date;
  logger: Logger;
  signal?: AbortSignal;
}

export interface FitTabularResult {
  model: GbdtModel;
  saved: SavedGbdt;
  card: TabularModelCard;
  cardPath: string;
}

/** Largest |onnxruntime − trainer| probability difference the written model may show. */
export const ONNX_TOLERANCE = 1e-5;

function checkClasses(train: FeatureTable, val: FeatureTable): CardClass[] {
  if (!train.targets) throw new DataError('the training table has no target column', { file: train.file });
  if (!val.targets) throw new DataError('the validation table has no target column', { file: val.file });
  if (train.nRows === 0) throw new DataError('training data is empty (no rows)', { file: train.file });
  if (val.nRows === 0) throw new DataError('validation data is empty (no rows): early stopping and the model card need it', { file: val.file });
  const classes = classesFromTargets(train.targets);
  if (classes.length < 2) {
    throw new DataError(`training data has a single class (${classes[0]!.name}): a classifier needs at least two`, { file: train.file, field: 'target' });
  }
  const known = new Set(classes.flatMap((c) => [c.name, String(c.id)]));
  const unseen = [...new Set(val.targets.filter((t) => !known.has(t) && !known.has(String(Number(t)))))];
  if (unseen.length) {
    throw new DataError(
      `validation has class(es) ${unseen.slice(0, 10).join(', ')} that never occur in training: re-split the data so training covers every class`,
      { file: val.file, field: 'target' },
    );
  }
  return classes;
}

/** Probabilities of the written ONNX file from onnxruntime, compared with the trainer's on `rows`. */
export async function onnxMaxAbsDiff(onnxPath: string, model: GbdtModel, rows: { x: Float32Array; nRows: number }, tsProba: Float64Array): Promise<number> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(await readFile(onnxPath), { executionProviders: ['cpu'] });
  const F = model.featureNames.length;
  const C = model.classLabels.length;
  let worst = 0;
  try {
    const batch = 8192;
    for (let start = 0; start < rows.nRows; start += batch) {
      const n = Math.min(batch, rows.nRows - start);
      const input = new ort.Tensor('float32', rows.x.subarray(start * F, (start + n) * F), [n, F]);
      const out = await session.run({ [GBDT_ONNX_INPUT]: input });
      const p = out[GBDT_ONNX_PROBABILITIES]?.data as Float32Array | undefined;
      const labels = out[GBDT_ONNX_LABEL]?.data as BigInt64Array | undefined;
      if (!p || p.length !== n * C || !labels || labels.length !== n) throw new Error(`ONNX model outputs have unexpected shapes (${p?.length} probabilities, ${labels?.length} labels for ${n} rows)`);
      for (let i = 0; i < n * C; i++) {
        const d = Math.abs(p[i]! - tsProba[start * C + i]!);
        if (!(d <= worst)) worst = Number.isNaN(d) ? Infinity : d;
      }
    }
  } finally {
    await session.release();
  }
  return worst;
}

/** Train, save model.onnx + model.json, verify the ONNX file, and write model-card.json. */
export async function fitTabularGbdt(o: FitTabularOptions): Promise<FitTabularResult> {
  const classes = checkClasses(o.train, o.val);
  const names = o.train.featureNames;
  if (o.val.featureNames.length !== names.length || o.val.featureNames.some((f, i) => f !== names[i])) {
    throw new DataError('validation features differ from the training features (names and order must match)', { file: o.val.file });
  }
  const classLabels = classes.map((c) => c.id);
  const yTrain = classIndices(o.train.targets!, classes);
  const yVal = classIndices(o.val.targets!, classes);
  const F = names.length;
  const startedAt = o.now();
  const t0 = performance.now();
  o.logger.info(`gbdt: ${o.train.nRows} training rows, ${o.val.nRows} validation rows, ${F} features, ${classes.length} classes`);
  const model = await trainGbdt(
    { x: o.train.x, nRows: o.train.nRows, nFeatures: F, y: yTrain, featureNames: names, classLabels },
    { x: o.val.x, nRows: o.val.nRows, nFeatures: F, y: yVal, featureNames: names, classLabels },
    o.params,
    { logger: o.logger, ...(o.signal ? { signal: o.signal } : {}) },
  );
  const seconds = (performance.now() - t0) / 1000;

  let saved: SavedGbdt;
  try {
    saved = await saveGbdt(o.outDir, model);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code && ['EACCES', 'EPERM', 'ENOTDIR', 'EROFS', 'EEXIST', 'EISDIR'].includes(code)) {
      throw new ConfigurationError(`cannot write the model there (${code}): ${(error as Error).message}`, { file: o.outDisplay, field: 'out' });
    }
    throw error;
  }

  const valRows = { x: o.val.x, nRows: o.val.nRows };
  const proba = predictProba(model, valRows);
  const diff = await onnxMaxAbsDiff(saved.onnxPath, model, valRows, proba);
  if (!(diff <= ONNX_TOLERANCE)) {
    throw new Error(
      `the exported ONNX model disagrees with the trainer on the validation split (max |Δp| = ${diff} > ${ONNX_TOLERANCE}): the model is not trustworthy and was not published`,
    );
  }

  const C = classes.length;
  let correct = 0;
  for (let r = 0; r < o.val.nRows; r++) {
    let best = 0;
    for (let k = 1; k < C; k++) if (proba[r * C + k]! > proba[r * C + best]!) best = k;
    if (best === yVal[r]) correct++;
  }
  const trainCounts = new Array<number>(C).fill(0);
  for (const k of yTrain) trainCounts[k]!++;
  const majority = trainCounts.indexOf(Math.max(...trainCounts));
  const baselineCorrect = yVal.reduce((n, k) => n + (k === majority ? 1 : 0), 0);

  const card: TabularModelCard = {
    format: 'skintwin-model-card',
    version: 1,
    model: o.model,
    task: 'tabular-classification',
    createdAt: o.now().toISOString(),
    classes,
    input: { name: GBDT_ONNX_INPUT, dtype: 'float32', shape: ['N', F], features: [...names] },
    preprocessing: o.preprocessing,
    output: {
      label: { name: GBDT_ONNX_LABEL, dtype: 'int64', shape: ['N'] },
      probabilities: { name: GBDT_ONNX_PROBABILITIES, dtype: 'float32', shape: ['N', C] },
    },
    trainer: {
      name: 'gbdt',
      objective: model.objective,
      params: Object.fromEntries(Object.entries(model.params).map(([k, v]) => [k, v ?? null])),
      rounds: model.rounds,
      bestIteration: model.bestIteration,
    },
    trainingData: { ...o.trainingData, trainRows: o.train.nRows, valRows: o.val.nRows },
    code: { commit: o.commit },
    training: { startedAt: startedAt.toISOString(), seconds: Math.round(seconds * 1000) / 1000, executionProvider: 'cpu' },
    metrics: {
      validation: {
        rows: o.val.nRows,
        accuracy: correct / o.val.nRows,
        logLoss: logLoss(proba, yVal, C),
        baselineAccuracy: baselineCorrect / o.val.nRows,
      },
    },
    featureImportance: model.importance.map((f) => ({ feature: f.feature, gain: f.gain, cover: f.cover, splits: f.splits, gainShare: f.gainShare })),
    onnx: { file: 'model.onnx', sha256: saved.onnxSha256, bytes: saved.onnxBytes, maxAbsDiffVsTrainer: diff },
  };
  const cardPath = join(o.outDir, MODEL_CARD_FILE);
  await writeModelCard(cardPath, card);
  return { model, saved, card, cardPath };
}
