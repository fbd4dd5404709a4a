// The `head` trainer as the `train` stage and `skintwin train head` call it: its params, the
// extractor choice (built-in or a user's backbone), one fit for classification and detection
// models, and the markdown summary of the resulting card.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigurationError, DataError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import type { ParamSpec } from '../../core/params.ts';
import type { ImageTensorMeta } from '../../data/images/tensor-file.ts';
import type { ProviderChoice } from '../../inference/session.ts';
import type { ModelCard } from '../card.ts';
import { hashData } from '../trainers.ts';
import { fitClassificationHead, HEAD_DEFAULTS } from './classifier.ts';
import { backboneExtractor, builtinExtractor } from './extractor.ts';
import type { FeatureExtractor, HeadFitOptions, HeadFitResult, HeadParams } from './types.ts';

export { fitClassificationHead, HEAD_DEFAULTS } from './classifier.ts';
export { backboneExtractor, builtinExtractor, computeFeatures } from './extractor.ts';
export type { FeatureExtractor, FeatureMap, HeadFitOptions, HeadFitResult, HeadParams } from './types.ts';

/** Image models the head trainer trains, and their task. */
export const HEAD_MODELS = { 'skin-type': 'classification', 'skin-detection': 'detection' } as const;

/**
 * The head-only params. They have no spec default so that `validate` can tell a head param given
 * to another trainer; the head's defaults (HEAD_DEFAULTS) are filled in by `headParams`.
 */
export const headParamSpecs = {
  head: { type: 'string', description: 'head: `linear` (softmax regression / 1×1 conv) or `mlp` (one hidden ReLU layer); default `linear`', choices: ['linear', 'mlp'] as const },
  'hidden-units': { type: 'integer', description: `head: hidden units of the \`mlp\` head (default ${HEAD_DEFAULTS['hidden-units']})`, min: 1, max: 4096 },
  epochs: { type: 'integer', description: `head: most training epochs (default ${HEAD_DEFAULTS.epochs})`, min: 1, max: 100_000 },
  'batch-size': { type: 'integer', description: `head: images per training step, and per extractor run (at most 8 on CPU) (default ${HEAD_DEFAULTS['batch-size']})`, min: 1, max: 4096 },
  'head-learning-rate': { type: 'number', description: `head: Adam step size (default ${HEAD_DEFAULTS['head-learning-rate']})`, min: 0, max: 10 },
  'weight-decay': { type: 'number', description: `head: L2 weight decay on the head's weights (default ${HEAD_DEFAULTS['weight-decay']})`, min: 0 },
  patience: { type: 'integer', description: `head: epochs without a better validation log loss before stopping (default ${HEAD_DEFAULTS.patience})`, min: 1 },
  backbone: { type: 'string', description: 'head: a backbone ONNX file (input: the ImageNet-normalised image [N, 3, S, S]) to use as the feature extractor instead of the built-in one; needs `backbone-output`' },
  'backbone-output': { type: 'string', description: 'head: the backbone tensor to cut at, a feature map [N, C, H, W]' },
} as const satisfies Readonly<Record<string, ParamSpec>>;

export const executionProviderSpec = {
  type: 'string',
  description: 'head: `auto` (CUDA where onnxruntime has it and a GPU is visible, else CPU), `cpu` or `cuda`',
  choices: ['auto', 'cpu', 'cuda'] as const,
  default: 'auto',
} as const satisfies ParamSpec;

export type HeadParamName = keyof typeof headParamSpecs;
export const HEAD_PARAM_NAMES = Object.keys(headParamSpecs) as HeadParamName[];

/** The head's params from parsed values (absent ones take HEAD_DEFAULTS); `seed` is shared with gbdt. */
export function headParams(p: Partial<Record<HeadParamName, unknown>> & { seed?: number }): HeadParams {
  const pick = <K extends keyof HeadParams>(k: K): HeadParams[K] => (p[k as HeadParamName] ?? HEAD_DEFAULTS[k]) as HeadParams[K];
  const params: HeadParams = {
    head: pick('head'),
    'hidden-units': pick('hidden-units'),
    epochs: pick('epochs'),
    'batch-size': pick('batch-size'),
    'head-learning-rate': pick('head-learning-rate'),
    'weight-decay': pick('weight-decay'),
    patience: pick('patience'),
    seed: p.seed ?? HEAD_DEFAULTS.seed,
  };
  if (typeof p.backbone === 'string' && p.backbone) params.backbone = p.backbone;
  if (typeof p['backbone-output'] === 'string' && p['backbone-output']) params['backbone-output'] = p['backbone-output'];
  return params;
}

/** Cross-field checks on head params (every problem at once); `where` prefixes the messages. */
export function headParamProblems(p: Partial<Record<HeadParamName, unknown>>, where: string): ConfigurationError[] {
  const problems: ConfigurationError[] = [];
  if (p.backbone !== undefined && p['backbone-output'] === undefined) {
    problems.push(new ConfigurationError(`${where}: param \`backbone\` needs \`backbone-output\` (the backbone tensor to cut at)`, { field: 'backbone-output' }));
  }
  if (p['backbone-output'] !== undefined && p.backbone === undefined) {
    problems.push(new ConfigurationError(`${where}: param \`backbone-output\` is only used with \`backbone\``, { field: 'backbone-output' }));
  }
  if (p['hidden-units'] !== undefined && p.head !== 'mlp') {
    problems.push(new ConfigurationError(`${where}: param \`hidden-units\` is for \`head: mlp\` only`, { field: 'hidden-units' }));
  }
  if (p['head-learning-rate'] !== undefined && !((p['head-learning-rate'] as number) > 0)) {
    problems.push(new ConfigurationError(`${where}: param \`head-learning-rate\` must be > 0`, { field: 'head-learning-rate' }));
  }
  return problems;
}

export interface TrainHeadModelOptions {
  model: string;
  /** Prepared image folder: absolute and as shown. */
  dataDir: string;
  dataDisplay: string;
  outDir: string;
  outDisplay: string;
  params: HeadParams;
  /** Backbone path: absolute (resolved by the caller) and as shown. */
  backbonePath?: string;
  provider: ProviderChoice;
  commit: string | null;
  now(): Date;
  logger: Logger;
  signal?: AbortSignal;
}

/** The detection fit, loaded only for skin-detection. */
async function detectionFit(): Promise<(o: HeadFitOptions) => Promise<HeadFitResult>> {
  return (await import('./detection.ts')).fitDetectionHead;
}

/** The prepared split's meta.json, or a DataError saying the dep is not a prepared image folder. */
async function readMeta(dataDir: string, dataDisplay: string): Promise<ImageTensorMeta> {
  const file = `${dataDisplay}/train/meta.json`;
  try {
    return JSON.parse(await readFile(join(dataDir, 'train', 'meta.json'), 'utf8')) as ImageTensorMeta;
  } catch (error) {
    const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing: the data is not a prepared image folder (prepare-data with an image task)' : (error as Error).message;
    throw new DataError(`cannot read the prepared image meta: ${why}`, { file });
  }
}

/** Pick the extractor, hash the data, and fit the head that the model's task needs. */
export async function trainHeadModel(o: TrainHeadModelOptions): Promise<HeadFitResult> {
  const task = HEAD_MODELS[o.model as keyof typeof HEAD_MODELS];
  if (!task) throw new ConfigurationError(`the head trainer trains image models (${Object.keys(HEAD_MODELS).join(', ')}), not \`${o.model}\``, { field: 'model' });
  const meta = await readMeta(o.dataDir, o.dataDisplay);
  const want = task === 'classification' ? 'classification' : 'detection';
  if (meta.task !== want) {
    throw new ConfigurationError(`\`${o.model}\` needs a prepared ${want} image folder; this one is for task \`${meta.task}\``, { file: `${o.dataDisplay}/train/meta.json`, field: 'model' });
  }
  const size = meta.shape[1];
  let extractor: FeatureExtractor;
  if (o.params.backbone) {
    extractor = await backboneExtractor(o.backbonePath ?? o.params.backbone, o.params.backbone, o.params['backbone-output'] ?? '', size);
  } else {
    if (size % 16 !== 0) {
      throw new ConfigurationError(`the built-in extractor needs an image size divisible by 16; the data was prepared at ${size}`, { file: `${o.dataDisplay}/train/meta.json`, field: 'size' });
    }
    extractor = builtinExtractor(size, { mean: meta.mean, std: meta.std });
  }
  const fit = task === 'classification' ? fitClassificationHead : await detectionFit();
  return fit({
    model: o.model,
    dataDir: o.dataDir,
    dataDisplay: o.dataDisplay,
    outDir: o.outDir,
    outDisplay: o.outDisplay,
    params: o.params,
    extractor,
    provider: o.provider,
    trainingData: { path: o.dataDisplay, ...(await hashData(o.dataDir)) },
    commit: o.commit,
    now: () => o.now(),
    logger: o.logger,
    ...(o.signal ? { signal: o.signal } : {}),
  });
}

function fmt(x: number | undefined, digits = 4): string {
  return x === undefined ? '' : Number.isFinite(x) ? x.toFixed(digits) : String(x);
}

/** Markdown for a person: validation metrics, extractor, provider, ONNX sha256. */
export function headSummary(card: ModelCard, outRel: string): string {
  const v = card.metrics.validation;
  const ex = card.extractor;
  const rows =
    card.task === 'object-detection'
      ? [`| mAP@0.5 | ${fmt(v?.map50)} | |`, ...(v?.map50_95 !== undefined ? [`| mAP@0.5:0.95 | ${fmt(v.map50_95)} | |`] : [])]
      : [
          `| accuracy | ${fmt(v?.accuracy)} | ${fmt(v?.baselineAccuracy)} |`,
          `| macro F1 | ${fmt(v?.f1Macro)} | |`,
          `| log loss | ${fmt(v?.logLoss)} | |`,
        ];
  const extractor = !ex
    ? 'unknown'
    : ex.kind === 'builtin'
      ? `built-in (${ex.channels} channels, stride ${ex.stride})`
      : `backbone \`${ex.backbone}\` cut at \`${ex.output}\` (${ex.channels} channels, stride ${ex.stride})`;
  return [
    `### Trained \`${card.model}\` (head) → \`${outRel}/model.onnx\``,
    '',
    `${card.classes.length} classes, ${card.trainingData.trainRows} training images, ${card.trainer.params.head ?? 'linear'} head, ` +
      `${card.trainer.rounds ?? '?'} epochs (best ${card.trainer.bestIteration ?? '?'}), ${fmt(card.training.seconds, 1)} s on ${card.training.executionProvider}.`,
    '',
    `| metric (validation) | model | ${card.task === 'object-detection' ? '' : 'majority-class baseline'} |`,
    '|---|---:|---:|',
    ...rows,
    `| images | ${v?.rows ?? ''} | |`,
    '',
    `Extractor: ${extractor}.`,
    '',
    `ONNX sha256 \`${card.onnx.sha256}\`; onnxruntime matches the trainer within ${card.onnx.maxAbsDiffVsTrainer?.toExponential(1) ?? '?'} on the validation split.`,
  ].join('\n');
}
