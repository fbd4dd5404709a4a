// Stage kind `build-fusion-data`: build the 27-feature fusion table for the context-correction
// model, from a CSV source (schema-checked) or derived by running the image models over a dataset.

import { availableParallelism } from 'node:os';
import { join, posix } from 'node:path';
import { ConfigurationError, DataError } from '../core/errors.ts';
import { exists } from '../core/fs.ts';
import type { ParamSpecs, ParamsOf } from '../core/params.ts';
import { defineStage, type StageContext, type StageResult } from '../core/stage.ts';
import { buildFusionTable } from './fusion/build.ts';
import { buildDerivedFusion, derivedCategoryMap } from './fusion/derived.ts';
import { parseCategoryMap } from './fusion/schema.ts';

/** Derived-mode params naming files that must come from a declared dep (so a change re-runs the stage). */
const FILE_PARAMS = ['detector-model', 'skin-type-model', 'user-fields'] as const;

function normalisePath(p: string): string {
  return posix.normalize(p.replace(/\\/g, '/')).replace(/^\.\//, '').replace(/\/+$/, '');
}

/** The dep that holds `file` (the file itself or a folder above it), if any. */
function depHolding(file: string, deps: readonly string[]): string | undefined {
  const f = normalisePath(file);
  return deps.find((d) => {
    const n = normalisePath(d);
    return f === n || f.startsWith(`${n}/`);
  });
}

/**
 * Derived mode's dataset dep: the first dep that holds none of the model / user-fields files
 * (those may sit in deps of their own or be deps themselves).
 */
function datasetDep(params: Record<string, unknown>, deps: readonly string[]): string | undefined {
  const files = FILE_PARAMS.map((k) => params[k]).filter((v): v is string => typeof v === 'string' && v !== '');
  return deps.find((d) => !files.some((f) => depHolding(f, [d])));
}

const PARAMS = {
  mode: {
    type: 'string',
    description: '`csv`: read the raw table from the dep; `derived`: run the detector and skin-type models over images',
    choices: ['csv', 'derived'] as const,
    default: 'csv',
  },
  table: {
    type: 'string',
    description: 'Path of the raw CSV inside the dep directory',
    default: 'fusion.csv',
  },
  'category-map': {
    type: 'mapping',
    description:
      'Map unknown category values to known levels: `alcohol_consumption.Occasional: Low` (derived mode adds `alcohol_consumption.No: Low` for the default user fields unless this maps `No` itself)',
    default: {},
  },
  'detector-model': {
    type: 'string',
    description: 'Derived: detector ONNX file (YOLOv8 layout, output [batch, 14, boxes]), relative to the repository root; must be in deps',
  },
  'skin-type-model': {
    type: 'string',
    description: 'Derived: skin-type ONNX file (output [batch, 3]: Dry, Normal, Oily), relative to the repository root; must be in deps',
  },
  'user-fields': {
    type: 'string',
    description:
      'Derived: CSV keyed by image `id` with any of age, gender, sleep_hours, stress_level, diet_quality, smoker, alcohol_consumption, skin_type (missing: the original defaults); must be in deps',
  },
  'target-column': {
    type: 'string',
    description: 'Derived: target column of the user-fields CSV; without it the target is empty (a table for inference and drift only)',
  },
  confidence: {
    type: 'number',
    description: 'Derived: detector boxes scoring at least this count (the original chain: 0.1)',
    default: 0.1,
    min: 0,
    max: 1,
  },
  'batch-size': { type: 'integer', description: 'Derived: images per model run', default: 8, min: 1, max: 1024 },
  'execution-provider': {
    type: 'string',
    description: 'Derived: `auto` (CUDA where onnxruntime has it and a GPU is visible, else CPU), `cpu` or `cuda`',
    choices: ['auto', 'cpu', 'cuda'] as const,
    default: 'auto',
  },
} satisfies ParamSpecs;

export const buildFusionDataStage = defineStage({
  kind: 'build-fusion-data',
  title: 'Build the 27-feature fusion table for the context-correction model',
  params: PARAMS,
  outputs: {
    'fusion-dir': 'Directory holding fusion.csv (raw, schema-checked), features.csv (27 features + target) and schema.json',
    rows: 'Data rows read',
    encoded: 'Rows encoded into features.csv',
    rejected: 'Rows left out (bad values), as JSON counts by reason',
  },
  codePaths: ['data', 'inference'],
  validate(params, stage) {
    try {
      parseCategoryMap(params['category-map']);
    } catch (error) {
      throw new ConfigurationError(`${stage.name}: ${(error as Error).message}`, { field: 'category-map' });
    }
    if (stage.outs.length !== 1) throw new ConfigurationError(`${stage.name}: build-fusion-data needs exactly one out`, { field: 'outs' });
    const derivedOnly = [...FILE_PARAMS, 'target-column'] as const;
    if (params.mode !== 'derived') {
      const stray = derivedOnly.filter((k) => params[k] !== undefined);
      if (stray.length) {
        throw new ConfigurationError(`${stage.name}: ${stray.map((k) => `\`${k}\``).join(', ')} only apply to mode \`derived\``, { field: stray[0]! });
      }
      if (stage.deps.length !== 1) throw new ConfigurationError(`${stage.name}: build-fusion-data needs exactly one dep`, { field: 'deps' });
      return;
    }
    const problems: ConfigurationError[] = [];
    for (const k of ['detector-model', 'skin-type-model'] as const) {
      if (!params[k]) problems.push(new ConfigurationError(`${stage.name}: mode \`derived\` needs \`${k}\` (an ONNX file in deps)`, { field: k }));
    }
    for (const k of FILE_PARAMS) {
      const file = params[k];
      if (file && !depHolding(file, stage.deps)) {
        problems.push(
          new ConfigurationError(`${stage.name}: \`${k}\` ${file} is not in the stage's deps, so a new model would not re-run the stage`, {
            field: k,
            hint: `add \`${file}\` (or its folder) to deps`,
          }),
        );
      }
    }
    if (params['target-column'] !== undefined && !params['user-fields']) {
      problems.push(new ConfigurationError(`${stage.name}: \`target-column\` needs \`user-fields\` (the CSV it is read from)`, { field: 'target-column' }));
    }
    if (!datasetDep(params, stage.deps)) {
      problems.push(new ConfigurationError(`${stage.name}: mode \`derived\` needs the image dataset as a dep (besides the models)`, { field: 'deps' }));
    }
    if (problems.length) throw ConfigurationError.all(problems);
  },
  async run(ctx) {
    const { params } = ctx;
    if (params.mode === 'derived') return runDerived(ctx);
    const dep = ctx.deps[0]!;
    const outRel = ctx.outs[0]!;
    const displayPath = join(dep, params.table);
    const input = ctx.path(displayPath);
    if (!(await exists(input))) {
      throw new DataError(`fusion table not found`, { file: displayPath, field: 'table', hint: 'set `table:` to the CSV path inside the dep' });
    }
    const progress = ctx.logger.progress('fusion rows', undefined, 'rows');
    const result = await buildFusionTable({
      input,
      displayPath,
      outDir: ctx.out(outRel),
      categoryMap: parseCategoryMap(params['category-map']),
      signal: ctx.signal,
      onRow: () => progress.tick(),
    });
    progress.done();
    const rejected = total(result.rejected);
    return fusionResult(ctx, outRel, result, 'row(s) with bad values', [
      `### Fusion table \`${outRel}\``,
      '',
      `${result.rows} rows read from \`${displayPath}\`, ${result.encoded} encoded into 27 features, ${rejected} left out.`,
    ]);
  },
});

async function runDerived(ctx: StageContext<ParamsOf<typeof PARAMS>>): Promise<StageResult> {
  const { params } = ctx;
  const dataset = datasetDep(params, ctx.deps);
  const detectorModel = params['detector-model'];
  const skinTypeModel = params['skin-type-model'];
  if (!dataset || !detectorModel || !skinTypeModel) {
    throw new ConfigurationError(`${ctx.name}: mode \`derived\` needs a dataset dep, \`detector-model\` and \`skin-type-model\``, { field: 'mode' });
  }
  const outRel = ctx.outs[0]!;
  let categoryMap;
  try {
    categoryMap = derivedCategoryMap(params['category-map']);
  } catch (error) {
    throw new ConfigurationError(`${ctx.name}: ${(error as Error).message}`, { field: 'category-map' });
  }
  const userFields = params['user-fields'];
  const result = await buildDerivedFusion({
    datasetDir: ctx.path(dataset),
    datasetDisplay: dataset,
    detector: { path: ctx.path(detectorModel), display: detectorModel },
    skinType: { path: ctx.path(skinTypeModel), display: skinTypeModel },
    ...(userFields ? { userFields: { path: ctx.path(userFields), display: userFields } } : {}),
    ...(params['target-column'] ? { targetColumn: params['target-column'] } : {}),
    confidence: params.confidence,
    batchSize: params['batch-size'],
    categoryMap,
    outDir: ctx.out(outRel),
    provider: params['execution-provider'],
    threads: availableParallelism(),
    logger: ctx.logger,
    signal: ctx.signal,
  });
  const rejected = total(result.rejected);
  return fusionResult(ctx, outRel, result, 'image(s)', [
    `### Fusion table \`${outRel}\` (derived)`,
    '',
    `${result.images} images of \`${dataset}\` through \`${detectorModel}\` (confidence ≥ ${params.confidence}) and \`${skinTypeModel}\` on ${result.provider.toUpperCase()}: ` +
      `${result.encoded} rows encoded into 27 features, ${rejected} left out.`,
    userFields
      ? `User fields from \`${userFields}\`: ${result.images - result.defaulted} joined, ${result.defaulted} image(s) with the default user fields, ${result.unmatched} row(s) matching no image.`
      : 'No user fields: every row has the default user fields (age 25, Female, sleep 7, stress 5, diet Average, smoker No → `No`, alcohol No → `Low`, skin type as predicted).',
    params['target-column'] ? `Target: \`${params['target-column']}\`.` : 'No target column: the target is empty (a table for inference and drift, not for training).',
  ]);
}

function total(counts: Readonly<Record<string, number>>): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Outputs and summary shared by both modes: what was left out is warned about and counted. */
function fusionResult(
  ctx: Pick<StageContext, 'logger'>,
  outRel: string,
  result: { rows: number; encoded: number; rejected: Record<string, number>; mapped: Record<string, number> },
  leftOutWhat: string,
  headline: string[],
): StageResult {
  const rejected = total(result.rejected);
  if (rejected) ctx.logger.warn(`${rejected} ${leftOutWhat} left out of features.csv: ${JSON.stringify(result.rejected)}`);
  const mappedLines = Object.entries(result.mapped).map(([k, n]) => `| \`${k}\` | ${n} |`);
  const summary = [...headline, ...(mappedLines.length ? ['', '| mapped value | rows |', '|---|---|', ...mappedLines] : [])].join('\n');
  return {
    outputs: {
      'fusion-dir': outRel,
      rows: String(result.rows),
      encoded: String(result.encoded),
      rejected: JSON.stringify(result.rejected),
    },
    summary,
  };
}
