// The model card (`model-card.json` next to every `model.onnx`): its type, the schema every card is
// checked against before it is written, reading a card back, and the markdown summary of a card.

import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { DataError } from '../core/errors.ts';
import { writeJsonAtomic } from '../core/fs.ts';
import schema from './model-card.schema.json' with { type: 'json' };

export const MODEL_CARD_FILE = 'model-card.json';
export const MODEL_CARD_FORMAT = 'skintwin-model-card';

export interface CardClass {
  /** Probability column. */
  index: number;
  /** The ONNX `label` value of the class (the original class id). */
  id: number;
  name: string;
}

export interface TensorSpec {
  name: string;
  dtype: 'float32' | 'int64';
  shape: (number | string)[];
}

export type CardPreprocessing =
  | {
      type: 'fusion-one-hot';
      description?: string;
      target: string;
      rawColumns: string[];
      numericColumns: string[];
      numericRanges?: Record<string, number[]>;
      categories: Record<string, { levels: string[]; dropped: string }>;
      categoryMap: Record<string, Record<string, string>>;
    }
  | { type: 'numeric'; description?: string; target: string; missing?: string }
  | { type: 'image'; description?: string; size: number; resize: 'fill' | 'letterbox'; padValue?: number; mean: number[]; std: number[] }
  | { type: 'trainer-defined'; description?: string };

export interface ModelCard {
  format: typeof MODEL_CARD_FORMAT;
  version: 1;
  model: string;
  task: 'tabular-classification' | 'image-classification' | 'object-detection';
  createdAt: string;
  classes: CardClass[];
  input: { name: string; dtype: 'float32' | 'uint8'; shape: (number | string)[]; features: string[] };
  preprocessing: CardPreprocessing;
  /** Classifiers: probabilities (and label for tabular ones); detectors: detections in the YOLOv8 layout [N, 4 + classes, anchors]. */
  output: { label?: TensorSpec; probabilities?: TensorSpec; detections?: TensorSpec };
  trainer: { name: 'gbdt' | 'head' | 'command'; objective?: string; params: Record<string, number | string | boolean | null>; rounds?: number; bestIteration?: number };
  trainingData: { path: string; sha256: string; files: number; trainRows: number; valRows: number };
  code: { commit: string | null };
  training: { startedAt: string; seconds: number; executionProvider: string };
  metrics: {
    validation?: { rows: number; accuracy?: number; logLoss?: number; baselineAccuracy?: number; f1Macro?: number; map50?: number; map50_95?: number };
    reported?: Record<string, number>;
  };
  /** Head trainer: the frozen feature extractor merged into model.onnx. */
  extractor?: { kind: 'builtin' | 'backbone'; description?: string; backbone?: string; backboneSha256?: string; output: string; channels: number; stride: number };
  featureImportance: { feature: string; gain: number; cover: number; splits?: number; gainShare?: number }[];
  onnx: { file: string; sha256: string; bytes: number; maxAbsDiffVsTrainer?: number };
}

/** The card the gbdt trainer writes: tabular preprocessing, label + probabilities, validation accuracy and log loss. */
export type TabularModelCard = ModelCard & {
  preprocessing: Extract<CardPreprocessing, { target: string }>;
  output: { label: TensorSpec; probabilities: TensorSpec };
  metrics: { validation: { rows: number; accuracy: number; logLoss: number; baselineAccuracy: number } };
};

/** The shipped JSON Schema of a model card. */
export const modelCardSchema: Readonly<Record<string, unknown>> = schema;

let validator: ValidateFunction | undefined;

/** Schema problems of a card, one line each (empty when it is valid). */
export function modelCardProblems(card: unknown): string[] {
  validator ??= new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema);
  if (validator(card)) return [];
  return (validator.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? 'is invalid'}${e.params && 'allowedValues' in e.params ? ` (${JSON.stringify(e.params.allowedValues)})` : ''}`);
}

/**
 * Check a card against the schema and write it atomically. A card that does not fit is a bug in
 * the trainer, never something to write half-right.
 */
export async function writeModelCard(path: string, card: ModelCard): Promise<void> {
  const problems = modelCardProblems(card);
  if (problems.length) throw new Error(`model card does not match model-card.schema.json: ${problems.join('; ')}`);
  await writeJsonAtomic(path, card);
}

/** Read the card next to `model.onnx` (or at the given path), checked against the schema. */
export async function readModelCard(modelOrCard: string, display = modelOrCard): Promise<ModelCard> {
  const path = modelOrCard.endsWith('.json') ? modelOrCard : join(dirname(modelOrCard), MODEL_CARD_FILE);
  const shown = modelOrCard.endsWith('.json') ? display : join(dirname(display), MODEL_CARD_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    throw new DataError(`no model card next to the model (expected ${MODEL_CARD_FILE}: it gives the feature order and the classes)`, { file: shown });
  }
  let card: unknown;
  try {
    card = JSON.parse(text);
  } catch (error) {
    throw new DataError(`model card is not valid JSON: ${(error as Error).message}`, { file: shown });
  }
  const problems = modelCardProblems(card);
  if (problems.length) throw new DataError(`not a valid model card: ${problems.slice(0, 5).join('; ')}`, { file: shown });
  return card as ModelCard;
}

function fmt(x: number, digits = 4): string {
  return Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** Markdown for a person: metrics beside the majority-class baseline, and the top features by gain. */
export function cardSummary(card: TabularModelCard, outRel: string): string {
  const v = card.metrics.validation;
  const lines = [
    `### Trained \`${card.model}\` (${card.trainer.name}) → \`${outRel}/model.onnx\``,
    '',
    `${card.classes.length} classes, ${card.input.features.length} features, ${card.trainingData.trainRows} training rows, ` +
      `${card.trainer.rounds ?? '?'} rounds, ${fmt(card.training.seconds, 1)} s on ${card.training.executionProvider}.`,
    '',
    '| metric (validation) | model | majority-class baseline |',
    '|---|---:|---:|',
    `| accuracy | ${fmt(v.accuracy)} | ${fmt(v.baselineAccuracy)} |`,
    `| log loss | ${fmt(v.logLoss)} | |`,
    `| rows | ${v.rows} | |`,
    '',
    '| top features by gain | gain share | cover |',
    '|---|---:|---:|',
    ...card.featureImportance.slice(0, 10).map((f) => `| \`${f.feature}\` | ${fmt(f.gainShare ?? 0, 3)} | ${fmt(f.cover, 1)} |`),
    '',
    `ONNX sha256 \`${card.onnx.sha256}\`; onnxruntime matches the trainer within ${card.onnx.maxAbsDiffVsTrainer?.toExponential(1) ?? '?'} on the validation split.`,
  ];
  return lines.join('\n');
}
