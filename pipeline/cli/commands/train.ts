// `skintwin train gbdt --data table.csv --target <column> --out <dir> [--<gbdt param> <value> …]` and
// `skintwin train head --data <prepared image folder> --model skin-type --out <dir> [--<head param> …]`:
// a trainer run directly, outside the pipeline, with the stage's params and outputs.

import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ConfigurationError, ExitCode, NotImplementedError } from '../../core/errors.ts';
import { parseParams } from '../../core/params.ts';
import { siblingTempPath } from '../../core/fs.ts';
import type { ParamSpec } from '../../core/params.ts';
import { parseCategoryMap } from '../../data/fusion/schema.ts';
import { splitOf } from '../../data/prepare/split.ts';
import { cardSummary, MODEL_CARD_FILE } from '../../train/card.ts';
import { gbdtParamSpecs, parseGbdtParams } from '../../train/gbdt/index.ts';
import { checkWritableOut } from '../../train/head/merge.ts';
import { executionProviderSpec, HEAD_MODELS, headParamProblems, headParamSpecs, headParams, headSummary, trainHeadModel } from '../../train/head/index.ts';
import {
  codeCommit,
  fitTabularGbdt,
  fusionPreprocessing,
  hashData,
  isFusionHeader,
  readFusionTable,
  readHeader,
  readNumericTable,
  type FeatureTable,
} from '../../train/trainers.ts';
import { printJson } from '../common.ts';
import type { CliCommand } from '../types.ts';

function flagList(specs: Readonly<Record<string, ParamSpec>>): string {
  return Object.entries(specs)
    .map(([name, spec]) => `  --${name.padEnd(22)} ${spec.description}${spec.default !== undefined ? ` (default ${JSON.stringify(spec.default)})` : ''}`)
    .join('\n');
}
const gbdtFlags = flagList(gbdtParamSpecs);
/** `skintwin train head` params: the stage's head params, the shared seed and the execution provider. */
const headCliSpecs = { ...headParamSpecs, seed: gbdtParamSpecs.seed, 'execution-provider': executionProviderSpec } as const;
const headFlags = flagList(headCliSpecs);

/** Share of rows held out for validation (early stopping, the card's metrics). */
const VAL_FRACTION = 0.15;
const MODEL_FILES = ['model.onnx', 'model.json', MODEL_CARD_FILE];

/** Move a trainer's files from its staging folder into `outDir` once they are all written. */
async function moveIntoPlace(staging: string, outDir: string, files: readonly string[], shown: string): Promise<void> {
  try {
    await mkdir(outDir, { recursive: true });
    for (const f of files) await rename(join(staging, f), join(outDir, f));
  } catch (error) {
    throw new ConfigurationError(`cannot write the model there (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: shown, field: 'out' });
  }
}

/** Rows of `t` whose flag is set, as a new table. */
function subset(t: FeatureTable, keep: Uint8Array, want: number, file: string): FeatureTable {
  const F = t.featureNames.length;
  const n = keep.reduce((a, k) => a + (k === want ? 1 : 0), 0);
  const x = new Float32Array(n * F);
  const lines = new Int32Array(n);
  const ids: string[] = [];
  const targets: string[] = [];
  let j = 0;
  for (let i = 0; i < t.nRows; i++) {
    if (keep[i] !== want) continue;
    x.set(t.x.subarray(i * F, (i + 1) * F), j * F);
    lines[j] = t.lines[i]!;
    ids.push(t.ids[i]!);
    if (t.targets) targets.push(t.targets[i]!);
    j++;
  }
  return { file, x, nRows: n, featureNames: t.featureNames, targets: t.targets ? targets : undefined, ids, lines };
}

export const trainCommand: CliCommand = {
  name: 'train',
  summary: 'train a model directly from a CSV (gbdt), writing model.onnx, model.json and model-card.json',
  usage:
    'skintwin train gbdt --data <table.csv> --target <column> --out <dir> [--<param> <value> …]\n' +
    '       skintwin train head --data <prepared image folder> --model skin-type|skin-detection --out <dir> [--<param> <value> …]',
  description:
    'Reads a CSV with a header. A table with the fusion schema (age, gender, …, sk_p2) is one-hot encoded exactly as\n' +
    'the pipeline does; any other table must have numeric feature columns only (an `id` column is ignored, empty cells\n' +
    `are missing values). Rows are split ${100 - VAL_FRACTION * 100}/${VAL_FRACTION * 100} into train/validation by a hash of their content and the seed.\n` +
    'The ONNX file is checked against the trainer\'s own predictions before anything is written.\n' +
    '`train head` trains a head on a frozen ONNX feature extractor (built-in, or --backbone) from a folder written by\n' +
    'prepare-data (train/ and val/ splits), exactly as the pipeline\'s `trainer: head`; it writes model.onnx and model-card.json.\n' +
    'Trainers: gbdt and head (the command trainer runs inside the pipeline only).\n\ngbdt params:\n' +
    gbdtFlags +
    '\n\nhead params:\n' +
    headFlags,
  options: [
    { name: 'data', type: 'string', value: '<table.csv|folder>', description: 'gbdt: the training table (CSV with a header); head: the prepared image folder' },
    { name: 'target', type: 'string', value: '<column>', description: 'the target column (class ids or names)' },
    { name: 'out', type: 'string', value: '<dir>', description: 'folder for model.onnx, model.json and model-card.json (created; a previous model there is replaced)' },
    { name: 'model', type: 'string', value: '<name>', description: 'model name for the card (gbdt default: the out folder name; head: skin-type or skin-detection, required)' },
    { name: 'category-map', type: 'string', value: '<json>', description: 'fusion tables: map unknown category values, e.g. {"alcohol_consumption.Occasional":"Low"}' },
    { name: 'json', type: 'boolean', description: 'print the result as JSON on stdout' },
    { name: 'help', type: 'boolean', description: 'show this help' },
  ],
  allowUnknownFlags: true,
  async run(ctx) {
    const [trainer, ...more] = ctx.args.positionals;
    if (trainer === undefined) throw new ConfigurationError('`train` needs a trainer: `skintwin train gbdt --data <table.csv> --target <column> --out <dir>`');
    if (more.length) throw new ConfigurationError(`\`train\` takes one trainer name, got also \`${more[0]}\``);
    if (trainer === 'head') return runHeadCli(ctx);
    if (trainer === 'command') {
      throw new NotImplementedError('`skintwin train command`: the command trainer runs inside the pipeline only (`trainer: command` in pipeline.yaml, docs/train.md)');
    }
    if (trainer !== 'gbdt') throw new ConfigurationError(`unknown trainer \`${trainer}\`: one of gbdt, head, command`, { field: 'trainer' });
    const flag = (name: string): string => {
      const v = ctx.args.flags[name];
      if (typeof v !== 'string' || v === '') throw new ConfigurationError(`\`train gbdt\` needs \`--${name}\``, { field: name });
      return v;
    };
    const data = flag('data');
    const target = flag('target');
    const out = flag('out');
    const params = parseGbdtParams(ctx.args.extra, 'train gbdt');
    let categoryMapRaw: Record<string, string> = {};
    if (typeof ctx.args.flags['category-map'] === 'string') {
      try {
        categoryMapRaw = JSON.parse(ctx.args.flags['category-map']) as Record<string, string>;
      } catch {
        throw new ConfigurationError('`--category-map` must be a JSON object', { field: 'category-map' });
      }
    }
    let categoryMap;
    try {
      categoryMap = parseCategoryMap(categoryMapRaw);
    } catch (error) {
      throw new ConfigurationError((error as Error).message, { field: 'category-map' });
    }

    const dataPath = resolve(ctx.io.cwd, data);
    const header = await readHeader(dataPath, data);
    const fusion = isFusionHeader(header, target);
    const signal = ctx.io.signal;
    const table = fusion
      ? await readFusionTable(dataPath, data, { target, targetRequired: true, categoryMap, ...(signal ? { signal } : {}) })
      : await readNumericTable(dataPath, data, { target, targetRequired: true, allowMissing: true, ...(signal ? { signal } : {}) });
    ctx.logger.info(`${data}: ${table.nRows} rows, ${table.featureNames.length} features${fusion ? ' (fusion table, one-hot encoded)' : ''}`);

    // Seeded content-hash split, as prepare-data does: identical rows stay together.
    const F = table.featureNames.length;
    const isVal = new Uint8Array(table.nRows);
    for (let i = 0; i < table.nRows; i++) {
      const key = `${Array.from(table.x.subarray(i * F, (i + 1) * F)).join(',')},${table.targets![i]}`;
      isVal[i] = splitOf(params.seed, key, { train: 1 - VAL_FRACTION, val: VAL_FRACTION }) === 'val' ? 1 : 0;
    }
    // A class that landed only in validation moves to training: the model must know every class.
    const inTrain = new Set(table.targets!.filter((_, i) => !isVal[i]));
    let moved = 0;
    table.targets!.forEach((t, i) => {
      if (isVal[i] && !inTrain.has(t)) {
        isVal[i] = 0;
        moved++;
      }
    });
    if (moved) ctx.logger.warn(`${moved} validation row(s) of classes absent from the training part moved to training`);
    const train = subset(table, isVal, 0, data);
    const val = subset(table, isVal, 1, `${data} (validation part)`);

    const outDir = resolve(ctx.io.cwd, out);
    const staging = siblingTempPath(outDir);
    try {
      await mkdir(staging, { recursive: true });
    } catch (error) {
      throw new ConfigurationError(`cannot create the output folder (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: out, field: 'out' });
    }
    try {
      const result = await fitTabularGbdt({
        model: typeof ctx.args.flags.model === 'string' ? ctx.args.flags.model : basename(outDir),
        train,
        val,
        params,
        outDir: staging,
        outDisplay: out,
        preprocessing: fusion
          ? fusionPreprocessing(target, Object.fromEntries([...categoryMap].map(([c, m]) => [c, Object.fromEntries(m)])))
          : { type: 'numeric', description: 'Numeric columns as they are; empty cells and NaN are missing values', target, missing: 'NaN' },
        trainingData: { path: data, ...(await hashData(dataPath)) },
        commit: await codeCommit(ctx.io.env, ctx.io.cwd),
        now: () => new Date(),
        logger: ctx.logger,
        ...(signal ? { signal } : {}),
      });
      await moveIntoPlace(staging, outDir, MODEL_FILES, out);
      ctx.logger.close();
      const v = result.card.metrics.validation;
      if (ctx.args.flags.json) {
        printJson(ctx.io, {
          command: 'train',
          ok: true,
          trainer: 'gbdt',
          out: outDir,
          onnx: join(outDir, 'model.onnx'),
          onnxSha256: result.saved.onnxSha256,
          card: join(outDir, MODEL_CARD_FILE),
          metrics: result.card.metrics,
        });
      } else {
        ctx.io.stdout.write(cardSummary(result.card, out) + '\n');
        ctx.io.stdout.write(`\nValidation accuracy ${v.accuracy.toFixed(4)}, log loss ${v.logLoss.toFixed(4)}; wrote ${out}/model.onnx, model.json, ${MODEL_CARD_FILE}.\n`);
      }
      return ExitCode.ok;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  },
};


const HEAD_FILES = ['model.onnx', MODEL_CARD_FILE];

/** `skintwin train head`: the same fit as the stage's `trainer: head`, into a staging folder first. */
async function runHeadCli(ctx: Parameters<CliCommand['run']>[0]): Promise<number> {
  const flag = (name: string): string => {
    const v = ctx.args.flags[name];
    if (typeof v !== 'string' || v === '') throw new ConfigurationError(`\`train head\` needs \`--${name}\``, { field: name });
    return v;
  };
  const data = flag('data');
  const model = flag('model');
  const out = flag('out');
  if (!(model in HEAD_MODELS)) {
    throw new ConfigurationError(`\`train head\`: \`--model\` must be one of ${Object.keys(HEAD_MODELS).join(', ')}, got \`${model}\``, { field: 'model' });
  }
  const raw = parseParams(headCliSpecs, ctx.args.extra, { what: 'train head' });
  const problems = headParamProblems(raw, 'train head');
  if (problems.length) throw ConfigurationError.all(problems);
  const params = headParams(raw);
  const dataDir = resolve(ctx.io.cwd, data);
  const outDir = resolve(ctx.io.cwd, out);
  await checkWritableOut(outDir, out);
  const staging = siblingTempPath(outDir);
  const signal = ctx.io.signal;
  try {
    const result = await trainHeadModel({
      model,
      dataDir,
      dataDisplay: data,
      outDir: staging,
      outDisplay: out,
      params,
      ...(params.backbone ? { backbonePath: resolve(ctx.io.cwd, params.backbone) } : {}),
      provider: raw['execution-provider'],
      commit: await codeCommit(ctx.io.env, ctx.io.cwd),
      now: () => new Date(),
      logger: ctx.logger,
      ...(signal ? { signal } : {}),
    });
    await moveIntoPlace(staging, outDir, HEAD_FILES, out);
    ctx.logger.close();
    const v = result.card.metrics.validation;
    if (ctx.args.flags.json) {
      printJson(ctx.io, {
        command: 'train',
        ok: true,
        trainer: 'head',
        model,
        out: outDir,
        onnx: join(outDir, 'model.onnx'),
        onnxSha256: result.onnxSha256,
        card: join(outDir, MODEL_CARD_FILE),
        extractor: result.card.extractor,
        executionProvider: result.card.training.executionProvider,
        metrics: result.card.metrics,
      });
    } else {
      ctx.io.stdout.write(headSummary(result.card, out) + '\n');
      const line =
        result.card.task === 'object-detection'
          ? `validation mAP@0.5 ${v?.map50?.toFixed(4) ?? '?'}`
          : `validation accuracy ${v?.accuracy?.toFixed(4) ?? '?'}, macro F1 ${v?.f1Macro?.toFixed(4) ?? '?'}, log loss ${v?.logLoss?.toFixed(4) ?? '?'}`;
      ctx.io.stdout.write(`\n${line[0]!.toUpperCase()}${line.slice(1)}; wrote ${out}/model.onnx, ${MODEL_CARD_FILE}.\n`);
    }
    return ExitCode.ok;
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
