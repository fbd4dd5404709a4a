// Stage kind `build-fusion-data`: build the 27-feature fusion table for the context-correction
// model, from a CSV source (schema-checked) or — later — derived by running the image models.

import { join } from 'node:path';
import { ConfigurationError, DataError, NotImplementedError } from '../core/errors.ts';
import { exists } from '../core/fs.ts';
import { defineStage } from '../core/stage.ts';
import { buildFusionTable } from './fusion/build.ts';
import { parseCategoryMap } from './fusion/schema.ts';

export const buildFusionDataStage = defineStage({
  kind: 'build-fusion-data',
  title: 'Build the 27-feature fusion table for the context-correction model',
  params: {
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
      description: 'Map unknown category values to known levels: `alcohol_consumption.Occasional: Low`',
      default: {},
    },
  },
  outputs: {
    'fusion-dir': 'Directory holding fusion.csv (raw, schema-checked), features.csv (27 features + target) and schema.json',
    rows: 'Data rows read',
    encoded: 'Rows encoded into features.csv',
    rejected: 'Rows left out (bad values), as JSON counts by reason',
  },
  codePaths: ['data'],
  validate(params, stage) {
    try {
      parseCategoryMap(params['category-map']);
    } catch (error) {
      throw new ConfigurationError(`${stage.name}: ${(error as Error).message}`, { field: 'category-map' });
    }
    if (stage.deps.length !== 1) throw new ConfigurationError(`${stage.name}: build-fusion-data needs exactly one dep`, { field: 'deps' });
    if (stage.outs.length !== 1) throw new ConfigurationError(`${stage.name}: build-fusion-data needs exactly one out`, { field: 'outs' });
  },
  async run(ctx) {
    const { params } = ctx;
    if (params.mode === 'derived') {
      throw new NotImplementedError(
        `${ctx.name}: mode \`derived\` needs the ONNX inference engine (detector + skin-type models over the images), which is not built yet; use mode \`csv\` with a table`,
      );
    }
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
    const rejected = Object.values(result.rejected).reduce((a, b) => a + b, 0);
    if (rejected) ctx.logger.warn(`${rejected} row(s) with bad values left out of features.csv: ${JSON.stringify(result.rejected)}`);
    const mappedLines = Object.entries(result.mapped).map(([k, n]) => `| \`${k}\` | ${n} |`);
    const summary = [
      `### Fusion table \`${outRel}\``,
      '',
      `${result.rows} rows read from \`${displayPath}\`, ${result.encoded} encoded into 27 features, ${rejected} left out.`,
      ...(mappedLines.length ? ['', '| mapped value | rows |', '|---|---|', ...mappedLines] : []),
    ].join('\n');
    return {
      outputs: {
        'fusion-dir': outRel,
        rows: String(result.rows),
        encoded: String(result.encoded),
        rejected: JSON.stringify(result.rejected),
      },
      summary,
    };
  },
});
