// The original inference chain as one function (detector → skin type → context correction → the
// four buckets with severities, reference/original-system.md), used by evaluation and serving.

import { ConfigurationError, DataError } from '../core/errors.ts';
import { DEFAULT_USER_FIELDS, derivedCategoryMap, type UserField } from '../data/fusion/derived.ts';
import { encodeRow, FEATURES, isIssue, RAW_COLUMNS, TARGET_COLUMN, type CategoryMap } from '../data/fusion/schema.ts';
import { DEFAULT_CONFIDENCE, detectorClassScores } from './detector.ts';
import { classifyRows, runModelsOnImages, type ImageFile, type ImageRunOptions, type OpenedModel } from './engine.ts';
import { isProbabilities, softmax } from './skin-type.ts';

export interface ChainModels {
  detector: OpenedModel;
  skinType: OpenedModel;
  contextCorrection?: OpenedModel;
}

export type BucketName = 'acne' | 'wrinkles' | 'dark_spots' | 'redness';
export type Severity = 'HIGH' | 'MODERATE' | 'LOW' | 'NONE';

export interface ChainResult {
  /** Per detector class: the highest box confidence, normalised to sum 1 (all 0 without detections). */
  troubles: Record<string, number>;
  /** Classes whose normalised score is ≥ 0.1. */
  detected: string[];
  /** `label` as the original reported it (DRY, NORMAL, OILY); `probs` by the card's class names. */
  skinType: { label: string; probs: Record<string, number> };
  /** The context-correction model's class id (the card's `id`), its probabilities and the 27 features it was given. */
  context?: { classId: number; probs: Float32Array; features: Float32Array };
  buckets: Record<BucketName, { detected: boolean; severity: Severity; confidence: number }>;
}

/** A normalised class score at or above this counts as detected (the original's `detected_troubles`). */
export const DETECTED_AT = 0.1;

/** Detector classes → bucket; the other classes are not bucketed. */
export const BUCKET_OF: Readonly<Record<string, BucketName>> = {
  Acne: 'acne',
  Blackheads: 'acne',
  Whiteheads: 'acne',
  Wrinkles: 'wrinkles',
  'Dark-Spots': 'dark_spots',
  'Skin-Redness': 'redness',
};

export const BUCKETS: readonly BucketName[] = ['acne', 'wrinkles', 'dark_spots', 'redness'];

/** HIGH above 0.8, MODERATE above 0.6, else LOW (strict comparisons, as the original). */
export function severityOf(confidence: number): Exclude<Severity, 'NONE'> {
  return confidence > 0.8 ? 'HIGH' : confidence > 0.6 ? 'MODERATE' : 'LOW';
}

/**
 * The four buckets from the 10 normalised class scores. A bucket's confidence is the MAX over
 * its detected classes (the original let the last class overwrite it); a bucket with no class
 * at ≥ 0.1 is `{ detected: false, severity: 'NONE', confidence: 0 }`.
 */
export function bucketsFromScores(scores: ArrayLike<number>, classes: readonly string[]): ChainResult['buckets'] {
  if (scores.length !== classes.length) throw new RangeError(`${scores.length} scores for ${classes.length} classes`);
  const best: Record<BucketName, number> = { acne: -1, wrinkles: -1, dark_spots: -1, redness: -1 };
  classes.forEach((name, c) => {
    const bucket = BUCKET_OF[name];
    const s = scores[c]!;
    if (bucket && s >= DETECTED_AT && s > best[bucket]) best[bucket] = s;
  });
  const out = {} as ChainResult['buckets'];
  for (const b of BUCKETS) {
    const s = best[b];
    out[b] = s >= 0 ? { detected: true, severity: severityOf(s), confidence: s } : { detected: false, severity: 'NONE', confidence: 0 };
  }
  return out;
}

export type UserFields = Partial<Record<UserField, string | number>>;

export interface ChainImage extends ImageFile {
  /** This person's fields; missing ones come from `userFields`, then the original's defaults. */
  userFields?: UserFields;
}

export interface ChainOptions extends ImageRunOptions {
  /** Fields for every image without its own (default: the original's: age 25, Female, …). */
  userFields?: UserFields;
  /** Detector box threshold (default 0.1, the original's). */
  confidence?: number;
  /** Category values outside the vocabularies (default: alcohol `No` read as `Low`, as derived fusion). */
  categoryMap?: CategoryMap;
}

const RAW_INDEX: ReadonlyMap<string, number> = new Map(RAW_COLUMNS.map((c, i) => [c, i]));

/** Column k of the context model's input ← feature FEATURES[order[k]]; a feature the chain cannot give is a ConfigurationError. */
function featureOrder(m: OpenedModel): number[] {
  return m.card.input.features.map((f) => {
    const i = FEATURES.indexOf(f);
    if (i < 0) {
      throw new ConfigurationError(`model ${m.display} takes feature \`${f}\`, which the chain does not produce (it gives ${FEATURES.join(', ')})`, {
        file: m.display,
      });
    }
    return i;
  });
}

/** One image's scores, as the context-correction model's input is built from them. */
export interface ContextRow {
  /** Image id, named in errors. */
  id: string;
  /** The 10 normalised detector class scores (tr_p0..tr_p9). */
  troubles: ArrayLike<number>;
  /** Skin-type probabilities (sk_p0..sk_p2). */
  skinProbs: ArrayLike<number>;
  /** The predicted skin-type class name (Dry, Normal, Oily): the skin_type field when none is given. */
  skinLabel: string;
  userFields?: UserFields;
}

/**
 * The context-correction model's input rows (n × its features, in its card's order), built as
 * derived fusion builds its rows: user fields (the row's, then `userFields`, then the original's
 * defaults; skin type defaults to the predicted one), tr_p0..9 and sk_p0..2, one-hot encoded.
 * A value the schema refuses (age 200) is a DataError naming the image and the field.
 */
export function contextFeatures(
  model: OpenedModel,
  rows: readonly ContextRow[],
  o: { userFields?: UserFields; categoryMap?: CategoryMap } = {},
): Float32Array {
  const order = featureOrder(model);
  const categoryMap = o.categoryMap ?? derivedCategoryMap({});
  const x = new Float32Array(rows.length * order.length);
  rows.forEach((r, k) => {
    const field = (c: UserField): string => {
      const v = r.userFields?.[c] ?? o.userFields?.[c];
      if (v !== undefined && v !== '') return String(v);
      return c === 'skin_type' ? r.skinLabel : DEFAULT_USER_FIELDS[c];
    };
    const cells = RAW_COLUMNS.map((c) => {
      if (c === TARGET_COLUMN) return '0';
      if (/^tr_p\d$/.test(c)) return String(r.troubles[Number(c.slice(4))] ?? 0);
      if (/^sk_p\d$/.test(c)) return String(r.skinProbs[Number(c.slice(4))] ?? 0);
      return field(c as UserField);
    });
    const at = { file: `user fields of image ${r.id}`, line: 1 };
    const row = encodeRow(cells, RAW_INDEX, categoryMap, at);
    if (isIssue(row)) throw new DataError(`image ${r.id}: ${row.detail}`, { file: at.file, ...(row.field ? { field: row.field } : {}) });
    order.forEach((i, j) => (x[k * order.length + j] = row.features[i]!));
  });
  return x;
}

interface Pending {
  result: { id: string } & Omit<ChainResult, 'context'>;
  row: ContextRow;
}

/**
 * Run the chain over image files: per image, detector and skin-type models on the same decode,
 * then context correction on the fusion features (user fields joined with the model scores),
 * then the buckets. Results in input order; batches of images go through each model at once.
 */
export async function* analyseImages(
  models: ChainModels,
  images: AsyncIterable<ChainImage> | Iterable<ChainImage>,
  o: ChainOptions,
): AsyncGenerator<{ id: string } & ChainResult> {
  const { detector, skinType, contextCorrection } = models;
  if (detector.card.task !== 'object-detection') throw new ConfigurationError(`model ${detector.display} is not a detector (${detector.card.task})`, { file: detector.display });
  if (skinType.card.task !== 'image-classification') throw new ConfigurationError(`model ${skinType.display} is not an image classifier (${skinType.card.task})`, { file: skinType.display });
  const detClasses = detector.card.classes.map((c) => c.name);
  const skClasses = skinType.card.classes.map((c) => c.name);
  if (contextCorrection) featureOrder(contextCorrection); // fail before any image is decoded
  const confidence = o.confidence ?? DEFAULT_CONFIDENCE;
  const batchSize = o.batchSize ?? 64;
  let pending: Pending[] = [];

  async function* flush(): AsyncGenerator<{ id: string } & ChainResult> {
    const batch = pending;
    pending = [];
    if (!batch.length) return;
    if (!contextCorrection) {
      yield* batch.map((p) => p.result);
      return;
    }
    const features = contextFeatures(contextCorrection, batch.map((p) => p.row), {
      ...(o.userFields ? { userFields: o.userFields } : {}),
      ...(o.categoryMap ? { categoryMap: o.categoryMap } : {}),
    });
    const probs = await classifyRows(contextCorrection, features, batch.length, o);
    const c = contextCorrection.card.classes.length;
    const f = features.length / batch.length;
    for (const [r, p] of batch.entries()) {
      const row = probs.slice(r * c, (r + 1) * c);
      let best = 0;
      for (let k = 1; k < c; k++) if (row[k]! > row[best]!) best = k;
      yield { ...p.result, context: { classId: contextCorrection.card.classes[best]!.id, probs: row, features: features.slice(r * f, (r + 1) * f) } };
    }
  }

  for await (const r of runModelsOnImages([detector, skinType], images, o)) {
    const [det, sk] = r.outputs as [(typeof r.outputs)[0], (typeof r.outputs)[0]];
    const scores = detectorClassScores({ data: det.output, channels: det.dims[0]!, anchors: det.dims[1]! }, confidence);
    const skp = isProbabilities(sk.output) ? Float64Array.from(sk.output) : softmax(sk.output);
    let best = 0;
    for (let k = 1; k < skp.length; k++) if (skp[k]! > skp[best]!) best = k;
    const troubles: Record<string, number> = {};
    detClasses.forEach((name, c) => (troubles[name] = scores[c]!));
    const probs: Record<string, number> = {};
    skClasses.forEach((name, c) => (probs[name] = skp[c]!));
    const result = {
      id: r.item.id,
      troubles,
      detected: detClasses.filter((_, c) => scores[c]! >= DETECTED_AT),
      skinType: { label: skClasses[best]!.toUpperCase(), probs },
      buckets: bucketsFromScores(scores, detClasses),
    };
    const row: ContextRow = { id: r.item.id, troubles: scores, skinProbs: skp, skinLabel: skClasses[best]!, ...(r.item.userFields ? { userFields: r.item.userFields } : {}) };
    pending.push({ result, row });
    if (pending.length >= batchSize) yield* flush();
  }
  yield* flush();
}
