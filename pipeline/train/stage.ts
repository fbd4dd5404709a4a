// Stage kind `train`: Train a model (gbdt, head or command trainer) and write model.onnx with its model card.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigurationError, DataError } from '../core/errors.ts';
import { exists } from '../core/fs.ts';
import type { ParamSpecs, ParamsOf } from '../core/params.ts';
import { defineStage, type StageContext, type StageResult } from '../core/stage.ts';
import { FEATURES, TARGET_COLUMN } from '../data/fusion/schema.ts';
import { cardSummary } from './card.ts';
import { runCommandTrainer, taskSpec, writeCommandCard } from './command.ts';
import { gbdtParamSpecs, type GbdtParams } from './gbdt/index.ts';
import { executionProviderSpec, HEAD_MODELS, HEAD_PARAM_NAMES, headParamProblems, headParamSpecs, headParams, headSummary, trainHeadModel } from './head/index.ts';
import { codeCommit, fitTabularGbdt, fusionPreprocessing, hashData, readNumericTable } from './trainers.ts';

export const MODEL_NAMES = ['skin-detection', 'skin-type', 'context-correction'] as const;
export const TRAINERS = ['gbdt', 'head', 'command'] as const;

const gbdtParamNames = Object.keys(gbdtParamSpecs) as (keyof typeof gbdtParamSpecs)[];

const TRAIN_PARAMS = {
  model: { type: 'string', description: 'Registry name of the model', choices: MODEL_NAMES, required: true },
  trainer: { type: 'string', description: 'Trainer: `gbdt` (tabular gradient-boosted trees), `head` or `command`', choices: TRAINERS, required: true },
  target: { type: 'string', description: 'gbdt: target column of the prepared tables', default: TARGET_COLUMN },
  ...gbdtParamSpecs,
  command: { type: 'string', description: 'command: the training program and its arguments, a shell command run from the repository root (contract: docs/train.md)' },
  'timeout-minutes': { type: 'number', description: 'command: minutes the training program may run before its process group is killed', default: 360 },
  ...headParamSpecs,
  'execution-provider': executionProviderSpec,
} as const satisfies ParamSpecs;

export const trainStage = defineStage({
  kind: 'train',
  title: 'Train a model (gbdt, head or command trainer) and write model.onnx with its model card',
  params: TRAIN_PARAMS,
  outputs: {
    'model-dir': 'Directory with model.onnx, model.json and model-card.json',
    onnx: 'Path of model.onnx',
    'onnx-sha256': 'sha256 of model.onnx',
    card: 'Path of model-card.json',
    'val-accuracy': 'Validation accuracy',
    'val-log-loss': 'Validation log loss',
    'val-map50': 'Detection heads: validation mAP@0.5 (empty for classifiers)',
  },
  codePaths: ['train', 'data/fusion', 'data/images', 'inference', 'onnx'],
  validate(params, stage) {
    const problems: ConfigurationError[] = [];
    // A head's backbone may be a second dep, so that a new backbone file retrains.
    const backboneDep = params.trainer === 'head' && params.backbone !== undefined && stage.deps.length === 2 && stage.deps[1] === params.backbone;
    if (stage.deps.length !== 1 && !backboneDep) {
      problems.push(
        new ConfigurationError(`${stage.name}: train needs exactly one dep (the prepared data folder)${params.backbone !== undefined ? ', and may list the `backbone` file second' : ''}`, { field: 'deps' }),
      );
    }
    if (stage.outs.length !== 1) problems.push(new ConfigurationError(`${stage.name}: train needs exactly one out (the model folder)`, { field: 'outs' }));
    if (params.trainer === 'gbdt' && params.model !== 'context-correction') {
      problems.push(
        new ConfigurationError(`${stage.name}: the gbdt trainer trains tabular models; \`${params.model}\` is an image model (use \`trainer: head\` or \`command\`)`, {
          field: 'trainer',
        }),
      );
    }
    if (params.trainer === 'command' && !params.command?.trim()) {
      problems.push(new ConfigurationError(`${stage.name}: \`trainer: command\` needs param \`command\` (the training program to run)`, { field: 'command' }));
    }
    if (params.trainer !== 'command' && params.command !== undefined) {
      problems.push(new ConfigurationError(`${stage.name}: param \`command\` is for \`trainer: command\` only`, { field: 'command' }));
    }
    if (params.trainer === 'head') {
      if (!(params.model in HEAD_MODELS)) {
        problems.push(new ConfigurationError(`${stage.name}: the head trainer trains image models (${Object.keys(HEAD_MODELS).join(', ')}); \`${params.model}\` is tabular (use \`trainer: gbdt\`)`, { field: 'trainer' }));
      }
      problems.push(...headParamProblems(params, stage.name));
    } else {
      for (const name of HEAD_PARAM_NAMES) {
        if (params[name] !== undefined) problems.push(new ConfigurationError(`${stage.name}: param \`${name}\` is for \`trainer: head\` only`, { field: name }));
      }
    }
    if (!(params['timeout-minutes'] > 0)) problems.push(new ConfigurationError(`${stage.name}: param \`timeout-minutes\` must be > 0`, { field: 'timeout-minutes' }));
    if (params.subsample <= 0) problems.push(new ConfigurationError(`${stage.name}: param \`subsample\` must be > 0`, { field: 'subsample' }));
    if (params['colsample-bytree'] <= 0) problems.push(new ConfigurationError(`${stage.name}: param \`colsample-bytree\` must be > 0`, { field: 'colsample-bytree' }));
    if (problems.length) throw ConfigurationError.all(problems);
  },
  async run(ctx) {
    const p = ctx.params;
    if (p.trainer === 'command') return runCommand(ctx, p.command ?? '', p['timeout-minutes'] * 60_000);
    if (p.trainer === 'head') return runHead(ctx);
    const dep = ctx.deps[0]!;
    const outRel = ctx.outs[0]!;
    const outDir = ctx.out(outRel);
    if (!(await exists(ctx.path(dep)))) throw new DataError('prepared data folder not found (run the prepare-data stage first)', { file: dep });

    // Feature order and one-hot rules come from the prepared folder's schema.json.
    const schemaFile = join(dep, 'schema.json');
    let schema: { features?: unknown; categoryMap?: unknown };
    try {
      schema = JSON.parse(await readFile(ctx.path(schemaFile), 'utf8')) as typeof schema;
    } catch (error) {
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing: the dep is not a prepared tabular folder (prepare-data task tabular)' : (error as Error).message;
      throw new DataError(`cannot read the prepared schema: ${why}`, { file: schemaFile });
    }
    const features = Array.isArray(schema.features) && schema.features.every((f) => typeof f === 'string') ? (schema.features as string[]) : undefined;
    if (!features?.length) throw new DataError('schema.json has no `features` list', { file: schemaFile });

    const read = async (split: 'train' | 'val') => {
      const rel = join(dep, `${split}.csv`);
      if (!(await exists(ctx.path(rel)))) throw new DataError(`${split} split missing`, { file: rel });
      return readNumericTable(ctx.path(rel), rel, { features, target: p.target, targetRequired: true, allowMissing: false, keepIds: false, signal: ctx.signal });
    };
    const train = await read('train');
    const val = await read('val');

    const isFusion = features.length === FEATURES.length && features.every((f, i) => f === FEATURES[i]);
    const categoryMap = (schema.categoryMap && typeof schema.categoryMap === 'object' ? schema.categoryMap : {}) as Record<string, Record<string, string>>;
    const gbdtParams = Object.fromEntries(gbdtParamNames.map((k) => [k, p[k]]).filter(([, v]) => v !== undefined)) as Partial<GbdtParams>;
    const dataHash = await hashData(ctx.path(dep));
    const result = await fitTabularGbdt({
      model: p.model,
      train,
      val,
      params: gbdtParams,
      outDir,
      outDisplay: outRel,
      preprocessing: isFusion
        ? fusionPreprocessing(p.target, categoryMap)
        : { type: 'numeric', description: 'The prepared feature columns as they are', target: p.target },
      trainingData: { path: dep, ...dataHash },
      commit: await codeCommit(ctx.env, ctx.root),
      now: () => ctx.now(),
      logger: ctx.logger,
      signal: ctx.signal,
    });
    const v = result.card.metrics.validation;
    ctx.logger.info(
      `${ctx.name}: validation accuracy ${v.accuracy.toFixed(4)} (majority baseline ${v.baselineAccuracy.toFixed(4)}), log loss ${v.logLoss.toFixed(4)}; ` +
        `onnxruntime matches the trainer within ${result.card.onnx.maxAbsDiffVsTrainer?.toExponential(1)}`,
    );
    return {
      outputs: {
        'model-dir': outRel,
        onnx: `${outRel}/model.onnx`,
        'onnx-sha256': result.saved.onnxSha256,
        card: `${outRel}/model-card.json`,
        'val-accuracy': String(v.accuracy),
        'val-log-loss': String(v.logLoss),
        'val-map50': '',
      },
      summary: cardSummary(result.card, outRel),
      reports: [`${outRel}/model-card.json`],
    };
  },
});

/** `trainer: head`: a head on a frozen extractor, merged into one model.onnx (skin-type, skin-detection). */
async function runHead(ctx: StageContext<ParamsOf<typeof TRAIN_PARAMS>>): Promise<StageResult> {
  const p = ctx.params;
  const dep = ctx.deps[0]!;
  const outRel = ctx.outs[0]!;
  if (!(await exists(ctx.path(dep)))) throw new DataError('prepared data folder not found (run the prepare-data stage first)', { file: dep });
  const params = headParams(p);
  const result = await trainHeadModel({
    model: p.model,
    dataDir: ctx.path(dep),
    dataDisplay: dep,
    outDir: ctx.out(outRel),
    outDisplay: outRel,
    params,
    ...(params.backbone ? { backbonePath: ctx.path(params.backbone) } : {}),
    provider: p['execution-provider'],
    commit: await codeCommit(ctx.env, ctx.root),
    now: () => ctx.now(),
    logger: ctx.logger,
    signal: ctx.signal,
  });
  const v = result.card.metrics.validation;
  const detection = result.card.task === 'object-detection';
  return {
    outputs: {
      'model-dir': outRel,
      onnx: `${outRel}/model.onnx`,
      'onnx-sha256': result.onnxSha256,
      card: `${outRel}/model-card.json`,
      'val-accuracy': detection ? '' : String(v?.accuracy ?? ''),
      'val-log-loss': detection ? '' : String(v?.logLoss ?? ''),
      'val-map50': detection ? String(v?.map50 ?? '') : '',
    },
    summary: headSummary(result.card, outRel),
    reports: [`${outRel}/model-card.json`],
  };
}

/** `trainer: command` inside the stage; `timeoutMs` is a seam so tests need not wait minutes. */
export async function runCommand(
  ctx: StageContext<{ model: string; target: string; 'timeout-minutes': number }>,
  command: string,
  timeoutMs: number,
): Promise<StageResult> {
  const p = ctx.params;
  const dep = ctx.deps[0]!;
  const outRel = ctx.outs[0]!;
  const outDir = ctx.out(outRel);
  if (!(await exists(ctx.path(dep)))) throw new DataError('prepared data folder not found (run the prepare-data stage first)', { file: dep });
  const spec = await taskSpec(p.model, ctx.path(dep), dep, p.target, ctx.signal);
  const params = { command, 'timeout-minutes': p['timeout-minutes'], target: p.target, seed: ctx.settings.seed };
  const startedAt = ctx.now();
  ctx.logger.info(`${ctx.name}: running the trainer program (${spec.model}, ${spec.task}, ${spec.classes.length} classes): ${command}`);
  const result = await runCommandTrainer({
    command,
    spec,
    dataDir: ctx.path(dep),
    outDir,
    outDisplay: outRel,
    paramsFile: join(ctx.tmpDir, 'skintwin-params.json'),
    params,
    cwd: ctx.root,
    env: ctx.env,
    timeoutMs,
    logger: ctx.logger,
    signal: ctx.signal,
  });
  await writeCommandCard(outDir, {
    spec,
    result,
    command,
    params,
    dataPath: dep,
    dataHash: await hashData(ctx.path(dep)),
    commit: await codeCommit(ctx.env, ctx.root),
    startedAt,
    finishedAt: ctx.now(),
  });
  const m = result.metrics;
  const metricList = Object.entries(m).map(([k, v]) => `| \`${k}\` | ${v} |`);
  ctx.logger.info(`${ctx.name}: the trainer's output meets the contract; metrics ${JSON.stringify(m)}`);
  return {
    outputs: {
      'model-dir': outRel,
      onnx: `${outRel}/model.onnx`,
      'onnx-sha256': result.onnxSha256,
      card: `${outRel}/model-card.json`,
      'val-accuracy': String(m.val_accuracy ?? m.accuracy ?? ''),
      'val-log-loss': String(m.val_log_loss ?? m.log_loss ?? ''),
      'val-map50': String(m.val_map50 ?? m.map50 ?? ''),
    },
    summary: [
      `### Trained \`${spec.model}\` (command) → \`${outRel}/model.onnx\``,
      '',
      '```sh',
      command,
      '```',
      '',
      `Checked against the contract: ${spec.task}, input \`${result.input.name}\` [${result.input.shape.join(', ')}], smoke inference passed. ONNX sha256 \`${result.onnxSha256}\`.`,
      '',
      '| metric (metrics.json) | value |',
      '|---|---:|',
      ...metricList,
    ].join('\n'),
    reports: [`${outRel}/model-card.json`],
  };
}
