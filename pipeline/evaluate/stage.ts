// Stage kind `evaluate`: score a model (or the whole chain) on the test split, compare it with the
// champion, apply the gates of pipeline.yaml, and write evaluation.json, evaluation.md, plots and
// predictions.jsonl under reports/<model>.

import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigurationError, DataError, errorMessage } from '../core/errors.ts';
import { exists, writeFileAtomic, writeJsonAtomic } from '../core/fs.ts';
import type { ParamsOf, ParamSpecs } from '../core/params.ts';
import { defineStage, type StageContext, type StageResult } from '../core/stage.ts';
import { LineWriter } from '../data/fusion/csv.ts';
import { TARGET_COLUMN, VOCABULARIES } from '../data/fusion/schema.ts';
import { fromLetterbox, type BoxXYXY } from '../data/images/letterbox.ts';
import { normalizeToCHW, preprocessDecoded } from '../data/images/preprocess.ts';
import { openImageTensorFile, type ImageBatch, type ImageIndexItem, type ImageTensorFile } from '../data/images/tensor-file.ts';
import { hashTree } from '../engine/hash.ts';
import { bucketsFromScores, contextFeatures } from '../inference/chain.ts';
import { classifyPrepared, classifyRows, detectPrepared, imageSpec, openModel, type EngineOptions, type OpenedModel } from '../inference/engine.ts';
import { renderEvaluationMarkdown, evaluationMarker } from '../report/markdown.ts';
import { writeEvaluationPlots } from '../report/plots.ts';
import { evaluationProblems } from '../report/schema.ts';
import type { ModelCard } from '../train/card.ts';
import { readNumericTable } from '../train/trainers.ts';
import { groundTruthClassScores, detectionClassScores, scoreChain, type ChainPair } from './chain-eval.ts';
import { baseBranchChampion, defaultBaseRef, registryChampion, type ChampionLookup } from './champion.ts';
import { applyGates, GateFailedError, parseGates, verdictOf, type EvaluationTask, type Gates } from './gates.ts';
import {
  classificationMetrics,
  classificationSlices,
  compareClassification,
  compareDetection,
  detectionSlices,
  scoreDetections,
  type DetectionSample,
  type ExpectedSlices,
} from './metrics/index.ts';
import type { ChainMetrics, ChampionInfo, EvaluationReport, McNemarResult, MetricDelta, Metrics, SliceReport } from './types.ts';

export const EVALUATED_MODELS = ['skin-detection', 'skin-type', 'context-correction', 'chain'] as const;
export type EvaluatedModel = (typeof EVALUATED_MODELS)[number];
export const CHAMPION_CHOICES = ['auto', 'none', 'registry', 'base-branch'] as const;

/** Boxes down to this confidence are kept for AP; precision/recall/F1 use the `confidence` param. */
const AP_CONFIDENCE = 0.001;
const REGISTRY_FILE = 'models/registry.yaml';
const LOCK_FILE = 'pipeline/pipeline.lock';

export function taskOf(model: EvaluatedModel): EvaluationTask {
  if (model === 'skin-detection') return 'detection';
  if (model === 'chain') return 'chain';
  return 'classification';
}

/**
 * Slice keys each model's data carries: image items have skin tone and source; the fusion rows
 * have no skin tone, so the tabular model is sliced by the user's declared skin type (one-hot
 * columns; none set = the dropped level). The chain has no slices (its metrics are per bucket).
 */
export function sliceKeysOf(model: EvaluatedModel): string[] {
  if (model === 'context-correction') return ['skin_type'];
  if (model === 'chain') return [];
  return ['skin_tone', 'source'];
}

/** The headline metric of a task (outputs `primary-metric` / `primary-value`). */
export function primaryMetricOf(task: EvaluationTask): string {
  return task === 'detection' ? 'map50' : 'f1_macro';
}

const evaluateParams = {
  model: { type: 'string', description: 'What to evaluate: a registry model name, or `chain` (detector → skin type → context correction → buckets)', choices: EVALUATED_MODELS, required: true },
  split: { type: 'string', description: 'Prepared split to score', default: 'test' },
  'batch-size': { type: 'integer', description: 'Images per inference batch', default: 16, min: 1 },
  'execution-provider': { type: 'string', description: 'onnxruntime execution provider: `auto` (CUDA when available), `cpu` or `cuda`', choices: ['auto', 'cpu', 'cuda'], default: 'auto' },
  confidence: { type: 'number', description: 'Detector operating confidence (precision/recall/F1 and the chain\'s `detected`)', default: 0.1, min: 0, max: 1 },
  iou: { type: 'number', description: 'Detector NMS IoU', default: 0.7, min: 0, max: 1 },
  champion: {
    type: 'string',
    description: 'Champion to compare with: `auto` (registry production version, else the base branch\'s model), `registry`, `base-branch` or `none`',
    choices: CHAMPION_CHOICES,
    default: 'auto',
  },
  'base-ref': { type: 'string', description: 'Git ref whose pipeline.lock names the champion (default: origin/$GITHUB_BASE_REF on a pull request, else main)' },
  'bootstrap-resamples': { type: 'integer', description: 'Paired-bootstrap resamples for the delta intervals (0: off; else at least 1000)', default: 1000, min: 0 },
  seed: { type: 'integer', description: 'Bootstrap seed (default: settings.seed)' },
  min: { type: 'mapping', description: 'Absolute minimums, metric → value (higher-is-better metrics)', default: {} },
  max: { type: 'mapping', description: 'Absolute maximums, metric → value (lower-is-better metrics: log_loss, brier, ece)', default: {} },
  'max-regression': { type: 'mapping', description: 'Largest tolerated regression against the champion, metric → amount', default: {} },
  'max-slice-gap': { type: 'mapping', description: 'Largest tolerated gap between the best and worst value of a slice, slice key → amount', default: {} },
  'fail-on-gate': { type: 'boolean', description: 'Fail the stage when a gate fails (the report is then not kept); default: succeed with `verdict: fail`', default: false },
} as const satisfies ParamSpecs;

type EvaluateContext = StageContext<ParamsOf<typeof evaluateParams>>;

export const evaluateStage = defineStage({
  kind: 'evaluate',
  title: 'Evaluate a model on the test split, compare with the champion and apply the gates',
  params: evaluateParams,
  outputs: {
    verdict: '`pass` or `fail` (a failed gate)',
    'failed-gates': 'Names of the failed gates, comma-separated',
    report: 'Path of evaluation.json',
    markdown: 'Path of evaluation.md',
    'primary-metric': 'The headline metric (f1_macro, or map50 for the detector)',
    'primary-value': 'Its value on the split',
    'champion-source': '`registry`, `base-branch` or `none`',
    'champion-reason': 'Where the champion came from, or why there is no comparison',
  },
  codePaths: ['evaluate', 'inference', 'report', 'data/images', 'data/fusion', 'train'],
  validate(params, stage) {
    const problems: ConfigurationError[] = [];
    const model = params.model as EvaluatedModel;
    const wantDeps = model === 'chain' ? 4 : 2;
    if (stage.deps.length !== wantDeps) {
      problems.push(
        new ConfigurationError(
          model === 'chain'
            ? `${stage.name}: evaluating the chain needs 4 deps: the prepared detection data, then the skin-detection, skin-type and context-correction model folders`
            : `${stage.name}: evaluate needs 2 deps: the prepared data folder, then the model folder`,
          { field: 'deps' },
        ),
      );
    }
    if (stage.outs.length !== 1) problems.push(new ConfigurationError(`${stage.name}: evaluate needs exactly one out (the report folder, e.g. reports/${model})`, { field: 'outs' }));
    const resamples = params['bootstrap-resamples'];
    if (resamples !== 0 && resamples < 1000) {
      problems.push(new ConfigurationError(`${stage.name}: \`bootstrap-resamples\` must be 0 (off) or at least 1000, got ${resamples}`, { field: 'bootstrap-resamples' }));
    }
    problems.push(...parseGates(params, taskOf(model), sliceKeysOf(model), stage.name).problems);
    if (model === 'chain' && Object.keys(params['max-regression']).length) {
      problems.push(new ConfigurationError(`${stage.name}: the chain is not compared with a champion (each model's evaluation is): \`max-regression\` cannot apply`, { field: 'max-regression' }));
    }
    if (problems.length) throw ConfigurationError.all(problems);
  },
  run: (ctx) => runEvaluate(ctx),
});

/** What scoring produced, before gates and files. */
interface Scored {
  task: EvaluationTask;
  challenger: EvaluationReport['challenger'];
  data: EvaluationReport['data'];
  metrics: Metrics | ChainMetrics;
  slices: Record<string, SliceReport>;
  champion: ChampionInfo & { metrics?: Metrics };
  comparison: MetricDelta[];
  mcnemar: McNemarResult | null;
}

async function runEvaluate(ctx: EvaluateContext): Promise<StageResult> {
  const p = ctx.params;
  const model = p.model as EvaluatedModel;
  const task = taskOf(model);
  const { gates } = parseGates(p, task, sliceKeysOf(model), ctx.name);
  const outRel = ctx.outs[0]!;
  const outDir = ctx.out(outRel);
  await mkdir(outDir, { recursive: true });
  const eo: EngineOptions = { provider: p['execution-provider'] as EngineOptions['provider'], batchSize: p['batch-size'], logger: ctx.logger, signal: ctx.signal };
  const predictions = await LineWriter.open(join(outDir, 'predictions.jsonl'));
  let scored: Scored;
  try {
    if (model === 'chain') scored = await scoreChainStage(ctx, eo, predictions);
    else if (model === 'context-correction') scored = await scoreTabular(ctx, eo, predictions);
    else scored = await scoreImages(ctx, eo, predictions, task as 'classification' | 'detection');
  } finally {
    await predictions.close();
  }
  return finish(ctx, model, gates, scored, outRel, outDir);
}

async function finish(ctx: EvaluateContext, model: EvaluatedModel, gates: Gates, s: Scored, outRel: string, outDir: string): Promise<StageResult> {
  const gateResults = applyGates(gates, { metrics: s.metrics, slices: s.slices, comparison: s.comparison, noComparisonReason: s.champion.reason });
  const verdict = verdictOf(gateResults);
  const report: EvaluationReport = {
    format: 'skintwin-evaluation',
    version: 1,
    model,
    task: s.task,
    createdAt: ctx.now().toISOString(),
    challenger: s.challenger,
    data: s.data,
    metrics: s.metrics,
    slices: s.slices,
    champion: s.champion,
    comparison: s.comparison,
    mcnemar: s.mcnemar,
    gates: gateResults,
    verdict,
    plots: [],
  };
  report.plots = await writeEvaluationPlots(report, outDir);
  const problems = evaluationProblems(report);
  // A report that does not fit the shipped schema is a bug here, never something to publish half-right.
  if (problems.length) throw new Error(`evaluation.json does not match evaluation.schema.json: ${problems.slice(0, 5).join('; ')}`);
  await writeJsonAtomic(join(outDir, 'evaluation.json'), report);
  const markdown = renderEvaluationMarkdown(report, { marker: evaluationMarker(model) });
  await writeFileAtomic(join(outDir, 'evaluation.md'), markdown);

  const failed = gateResults.filter((g) => g.status === 'fail');
  const primary = primaryMetricOf(s.task);
  const primaryValue = (s.metrics as unknown as Record<string, unknown>)[primary];
  const summaryLine = `${ctx.name}: ${model} on \`${s.data.split}\` (${s.data.rows} ${model === 'context-correction' ? 'rows' : 'images'}): ${primary} ${typeof primaryValue === 'number' ? primaryValue.toFixed(4) : 'n/a'}; verdict ${verdict}`;
  ctx.logger.info(summaryLine + (failed.length ? ` (failed: ${failed.map((g) => g.name).join(', ')})` : ''));
  const d = s.comparison.find((x) => x.metric === primary);
  if (d && d.delta !== null) {
    const ci = d.ci95 ? `, 95% CI [${d.ci95[0].toFixed(4)}, ${d.ci95[1].toFixed(4)}]` : '';
    ctx.logger.info(`${ctx.name}: against the champion (${s.champion.source}): ${primary} ${d.champion?.toFixed(4)} → ${d.challenger?.toFixed(4)} (Δ ${d.delta >= 0 ? '+' : ''}${d.delta.toFixed(4)}${ci})`);
  }
  for (const g of failed) ctx.logger.error(`${ctx.name}: gate \`${g.name}\` failed: ${g.message}`);
  if (ctx.params['fail-on-gate'] && failed.length) {
    throw new GateFailedError(`${ctx.name}: ${failed.length} gate(s) failed: ${failed.map((g) => `${g.name} (${g.message})`).join('; ')}`, failed);
  }
  return {
    outputs: {
      verdict,
      'failed-gates': failed.map((g) => g.name).join(','),
      report: `${outRel}/evaluation.json`,
      markdown: `${outRel}/evaluation.md`,
      'primary-metric': primary,
      'primary-value': typeof primaryValue === 'number' ? String(primaryValue) : '',
      'champion-source': s.champion.source,
      'champion-reason': s.champion.reason,
    },
    summary: markdown,
    reports: [`${outRel}/evaluation.json`, `${outRel}/evaluation.md`, ...report.plots.map((pl) => `${outRel}/${pl.file}`)],
  };
}

// ---------------------------------------------------------------------------------------------
// Champion

/** Find the champion folder for `modelDir` as the `champion` param says. */
async function findChampion(ctx: EvaluateContext, model: string, modelDir: string): Promise<ChampionLookup> {
  const choice = ctx.params.champion;
  if (choice === 'none') return { found: false, reason: 'comparison turned off (`champion: none`)' };
  const reasons: string[] = [];
  if (choice === 'auto' || choice === 'registry') {
    const reg = await registryChampion(ctx.path(REGISTRY_FILE), model, REGISTRY_FILE);
    if (reg.found || choice === 'registry') return reg;
    reasons.push(`registry: ${reg.reason}`);
  }
  const challengerTree = await hashTree(ctx.path(modelDir));
  const base = await baseBranchChampion({
    root: ctx.root,
    baseRef: ctx.params['base-ref'] ?? defaultBaseRef(ctx.env),
    lockFile: LOCK_FILE,
    modelDir,
    cacheDir: ctx.path(ctx.settings.cacheDir),
    dest: join(ctx.tmpDir, 'champion'),
    challengerTreeHash: challengerTree?.hash,
    // On a fresh runner the local cache is empty: the base branch's run saved the model remotely.
    ...(ctx.remoteCache ? { remoteCache: ctx.remoteCache } : {}),
    logger: ctx.logger,
  });
  if (base.found) return base;
  reasons.push(`base branch: ${base.reason}`);
  return { found: false, reason: reasons.join('; ') };
}

/** Whether a reason is a plain fact (nothing to compare) rather than a failure worth a warning. */
function expectedNoChampion(reason: string): boolean {
  return /turned off|identical to the challenger/.test(reason);
}

/**
 * Resolve and open the champion. Any failure becomes the reason of a report without comparison:
 * never an exception, never a silent pass.
 */
async function openChampion(
  ctx: EvaluateContext,
  model: string,
  modelDir: string,
  challenger: OpenedModel,
  eo: EngineOptions,
): Promise<{ opened?: OpenedModel; info: ChampionInfo }> {
  let lookup: ChampionLookup;
  try {
    lookup = await findChampion(ctx, model, modelDir);
  } catch (error) {
    lookup = { found: false, reason: `looking for the champion failed: ${errorMessage(error)}` };
  }
  if (!lookup.found) {
    if (!expectedNoChampion(lookup.reason)) ctx.logger.warn(`${ctx.name}: no champion comparison: ${lookup.reason}`);
    else ctx.logger.info(`${ctx.name}: no champion comparison: ${lookup.reason}`);
    return { info: { source: 'none', reason: lookup.reason } };
  }
  const display = `champion ${lookup.version ?? lookup.source}:${modelDir}/model.onnx`;
  let opened: OpenedModel;
  try {
    opened = await openModel(join(lookup.dir, 'model.onnx'), display, eo);
  } catch (error) {
    const reason = `the champion (${lookup.reason}) failed to load: ${errorMessage(error)}`;
    ctx.logger.warn(`${ctx.name}: no champion comparison: ${reason}`);
    return { info: { source: 'none', reason } };
  }
  const mine = classNames(challenger.card);
  const theirs = classNames(opened.card);
  if (mine.join('\u0000') !== theirs.join('\u0000')) {
    await opened.close();
    const reason = `the champion (${lookup.reason}) has other classes (${theirs.length}: ${theirs.slice(0, 5).join(', ')}${theirs.length > 5 ? ', …' : ''}) than the challenger (${mine.length}): not comparable`;
    ctx.logger.warn(`${ctx.name}: no champion comparison: ${reason}`);
    return { info: { source: 'none', reason } };
  }
  ctx.logger.info(`${ctx.name}: champion: ${lookup.reason}`);
  return { opened, info: { source: lookup.source, reason: lookup.reason, ...(lookup.version ? { version: lookup.version } : {}), onnxSha256: opened.card.onnx.sha256 } };
}

/** Run `score` on the opened champion; a failure there also means "no comparison, because …". */
async function withChampion<T>(
  ctx: EvaluateContext,
  champion: { opened?: OpenedModel; info: ChampionInfo },
  score: (m: OpenedModel) => Promise<T>,
): Promise<{ result?: T; info: ChampionInfo }> {
  if (!champion.opened) return { info: champion.info };
  try {
    return { result: await score(champion.opened), info: champion.info };
  } catch (error) {
    if (ctx.signal.aborted) throw error;
    const reason = `scoring the champion (${champion.info.reason}) failed: ${errorMessage(error)}`;
    ctx.logger.warn(`${ctx.name}: no champion comparison: ${reason}`);
    return { info: { source: 'none', reason } };
  } finally {
    await champion.opened.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

function classNames(card: ModelCard): string[] {
  return [...card.classes].sort((a, b) => a.index - b.index).map((c) => c.name);
}

function challengerOf(modelDir: string, m: OpenedModel): EvaluationReport['challenger'] {
  return { onnx: `${modelDir}/model.onnx`, onnxSha256: m.card.onnx.sha256, card: `${modelDir}/model-card.json` };
}

function bootstrapOptions(ctx: EvaluateContext): { resamples: number; seed: number } {
  return { resamples: ctx.params['bootstrap-resamples'], seed: ctx.params.seed ?? ctx.settings.seed };
}

/** Open a prepared image split; an empty one is a DataError naming the split folder. */
async function openSplit(ctx: EvaluateContext, dataDep: string): Promise<ImageTensorFile> {
  const split = ctx.params.split;
  if (!(await exists(ctx.path(dataDep)))) throw new DataError('prepared data folder not found (run the prepare-data stage first)', { file: dataDep });
  const file = await openImageTensorFile(ctx.path(dataDep), split);
  if (file.meta.count === 0) {
    await file.close();
    throw new DataError(`the \`${split}\` split has no images: nothing to evaluate`, { file: join(dataDep, split) });
  }
  return file;
}

/** Data class index → model class index, by name; a data class the model lacks is a DataError. */
function classMapping(dataClasses: readonly string[], modelClasses: readonly string[], where: string, modelDisplay: string): Int32Array {
  const map = new Int32Array(dataClasses.length);
  dataClasses.forEach((name, i) => {
    const k = modelClasses.indexOf(name);
    if (k < 0) {
      throw new DataError(`data class \`${name}\` is not a class of ${modelDisplay} (its classes: ${modelClasses.slice(0, 12).join(', ')}${modelClasses.length > 12 ? ', …' : ''})`, {
        file: where,
      });
    }
    map[i] = k;
  });
  return map;
}

/** Fitzpatrick types: a tone with no test image still shows up in the report, as "no rows". */
const SKIN_TONES = ['I', 'II', 'III', 'IV', 'V', 'VI'] as const;

function expectedSlices(items: readonly ImageIndexItem[]): ExpectedSlices {
  return items.some((i) => i.skin_tone !== undefined && i.skin_tone !== '') ? { skin_tone: SKIN_TONES } : {};
}

function itemSlice(item: ImageIndexItem): Record<string, string> {
  const slice: Record<string, string> = {};
  if (item.skin_tone !== undefined && item.skin_tone !== '') slice.skin_tone = String(item.skin_tone);
  if (item.source !== undefined && item.source !== '') slice.source = String(item.source);
  return slice;
}

// ---------------------------------------------------------------------------------------------
// Image models (skin-type classification, skin-detection)

async function scoreImages(ctx: EvaluateContext, eo: EngineOptions, out: LineWriter, task: 'classification' | 'detection'): Promise<Scored> {
  const [dataDep, modelDir] = ctx.deps as [string, string];
  const model = ctx.params.model;
  const split = ctx.params.split;
  const file = await openSplit(ctx, dataDep);
  try {
    const display = `${modelDir}/model.onnx`;
    const m = await openModel(ctx.path(display), display, eo);
    try {
      const classes = classNames(m.card);
      const mapping = classMapping(file.meta.classNames, classes, join(dataDep, split, 'meta.json'), display);
      const slices = file.items.map(itemSlice);
      const data = { path: dataDep, split, rows: file.meta.count };
      if (task === 'classification') {
        const labels = new Int32Array(file.items.length);
        file.items.forEach((item, i) => {
          if (typeof item.label !== 'number' || item.label < 0 || item.label >= mapping.length) {
            throw new DataError(`item \`${item.id}\` has no valid class label`, { file: join(dataDep, split, 'index.jsonl'), line: i + 1, field: 'label' });
          }
          labels[i] = mapping[item.label]!;
        });
        const probs = await classifyPrepared(m, file, eo);
        for (let i = 0; i < file.items.length; i++) {
          const row: Record<string, number> = {};
          classes.forEach((c, k) => (row[c] = probs[i * classes.length + k]!));
          await out.write(JSON.stringify({ id: file.items[i]!.id, label: classes[labels[i]!], probs: row, slice: slices[i] }));
        }
        const metrics = classificationMetrics(labels, probs, classes);
        const sliceReports = classificationSlices(labels, probs, classes, slices, { expected: expectedSlices(file.items) });
        const champion = await openChampion(ctx, model, modelDir, m, eo);
        const champ = await withChampion(ctx, champion, async (cm) => {
          const cprobs = await classifyPrepared(cm, file, eo);
          return { metrics: classificationMetrics(labels, cprobs, classes), ...compareClassification(labels, probs, cprobs, classes, bootstrapOptions(ctx)) };
        });
        return {
          task,
          challenger: challengerOf(modelDir, m),
          data,
          metrics,
          slices: sliceReports,
          champion: champ.result ? { ...champ.info, metrics: champ.result.metrics } : champ.info,
          comparison: champ.result?.comparison ?? [],
          mcnemar: champ.result?.mcnemar ?? null,
        };
      }
      const confidence = ctx.params.confidence;
      const detect = async (om: OpenedModel): Promise<DetectionSample[]> => {
        const found = await detectPrepared(om, file, { ...eo, confidence: Math.min(AP_CONFIDENCE, confidence), iou: ctx.params.iou });
        return file.items.map((item, i) => ({
          id: item.id,
          gt: (item.boxes ?? []).map(([c, ...box]) => ({ cls: mapping[c]!, box: fromLetterbox(box as BoxXYXY, item) })),
          pred: (found[i] ?? []).map((d) => ({ cls: d.cls, conf: d.confidence, box: [...d.box] as BoxXYXY })),
          slice: slices[i],
        }));
      };
      const samples = await detect(m);
      for (const s of samples) {
        await out.write(
          JSON.stringify({
            id: s.id,
            gt: s.gt.map((g) => ({ cls: classes[g.cls], box: g.box })),
            pred: s.pred.map((d) => ({ cls: classes[d.cls], conf: d.conf, box: d.box })),
            slice: s.slice,
          }),
        );
      }
      const metrics = scoreDetections(samples, classes, { confidence });
      const sliceReports = detectionSlices(samples, classes, { confidence, expected: expectedSlices(file.items) });
      const champion = await openChampion(ctx, model, modelDir, m, eo);
      const champ = await withChampion(ctx, champion, async (cm) => {
        const csamples = await detect(cm);
        return { metrics: scoreDetections(csamples, classes, { confidence }), ...compareDetection(samples, csamples, classes, bootstrapOptions(ctx)) };
      });
      return {
        task,
        challenger: challengerOf(modelDir, m),
        data,
        metrics,
        slices: sliceReports,
        champion: champ.result ? { ...champ.info, metrics: champ.result.metrics } : champ.info,
        comparison: champ.result?.comparison ?? [],
        mcnemar: null,
      };
    } finally {
      await m.close();
    }
  } finally {
    await file.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The tabular context-correction model

/** Skin type of a fusion row from its one-hot columns; none set is the dropped (reference) level. */
function skinTypeSlices(x: Float32Array, nRows: number, features: readonly string[], card: ModelCard): (Record<string, string> | undefined)[] {
  const cols = features.map((f, i) => [f, i] as const).filter(([f]) => f.startsWith('skin_type_'));
  if (!cols.length) return new Array(nRows).fill(undefined);
  const pre = card.preprocessing;
  // The dropped level: from the card, else the fusion schema's first level when the columns are its own.
  const levels = VOCABULARIES.skin_type ?? [];
  const fusionLevels = cols.every(([f]) => levels.includes(f.slice('skin_type_'.length)));
  const dropped = pre.type === 'fusion-one-hot' ? (pre.categories.skin_type?.dropped ?? 'other') : fusionLevels && levels[0] ? levels[0] : 'other';
  const width = features.length;
  const out: Record<string, string>[] = new Array(nRows);
  for (let r = 0; r < nRows; r++) {
    let value = dropped;
    for (const [f, i] of cols) if (x[r * width + i]! >= 0.5) value = f.slice('skin_type_'.length);
    out[r] = { skin_type: value };
  }
  return out;
}

async function scoreTabular(ctx: EvaluateContext, eo: EngineOptions, out: LineWriter): Promise<Scored> {
  const [dataDep, modelDir] = ctx.deps as [string, string];
  const split = ctx.params.split;
  if (!(await exists(ctx.path(dataDep)))) throw new DataError('prepared data folder not found (run the prepare-data stage first)', { file: dataDep });
  const display = `${modelDir}/model.onnx`;
  const m = await openModel(ctx.path(display), display, eo);
  try {
    const card = m.card;
    const features = card.input.features;
    const target = 'target' in card.preprocessing ? card.preprocessing.target : TARGET_COLUMN;
    const rel = join(dataDep, `${split}.csv`);
    if (!(await exists(ctx.path(rel)))) throw new DataError(`the \`${split}\` split is missing`, { file: rel });
    const table = await readNumericTable(ctx.path(rel), rel, { features, target, targetRequired: true, allowMissing: false, keepIds: true, signal: ctx.signal });
    if (table.nRows === 0) throw new DataError(`the \`${split}\` split has no rows: nothing to evaluate`, { file: rel });
    const classes = classNames(card);
    const byId = new Map<string, number>();
    for (const c of card.classes) {
      byId.set(String(c.id), c.index);
      byId.set(c.name, c.index);
    }
    // Rows whose class the model never saw cannot be scored as a class index; they are counted and named.
    const keep: number[] = [];
    const labelsAll: number[] = [];
    let unknown = 0;
    let firstUnknown = '';
    table.targets!.forEach((t, r) => {
      const k = byId.get(t) ?? byId.get(String(Number(t)));
      if (k === undefined) {
        unknown++;
        firstUnknown ||= `line ${table.lines[r]}: \`${t}\``;
        return;
      }
      keep.push(r);
      labelsAll.push(k);
    });
    if (!keep.length) throw new DataError(`no row of the \`${split}\` split has a class the model knows (first: ${firstUnknown})`, { file: rel, field: target });
    if (unknown) ctx.logger.warn(`${ctx.name}: ${unknown} row(s) of ${rel} have a target the model has no class for (first: ${firstUnknown}); they are left out of the metrics`);
    const width = features.length;
    const x = keep.length === table.nRows ? table.x : new Float32Array(keep.length * width);
    if (x !== table.x) keep.forEach((r, i) => x.set(table.x.subarray(r * width, (r + 1) * width), i * width));
    const n = keep.length;
    const labels = Int32Array.from(labelsAll);
    const slices = skinTypeSlices(x, n, features, card);
    const probs = await classifyRows(m, x, n, eo);
    for (let i = 0; i < n; i++) {
      const row: Record<string, number> = {};
      classes.forEach((c, k) => (row[c] = probs[i * classes.length + k]!));
      await out.write(JSON.stringify({ id: table.ids[keep[i]!] ?? String(table.lines[keep[i]!]), label: classes[labels[i]!], probs: row, slice: slices[i] }));
    }
    const metrics = classificationMetrics(labels, probs, classes);
    const sliceReports = classificationSlices(labels, probs, classes, slices);
    const champion = await openChampion(ctx, 'context-correction', modelDir, m, eo);
    const champ = await withChampion(ctx, champion, async (cm) => {
      const cprobs = await classifyRows(cm, x, n, eo);
      return { metrics: classificationMetrics(labels, cprobs, classes), ...compareClassification(labels, probs, cprobs, classes, bootstrapOptions(ctx)) };
    });
    return {
      task: 'classification',
      challenger: challengerOf(modelDir, m),
      data: { path: dataDep, split, rows: n },
      metrics,
      slices: sliceReports,
      champion: champ.result ? { ...champ.info, metrics: champ.result.metrics } : champ.info,
      comparison: champ.result?.comparison ?? [],
      mcnemar: champ.result?.mcnemar ?? null,
    };
  } finally {
    await m.close();
  }
}

// ---------------------------------------------------------------------------------------------
// The chain

/**
 * The detection split as the skin-type model wants it: each letterboxed row cut back to the
 * image (the pad removed) and brought to the card's size and mode by the project's resampler,
 * as the engine does for an image file, then normalised with the card's mean/std. Batches are
 * made on demand, one in memory at a time.
 */
export function resampledSplit(file: ImageTensorFile, m: OpenedModel): ImageTensorFile {
  const { size, mean, std, resize } = imageSpec(m);
  const [, h, w] = file.meta.shape;
  const readRow = async (row: number): Promise<Buffer> => {
    const item = file.items[row]!;
    const raw = await file.readRow(row);
    const left = Math.max(0, Math.round(item.pad[0]));
    const top = Math.max(0, Math.round(item.pad[1]));
    const width = Math.max(1, Math.min(w - left, Math.round(item.width * item.scale[0])));
    const height = Math.max(1, Math.min(h - top, Math.round(item.height * item.scale[1])));
    const crop = Buffer.allocUnsafe(width * height * 3);
    for (let y = 0; y < height; y++) crop.set(raw.subarray(((top + y) * w + left) * 3, ((top + y) * w + left + width) * 3), y * width * 3);
    return preprocessDecoded({ pixels: crop, width, height, fullWidth: width, fullHeight: height }, { size, resize }).pixels;
  };
  async function* batches(batchSize: number, rows?: readonly number[]): AsyncGenerator<ImageBatch> {
    const order = rows ?? file.items.map((i) => i.row);
    const plane = 3 * size * size;
    for (let start = 0; start < order.length; start += batchSize) {
      const chunk = order.slice(start, start + batchSize);
      const data = new Float32Array(chunk.length * plane);
      const pixels = await Promise.all(chunk.map((r) => readRow(r)));
      pixels.forEach((px, k) => normalizeToCHW(px, size, size, mean, std, data, k * plane));
      yield { rows: [...chunk], items: chunk.map((r) => file.items[r]!), data };
    }
  }
  return {
    meta: { ...file.meta, shape: [file.meta.count, size, size, 3], stride: size * size * 3, mean: [...mean], std: [...std], resize, task: 'classification', classNames: classNames(m.card) },
    items: file.items,
    readRow,
    batches,
    close: async () => undefined,
  };
}

async function scoreChainStage(ctx: EvaluateContext, eo: EngineOptions, out: LineWriter): Promise<Scored> {
  const [dataDep, detDir, skinDir, ccDir] = ctx.deps as [string, string, string, string];
  const split = ctx.params.split;
  const confidence = ctx.params.confidence;
  const file = await openSplit(ctx, dataDep);
  const opened: OpenedModel[] = [];
  try {
    const open = async (dir: string): Promise<OpenedModel> => {
      const m = await openModel(ctx.path(`${dir}/model.onnx`), `${dir}/model.onnx`, eo);
      opened.push(m);
      return m;
    };
    const detector = await open(detDir);
    const skinType = await open(skinDir);
    const context = await open(ccDir);
    const detClasses = classNames(detector.card);
    const mapping = classMapping(file.meta.classNames, detClasses, join(dataDep, split, 'meta.json'), `${detDir}/model.onnx`);
    const found = await detectPrepared(detector, file, { ...eo, confidence, iou: ctx.params.iou });
    const skinClasses = classNames(skinType.card);
    const skinProbs = await classifyPrepared(skinType, resampledSplit(file, skinType), eo);
    const nc = detClasses.length;
    const troubles = found.map((dets) => detectionClassScores(dets, nc, confidence));
    const skin = file.items.map((_, i) => Float64Array.from(skinProbs.subarray(i * skinClasses.length, (i + 1) * skinClasses.length)));
    const rows = file.items.map((item, i) => {
      const sk = skin[i]!;
      let best = 0;
      for (let k = 1; k < sk.length; k++) if (sk[k]! > sk[best]!) best = k;
      return { id: item.id, troubles: troubles[i]!, skinProbs: sk, skinLabel: skinClasses[best] ?? 'Normal' };
    });
    const ccProbs = await classifyRows(context, contextFeatures(context, rows), file.items.length, eo);
    const ccClasses = [...context.card.classes].sort((a, b) => a.index - b.index);
    const pairs: ChainPair[] = [];
    for (let i = 0; i < file.items.length; i++) {
      const item = file.items[i]!;
      const predicted = bucketsFromScores(troubles[i]!, detClasses);
      const reference = bucketsFromScores(groundTruthClassScores((item.boxes ?? []).map(([c]) => mapping[c]!), nc), detClasses);
      pairs.push({ predicted, reference });
      const cc = ccProbs.subarray(i * ccClasses.length, (i + 1) * ccClasses.length);
      let best = 0;
      for (let k = 1; k < cc.length; k++) if (cc[k]! > cc[best]!) best = k;
      await out.write(
        JSON.stringify({
          id: item.id,
          buckets: predicted,
          reference,
          troubles: Object.fromEntries(detClasses.map((c, k) => [c, troubles[i]![k]])),
          skin_type: Object.fromEntries(skinClasses.map((c, k) => [c, skin[i]![k]])),
          context: { class_id: ccClasses[best]?.id ?? null, probability: cc[best] ?? null },
          slice: itemSlice(item),
        }),
      );
    }
    return {
      task: 'chain',
      challenger: { onnx: `${detDir}/model.onnx`, onnxSha256: detector.card.onnx.sha256, card: `${detDir}/model-card.json` },
      data: { path: dataDep, split, rows: file.meta.count },
      metrics: scoreChain(pairs),
      slices: {},
      champion: { source: 'none', reason: 'the chain is not compared with a champion: each model\'s own evaluation compares it' },
      comparison: [],
      mcnemar: null,
    };
  } finally {
    for (const m of opened) await m.close().catch(() => undefined);
    await file.close();
  }
}

