// The derived fusion table: run the detector and the skin-type model over a dataset's images and
// join their scores with user fields (or the original's defaults), exactly as the original
// inference chain built the context-correction model's input.

import { basename, extname, join } from 'node:path';
import { ConfigurationError, DataError } from '../../core/errors.ts';
import { sha256File, writeJsonAtomic } from '../../core/fs.ts';
import type { Logger } from '../../core/logger.ts';
import { nearest } from '../../core/suggest.ts';
import { detectorClassScores } from '../../inference/detector.ts';
import { DETECTOR_CLASS_NAMES, imageSpec, openModel, SKIN_TYPE_CLASS_NAMES, runModelsOnImages, type EngineOptions, type ModelOutput, type OpenedModel } from '../../inference/engine.ts';
import type { ProviderChoice } from '../../inference/session.ts';
import { skinTypeLabel, skinTypeProbabilities } from '../../inference/skin-type.ts';
import { detectLayout } from '../layout/detect.ts';
import { isImage, listFiles } from '../layout/walk.ts';
import { csvCell, LineWriter, readCsv } from './csv.ts';
import {
  canonicalCategory,
  CATEGORY_ORDER,
  encodeRow,
  FEATURES,
  isIssue,
  parseCategoryMap,
  RAW_COLUMNS,
  schemaDocument,
  TARGET_COLUMN,
  type CategoryMap,
} from './schema.ts';

/** The raw user columns a user-fields CSV may give, keyed by image id. */
export const USER_FIELD_COLUMNS = [
  'age', 'gender', 'sleep_hours', 'stress_level', 'diet_quality', 'smoker', 'alcohol_consumption', 'skin_type',
] as const;
export type UserField = (typeof USER_FIELD_COLUMNS)[number];

/**
 * The original's defaults when no user fields are given. `skin_type` has none there: the
 * skin-type model's own prediction (Dry, Normal or Oily) stands in for it.
 */
export const DEFAULT_USER_FIELDS: Readonly<Record<Exclude<UserField, 'skin_type'>, string>> = {
  age: '25',
  gender: 'Female',
  sleep_hours: '7',
  stress_level: '5',
  diet_quality: 'Average',
  smoker: 'No',
  alcohol_consumption: 'No',
};

/**
 * The original's default alcohol value `No` is not a training level (High, Low, Moderate): it is
 * read as `Low`, the lightest level. A `category-map` entry for the same value replaces this one.
 */
export const DEFAULT_CATEGORY_MAP: Readonly<Record<string, string>> = { 'alcohol_consumption.No': 'Low' };

/** The category map in effect: the defaults above, overridden by the stage's `category-map`. */
export function derivedCategoryMap(raw: Readonly<Record<string, string>>): CategoryMap {
  return parseCategoryMap({ ...DEFAULT_CATEGORY_MAP, ...raw });
}

/** The id column of a user-fields CSV. */
export const USER_ID_COLUMN = 'id';

export interface UserRow {
  line: number;
  values: Partial<Record<UserField, string>>;
  target?: string;
}

/**
 * Read a user-fields CSV into id → row. Its header has `id`, any of the user columns and the
 * target column; anything else, a duplicate id or a wrong column count is a DataError with the line.
 */
export async function readUserFields(path: string, display: string, targetColumn?: string, signal?: AbortSignal): Promise<Map<string, UserRow>> {
  const rows = new Map<string, UserRow>();
  let header: string[] | undefined;
  for await (const { line, cells } of readCsv(path, signal)) {
    if (!header) {
      header = cells.map((c) => c.trim());
      const known = [USER_ID_COLUMN, ...USER_FIELD_COLUMNS, ...(targetColumn ? [targetColumn] : [])];
      const unknown = header.filter((h) => !known.includes(h));
      if (unknown.length) {
        throw new DataError(
          `unknown user-fields column(s) ${unknown.map((u) => `\`${u}\`${nearest(u, known) ? ` (did you mean \`${nearest(u, known)}\`?)` : ''}`).join(', ')}`,
          { file: display, line: 1, hint: `known columns: ${known.join(', ')}${targetColumn ? '' : '; set `target-column` to add a target'}` },
        );
      }
      if (!header.includes(USER_ID_COLUMN)) throw new DataError('user-fields CSV has no `id` column (the image id)', { file: display, line: 1 });
      if (targetColumn && !header.includes(targetColumn)) {
        throw new DataError(`target column \`${targetColumn}\` not in the user-fields header`, { file: display, line: 1, field: 'target-column' });
      }
      const seen = new Set<string>();
      for (const h of header) {
        if (seen.has(h)) throw new DataError(`column \`${h}\` appears twice`, { file: display, line: 1 });
        seen.add(h);
      }
      continue;
    }
    if (cells.length !== header.length) {
      throw new DataError(`${cells.length} columns, expected ${header.length}`, { file: display, line });
    }
    const row: UserRow = { line, values: {} };
    let id = '';
    header.forEach((h, i) => {
      const v = cells[i]!.trim();
      if (h === USER_ID_COLUMN) id = v;
      else if (h === targetColumn) row.target = v;
      else if (v !== '') row.values[h as UserField] = v;
    });
    if (!id) throw new DataError('empty image id', { file: display, line, field: USER_ID_COLUMN });
    const before = rows.get(id);
    if (before) throw new DataError(`image id \`${id}\` already given on line ${before.line}`, { file: display, line, field: USER_ID_COLUMN });
    rows.set(id, row);
  }
  if (!header) throw new DataError('user-fields CSV is empty (no header)', { file: display, line: 1 });
  return rows;
}

export interface DatasetImage {
  /** File name without extension: the id user fields are keyed by. */
  id: string;
  /** Relative to the dataset dir. */
  file: string;
}

/** The dataset's images in a stable order: YOLO split image folders, or class folders. */
export async function listDatasetImages(dir: string, display: string, signal?: AbortSignal): Promise<DatasetImage[]> {
  const files = await listFiles(dir, signal);
  const layout = await detectLayout(dir, files);
  const prefix = layout.root ? `${layout.root}/` : '';
  const folders = layout.yolo
    ? layout.yolo.splits.map((s) => `${s.images}/`)
    : layout.classFolders
      ? layout.classFolders.splits.map((s) => `${prefix}${s.dir ? `${s.dir}/` : ''}`)
      : [];
  if (!folders.length) {
    throw new DataError(`no images: the dataset is a ${layout.kind} layout; derived mode needs a YOLO export or class folders`, { file: display });
  }
  const images = files
    .filter((f) => isImage(f.path) && folders.some((p) => f.path.startsWith(p)))
    .map((f) => ({ id: basename(f.path, extname(f.path)), file: f.path }));
  if (!images.length) throw new DataError('no images found in the dataset', { file: display });
  return images;
}

export interface DerivedFusionOptions {
  datasetDir: string;
  /** Dataset path as shown in messages. */
  datasetDisplay: string;
  detector: { path: string; display: string };
  skinType: { path: string; display: string };
  userFields?: { path: string; display: string };
  /** Target column of the user-fields CSV; without one the table has an empty target (inference / drift only). */
  targetColumn?: string;
  confidence: number;
  batchSize: number;
  categoryMap: CategoryMap;
  outDir: string;
  provider?: ProviderChoice;
  threads?: number;
  /** Images decoded at once. */
  decodeConcurrency?: number;
  logger: Logger;
  signal?: AbortSignal;
}

export interface DerivedFusionResult {
  rows: number;
  encoded: number;
  rejected: Record<string, number>;
  mapped: Record<string, number>;
  images: number;
  /** Images without a user-fields row (original defaults used). */
  defaulted: number;
  /** User-fields rows whose id matches no image. */
  unmatched: number;
  provider: 'cpu' | 'cuda';
}

const RAW_INDEX: ReadonlyMap<string, number> = new Map(RAW_COLUMNS.map((c, i) => [c, i]));

/**
 * Build fusion.csv, features.csv and schema.json (plus images.csv: the image of each row) from
 * a dataset's images. Both models run through the inference engine: each image is read once,
 * batches are decoded while the previous one runs through the models, so a few batches of
 * tensors at most are in memory. A model without a model card runs as the original's detector
 * or skin-type model.
 */
export async function buildDerivedFusion(o: DerivedFusionOptions): Promise<DerivedFusionResult> {
  const images = await listDatasetImages(o.datasetDir, o.datasetDisplay, o.signal);
  const userRows = o.userFields ? await readUserFields(o.userFields.path, o.userFields.display, o.targetColumn, o.signal) : undefined;
  if (userRows) {
    // User fields are joined by id: two images with the same id would get the same person.
    const seen = new Map<string, string>();
    for (const image of images) {
      const other = seen.get(image.id);
      if (other) {
        throw new DataError(`images ${other} and ${image.file} have the same id \`${image.id}\`, so user fields cannot be joined by id`, {
          file: o.datasetDisplay,
        });
      }
      seen.set(image.id, image.file);
    }
  }
  const engine: EngineOptions = {
    logger: o.logger,
    ...(o.provider ? { provider: o.provider } : {}),
    ...(o.threads ? { threads: o.threads } : {}),
    ...(o.signal ? { signal: o.signal } : {}),
  };
  const detector = await openModel(o.detector.path, o.detector.display, { ...engine, role: 'detector' });
  let skinType: OpenedModel | undefined;
  try {
    skinType = await openModel(o.skinType.path, o.skinType.display, { ...engine, role: 'skin-type' });
    return await run(o, engine, images, userRows, detector, skinType);
  } finally {
    await detector.close();
    await skinType?.close();
  }
}

async function run(
  o: DerivedFusionOptions,
  engine: EngineOptions,
  images: DatasetImage[],
  userRows: Map<string, UserRow> | undefined,
  detector: OpenedModel,
  skinType: OpenedModel,
): Promise<DerivedFusionResult> {
  // tr_p0..9 and sk_p0..2 are the original's classes in the original's order.
  for (const [m, names] of [[detector, DETECTOR_CLASS_NAMES], [skinType, SKIN_TYPE_CLASS_NAMES]] as const) {
    const got = m.card.classes.map((c) => c.name);
    if (got.join('\n') !== names.join('\n')) {
      throw new ConfigurationError(`model ${m.display} has classes ${got.join(', ')}; fusion features need ${names.join(', ')} in this order`, {
        file: m.cardDisplay ?? m.display,
      });
    }
  }
  const detSize = imageSpec(detector).size;
  const skSize = imageSpec(skinType).size;
  const raw = await LineWriter.open(join(o.outDir, 'fusion.csv'));
  const encodedOut = await LineWriter.open(join(o.outDir, 'features.csv'));
  const index = await LineWriter.open(join(o.outDir, 'images.csv'));
  const result: DerivedFusionResult = {
    rows: 0, encoded: 0, rejected: {}, mapped: {}, images: images.length, defaulted: 0, unmatched: 0, provider: detector.loaded.provider,
  };
  const usedIds = new Set<string>();
  const progress = o.logger.progress('images through the models', images.length, 'images');
  let warned = 0;
  try {
    await raw.write(RAW_COLUMNS.join(','));
    await encodedOut.write([...FEATURES, TARGET_COLUMN].join(','));
    await index.write('id,file');
    const files = images.map((image) => ({ ...image, path: join(o.datasetDir, image.file) }));
    const results = runModelsOnImages([detector, skinType], files, {
      ...engine,
      batchSize: Math.max(1, o.batchSize),
      ...(o.decodeConcurrency ? { decodeConcurrency: o.decodeConcurrency } : {}),
      onUnreadable: (item, reason) => {
        result.rejected['unreadable-image'] = (result.rejected['unreadable-image'] ?? 0) + 1;
        if (warned++ < 5) o.logger.warn(`${o.datasetDisplay}/${item.file}: left out, cannot be decoded: ${reason}`);
        progress.tick();
      },
    });
    for await (const r of results) {
      const [det, sk] = r.outputs as [ModelOutput, ModelOutput];
      const tr = detectorClassScores({ data: det.output, channels: det.dims[0]!, anchors: det.dims[1]! }, o.confidence);
      await writeRow(r.item, tr, skinTypeProbabilities(sk.output));
      progress.tick();
    }
  } finally {
    progress.done();
    await raw.close();
    await encodedOut.close();
    await index.close();
  }
  if (userRows) for (const id of userRows.keys()) if (!usedIds.has(id)) result.unmatched++;
  if (result.unmatched) o.logger.warn(`${result.unmatched} user-fields row(s) match no image of ${o.datasetDisplay}`);
  if (result.defaulted && userRows) o.logger.info(`${result.defaulted} image(s) without a user-fields row use the default user fields`);

  await writeJsonAtomic(join(o.outDir, 'schema.json'), {
    ...schemaDocument(o.categoryMap),
    rows: result.rows,
    encoded: result.encoded,
    rejected: result.rejected,
    mapped: result.mapped,
    derived: {
      dataset: o.datasetDisplay,
      detector: { file: o.detector.display, sha256: await sha256File(o.detector.path), inputSize: detSize },
      skinType: { file: o.skinType.display, sha256: await sha256File(o.skinType.path), inputSize: skSize },
      confidence: o.confidence,
      userFields: o.userFields?.display ?? null,
      targetColumn: o.targetColumn ?? null,
      defaults: { ...DEFAULT_USER_FIELDS, skin_type: 'the skin-type model\'s prediction' },
      images: result.images,
      defaulted: result.defaulted,
      unmatched: result.unmatched,
    },
  });
  return result;

  async function writeRow(item: DatasetImage, tr: Float64Array, skp: Float64Array): Promise<void> {
    const user = userRows?.get(item.id);
    if (user) usedIds.add(item.id);
    else result.defaulted++;
    const value = (c: UserField): string =>
      user?.values[c] ?? (c === 'skin_type' ? skinTypeLabel(skp) : DEFAULT_USER_FIELDS[c]);
    const target = user?.target ?? '';
    const cells: string[] = RAW_COLUMNS.map((c) => {
      if (c === TARGET_COLUMN) return target;
      if (/^tr_p\d$/.test(c)) return String(tr[Number(c.slice(4))]);
      if (/^sk_p\d$/.test(c)) return String(skp[Number(c.slice(4))]);
      return value(c as UserField);
    });
    result.rows++;
    await index.write(`${csvCell(item.id)},${csvCell(item.file)}`);
    const at = user && o.userFields ? { file: o.userFields.display, line: user.line } : { file: 'default user fields', line: 1 };
    // Categories to their canonical level first, so fusion.csv never holds a value prepare-data
    // would not know (the default alcohol `No`), even on rows left out of features.csv.
    for (const c of CATEGORY_ORDER) {
      const k = RAW_INDEX.get(c)!;
      const original = cells[k]!;
      const level = canonicalCategory(c, original, o.categoryMap, at);
      if (level !== original) {
        result.mapped[`${c}.${original}`] = (result.mapped[`${c}.${original}`] ?? 0) + 1;
        cells[k] = level;
      }
    }
    // Without a target column the table is for inference and drift: any id encodes, the cell stays empty.
    const forEncoding = o.targetColumn ? cells : cells.map((v, i) => (i === RAW_INDEX.get(TARGET_COLUMN) ? '0' : v));
    const row = encodeRow(forEncoding, RAW_INDEX, o.categoryMap, at);
    if (isIssue(row)) {
      result.rejected[row.reason] = (result.rejected[row.reason] ?? 0) + 1;
      if (warned++ < 5) o.logger.warn(`image ${item.id}: left out of features.csv: ${row.detail}`);
      await raw.write(cells.map(csvCell).join(','));
      return;
    }
    await raw.write(cells.map(csvCell).join(','));
    const features = Array.from(row.features, String);
    await encodedOut.write([...features, o.targetColumn ? String(row.target) : ''].join(','));
    result.encoded++;
  }
}
