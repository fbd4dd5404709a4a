// Stage kind `prepare-data`: validate a dataset (quarantining bad items), split it
// deterministically, preprocess it once into the format training reads, and write the
// reference profile of the training split.

import { join } from 'node:path';
import { ConfigurationError, DataError } from '../core/errors.ts';
import { exists } from '../core/fs.ts';
import { defineStage } from '../core/stage.ts';
import { parseCategoryMap } from './fusion/schema.ts';
import { prepareImages, type PrepareResult } from './prepare/images.ts';
import { prepareTabular } from './prepare/tabular.ts';

export const prepareDataStage = defineStage({
  kind: 'prepare-data',
  title: 'Validate, split and preprocess a dataset and write its reference profile',
  params: {
    task: { type: 'string', description: 'What the data is for', choices: ['detection', 'classification', 'tabular'] as const, required: true },
    'image-size': { type: 'integer', description: 'Square input size (default 640 for detection, 224 for classification)', min: 32, max: 4096 },
    'train-fraction': { type: 'number', description: 'Share of items in the training split', default: 0.7, min: 0, max: 1 },
    'val-fraction': { type: 'number', description: 'Share in the validation split (the rest is test)', default: 0.15, min: 0, max: 1 },
    seed: { type: 'integer', description: 'Split seed (default: settings.seed)' },
    'max-bad-fraction': { type: 'number', description: 'Fail when more than this share of items is quarantined', default: 0.05, min: 0, max: 1 },
    'near-duplicate-distance': {
      type: 'integer',
      description: 'Hamming distance of the 256-bit pHash at or below which two images are near duplicates (kept in one split); -1 disables',
      default: 12,
      min: -1,
      max: 64,
    },
    'label-source': {
      type: 'string',
      description: 'Classification labels: `metadata` (skin_type in metadata.jsonl) or `folders` (class-per-folder)',
      choices: ['metadata', 'folders'] as const,
      default: 'metadata',
    },
    classes: { type: 'string-list', description: 'Class names in index order (default: data.yaml, the skin types, or the folder names)' },
    'min-size': { type: 'integer', description: 'Images whose shorter side is below this are quarantined', default: 32, min: 1 },
    'strict-colour': {
      type: 'boolean',
      description: 'Quarantine grayscale, CMYK, 16-bit and alpha images instead of converting them to 8-bit sRGB',
      default: false,
    },
    'imbalance-ratio': { type: 'number', description: 'Warn when the largest/smallest class ratio exceeds this', default: 10, min: 1 },
    table: { type: 'string', description: 'Tabular: path of the CSV inside the dep', default: 'fusion.csv' },
    target: { type: 'string', description: 'Tabular: name of the target column', default: 'target' },
    'category-map': { type: 'mapping', description: 'Tabular: map unknown category values (`alcohol_consumption.Occasional: Low`)', default: {} },
    concurrency: { type: 'integer', description: 'Images decoded at once (0: one per core)', default: 0, min: 0, max: 64 },
  },
  outputs: {
    'prepared-dir': 'Directory with the splits, validation report and reference profile',
    train: 'Items in the training split',
    val: 'Items in the validation split',
    test: 'Items in the test split',
    quarantined: 'Items quarantined (listed in quarantine.jsonl)',
    profile: 'Path of reference-profile.json',
    'validation-report': 'Path of validation.md',
  },
  codePaths: ['data'],
  validate(params, stage) {
    const problems: ConfigurationError[] = [];
    if (params['train-fraction'] + params['val-fraction'] > 1 + 1e-9) {
      problems.push(new ConfigurationError(`${stage.name}: train-fraction + val-fraction must be ≤ 1`, { field: 'val-fraction' }));
    }
    try {
      parseCategoryMap(params['category-map']);
    } catch (error) {
      problems.push(new ConfigurationError(`${stage.name}: ${(error as Error).message}`, { field: 'category-map' }));
    }
    if (stage.deps.length !== 1) problems.push(new ConfigurationError(`${stage.name}: prepare-data needs exactly one dep`, { field: 'deps' }));
    if (stage.outs.length !== 1) problems.push(new ConfigurationError(`${stage.name}: prepare-data needs exactly one out`, { field: 'outs' }));
    if (problems.length) throw ConfigurationError.all(problems);
  },
  async run(ctx) {
    const p = ctx.params;
    const dep = ctx.deps[0]!;
    const outRel = ctx.outs[0]!;
    const outDir = ctx.out(outRel);
    const seed = p.seed ?? ctx.settings.seed;
    const fractions = { train: p['train-fraction'], val: p['val-fraction'] };
    if (!(await exists(ctx.path(dep)))) throw new DataError('dataset directory not found', { file: dep });
    let result: PrepareResult;
    if (p.task === 'tabular') {
      const display = join(dep, p.table);
      if (!(await exists(ctx.path(display)))) throw new DataError('table not found', { file: display, field: 'table' });
      result = await prepareTabular({
        input: ctx.path(display),
        display,
        outDir,
        target: p.target,
        categoryMap: parseCategoryMap(p['category-map']),
        fractions,
        seed,
        maxBadFraction: p['max-bad-fraction'],
        logger: ctx.logger,
        signal: ctx.signal,
      });
    } else {
      result = await prepareImages({
        task: p.task,
        root: ctx.path(dep),
        display: dep,
        outDir,
        imageSize: p['image-size'] ?? (p.task === 'detection' ? 640 : 224),
        fractions,
        seed,
        maxBadFraction: p['max-bad-fraction'],
        nearDuplicateDistance: p['near-duplicate-distance'],
        labelSource: p['label-source'],
        ...(p.classes ? { classes: p.classes } : {}),
        minSize: p['min-size'],
        strictColour: p['strict-colour'],
        imbalanceRatio: p['imbalance-ratio'],
        concurrency: p.concurrency,
        logger: ctx.logger,
        signal: ctx.signal,
      });
    }
    const r = result.report;
    const summary = [
      `### Prepared \`${outRel}\` (${p.task})`,
      '',
      `${result.total} items: train ${result.counts.train}, val ${result.counts.val}, test ${result.counts.test}, quarantined ${result.quarantined}.`,
      r.nearDuplicates.groups ? `Near-duplicate groups: ${r.nearDuplicates.groups} (${r.nearDuplicates.itemsInGroups} images), pairs across splits: ${r.nearDuplicates.crossSplitPairs}.` : '',
      ...[...r.classBalance.warnings, ...r.warnings].map((w) => `- ⚠️ ${w}`),
      '',
      `Validation report: \`${outRel}/validation.md\`; reference profile: \`${outRel}/reference-profile.json\`.`,
    ]
      .filter((l, i, a) => l !== '' || a[i - 1] !== '')
      .join('\n');
    return {
      outputs: {
        'prepared-dir': outRel,
        train: String(result.counts.train),
        val: String(result.counts.val),
        test: String(result.counts.test),
        quarantined: String(result.quarantined),
        profile: `${outRel}/reference-profile.json`,
        'validation-report': `${outRel}/validation.md`,
      },
      summary,
      reports: [`${outRel}/validation.md`, `${outRel}/reference-profile.json`],
    };
  },
});
