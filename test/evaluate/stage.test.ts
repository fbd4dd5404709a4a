import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../pipeline/core/errors.ts';
import { loadPipeline, repro } from '../../pipeline/engine/index.ts';
import { scoreChain, type Buckets } from '../../pipeline/evaluate/chain-eval.ts';
import { metricsFromFile } from '../../pipeline/evaluate/metrics/index.ts';
import type { ChainMetrics, ClassificationMetrics, DetectionMetrics, EvaluationReport } from '../../pipeline/evaluate/types.ts';
import { evaluationProblems } from '../../pipeline/report/schema.ts';
import { skinTypeModel, saveWithCard } from '../inference/models.ts';
import { RecordingLogger } from '../support/logger.ts';
import { fusionRows, prepareFusion } from '../train/stage-fixtures.ts';
import {
  classificationSplit,
  classifierModel,
  commitChampion,
  detectionSplit,
  detectorModelDir,
  MEAN,
  SIZE,
  SKIN,
  STD,
  tabularModelDir,
  tabularSplit,
  W,
  type ClsRow,
} from './stage-fixtures.ts';

const DATA = 'data/processed/skin-type';
const MODEL = 'models/skin-type';
const OUT = 'reports/skin-type';

let base: string;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'skintwin-evaluate-'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** 12 images: 9 the classifier gets right, 3 it gets wrong; no image of tone VI. */
const ROWS: ClsRow[] = [
  { v: 0, label: 0, skin_tone: 'I' },
  { v: 0, label: 0, skin_tone: 'II' },
  { v: 0, label: 0, skin_tone: 'III' },
  { v: 128, label: 1, skin_tone: 'I' },
  { v: 128, label: 1, skin_tone: 'II' },
  { v: 128, label: 1, skin_tone: 'IV' },
  { v: 255, label: 2, skin_tone: 'IV' },
  { v: 255, label: 2, skin_tone: 'V' },
  { v: 255, label: 2, skin_tone: 'V' },
  { v: 0, label: 1, skin_tone: 'III' },
  { v: 255, label: 0, skin_tone: 'I' },
  { v: 128, label: 2, skin_tone: 'V' },
];

async function repo(stages: string): Promise<string> {
  const root = await mkdtemp(join(base, 'repo-'));
  await mkdir(join(root, 'pipeline'), { recursive: true });
  await writeFile(join(root, 'pipeline/pipeline.yaml'), `stages:\n${stages}`);
  return root;
}

function evaluateYaml(params: Record<string, unknown>, deps = [DATA, MODEL], out = OUT, name = 'evaluate-skin-type'): string {
  return `  ${name}:\n    kind: evaluate\n    params: ${JSON.stringify({ model: 'skin-type', ...params })}\n    deps: [${deps.join(', ')}]\n    outs: [${out}]\n`;
}

async function run(root: string) {
  const logger = new RecordingLogger();
  const report = await repro(await loadPipeline({ root }), { logger, env: {} });
  return { report, logger, stage: report.stages[0]! };
}

async function readReport(root: string, out = OUT): Promise<EvaluationReport> {
  return JSON.parse(await readFile(join(root, out, 'evaluation.json'), 'utf8')) as EvaluationReport;
}

describe('evaluate: an image classifier', () => {
  it('scores the test split, slices by skin tone (a tone without images shows as empty), and writes every report', async () => {
    const root = await repo(evaluateYaml({ min: { accuracy: 0.7 }, 'max-regression': { accuracy: 0.01 }, 'max-slice-gap': { skin_tone: 1 } }));
    await classificationSplit(join(root, DATA), ROWS);
    await classifierModel(join(root, MODEL));
    const { stage, logger } = await run(root);
    expect(stage.error).toBeUndefined();
    expect(stage.action).toBe('ran');

    const r = await readReport(root);
    expect(evaluationProblems(r)).toEqual([]);
    const m = r.metrics as ClassificationMetrics;
    expect(m.accuracy).toBeCloseTo(9 / 12, 10);
    expect(m.confusion_matrix).toEqual(confusion(ROWS));
    expect(r.data).toEqual({ path: DATA, split: 'test', rows: 12 });
    expect(r.slices.skin_tone!.values.VI).toEqual({ n: 0, metrics: null });
    expect(r.slices.skin_tone!.values.I!.n).toBe(3);
    expect(r.slices.source!.values.synthetic!.n).toBe(12);

    // No champion: the reasons are said, the regression gate is skipped, the rest decide.
    expect(r.champion.source).toBe('none');
    expect(r.champion.reason).toContain('no registry manifest yet');
    expect(r.champion.reason).toContain('base branch:');
    expect(r.comparison).toEqual([]);
    expect(r.gates.map((g) => [g.name, g.status])).toEqual([
      ['min accuracy', 'pass'],
      ['max regression accuracy', 'skipped'],
      ['max slice gap skin_tone', 'pass'],
    ]);
    expect(r.verdict).toBe('pass');
    expect(logger.messages('warn').join('\n')).toContain('no champion comparison');

    expect(stage.outputs).toMatchObject({
      verdict: 'pass',
      'failed-gates': '',
      report: `${OUT}/evaluation.json`,
      'primary-metric': 'f1_macro',
      'champion-source': 'none',
    });
    expect(Number(stage.outputs['primary-value'])).toBeCloseTo(m.f1_macro, 10);
    const md = await readFile(join(root, OUT, 'evaluation.md'), 'utf8');
    expect(stage.summary).toBe(md);
    expect(md).toContain('no registry manifest yet');

    // Plots are listed and on disk; the predictions re-score to the same metrics.
    const files = await readdir(join(root, OUT));
    expect(r.plots.length).toBeGreaterThan(0);
    for (const p of r.plots) expect(files).toContain(p.file);
    const lines = (await readFile(join(root, OUT, 'predictions.jsonl'), 'utf8')).trim().split('\n');
    expect(lines).toHaveLength(12);
    expect(JSON.parse(lines[0]!)).toMatchObject({ id: 'img-0', label: 'Dry', slice: { skin_tone: 'I', source: 'synthetic' } });
    const again = await metricsFromFile(join(root, OUT, 'predictions.jsonl'), 'predictions.jsonl', 'classification', { classes: SKIN });
    expect((again.metrics as ClassificationMetrics).accuracy).toBeCloseTo(m.accuracy, 6);
    expect((again.metrics as ClassificationMetrics).f1_macro).toBeCloseTo(m.f1_macro, 6);
  });

  it('an empty test split is a DataError naming the split folder', async () => {
    const root = await repo(evaluateYaml({}));
    await classificationSplit(join(root, DATA), []);
    await classifierModel(join(root, MODEL));
    const { stage, report } = await run(root);
    expect(report.ok).toBe(false);
    expect(stage.error).toContain(`${DATA}/test: the \`test\` split has no images`);
  });
});

/** Confusion counts of ROWS under the classifier (dark → Dry, mid → Normal, bright → Oily). */
function confusion(rows: readonly ClsRow[]): number[][] {
  const m = [0, 1, 2].map(() => [0, 0, 0]);
  for (const r of rows) m[r.label]![r.v === 0 ? 0 : r.v === 128 ? 1 : 2]!++;
  return m;
}

describe('evaluate: champion and challenger', () => {
  it('compares with the base branch\'s model from the cache; a regression beyond the tolerance fails the verdict', async () => {
    const root = await repo(evaluateYaml({ min: { accuracy: 0.1 }, 'max-regression': { accuracy: 0.01 } }));
    await classificationSplit(join(root, DATA), ROWS);
    await classifierModel(join(root, MODEL));
    await commitChampion(root, MODEL);
    // The challenger never says Normal: it is worse than the champion.
    await rm(join(root, MODEL), { recursive: true });
    await classifierModel(join(root, MODEL), [0, -3, 0]);
    const { stage, logger } = await run(root);
    expect(stage.error).toBeUndefined();
    const r = await readReport(root);
    expect(evaluationProblems(r)).toEqual([]);
    expect(r.champion.source).toBe('base-branch');
    expect(logger.messages('info').join('\n')).toMatch(/against the champion \(base-branch\): f1_macro 0\.\d{4} → 0\.\d{4} \(Δ -0\.\d{4}, 95% CI \[/);
    expect(r.champion.reason).toContain('train-skin-type');
    expect(r.champion.metrics?.task).toBe('classification');
    expect((r.champion.metrics as ClassificationMetrics).accuracy).toBeCloseTo(0.75, 10);
    const acc = r.comparison.find((d) => d.metric === 'accuracy')!;
    expect(acc.delta).toBeCloseTo((r.metrics as ClassificationMetrics).accuracy - 0.75, 10);
    expect(acc.delta!).toBeLessThan(0);
    expect(acc.ci95).not.toBeNull();
    expect(acc.ci95![0]).toBeLessThanOrEqual(acc.delta!);
    expect(r.mcnemar).not.toBeNull();
    expect(r.mcnemar!.championOnly).toBeGreaterThan(0);
    expect(r.verdict).toBe('fail');
    expect(stage.outputs.verdict).toBe('fail');
    expect(stage.outputs['failed-gates']).toBe('max regression accuracy');
    expect(stage.outputs['champion-source']).toBe('base-branch');
  });

  it('with fail-on-gate the stage fails on a failed gate, naming it', async () => {
    const root = await repo(evaluateYaml({ min: { accuracy: 0.99 }, champion: 'none', 'fail-on-gate': true }));
    await classificationSplit(join(root, DATA), ROWS);
    await classifierModel(join(root, MODEL));
    const { stage, report } = await run(root);
    expect(report.ok).toBe(false);
    expect(stage.error).toContain('gate(s) failed: min accuracy (accuracy 0.7500 < 0.9900)');
  });

  it('a champion that fails to load: report without comparison, the reason said, regression gates skipped, never a crash', async () => {
    const root = await repo(evaluateYaml({ min: { accuracy: 0.5 }, 'max-regression': { accuracy: 0 } }));
    await classificationSplit(join(root, DATA), ROWS);
    // The cached champion's card does not match its model file.
    await saveWithCard(
      join(root, MODEL),
      skinTypeModel({ size: 'S', bias: [0, 0, 0], weight: W }),
      { task: 'image-classification', classes: SKIN, inputName: 'input', inputShape: ['N', 3, SIZE, SIZE], outputName: 'probs', outputShape: ['N', 3], preprocessing: { type: 'image', size: SIZE, resize: 'fill', mean: MEAN, std: STD } },
      'ab'.repeat(32),
    );
    await commitChampion(root, MODEL);
    await rm(join(root, MODEL), { recursive: true });
    await classifierModel(join(root, MODEL));
    const { stage, logger } = await run(root);
    expect(stage.error).toBeUndefined();
    const r = await readReport(root);
    expect(r.champion.source).toBe('none');
    expect(r.champion.reason).toMatch(/failed to load: .*sha256/);
    expect(r.gates.find((g) => g.kind === 'regression')).toMatchObject({ status: 'skipped' });
    expect(r.gates.find((g) => g.kind === 'regression')!.message).toContain('failed to load');
    expect(r.verdict).toBe('pass');
    expect(logger.messages('warn').join('\n')).toMatch(/no champion comparison: .*failed to load/);
    expect(await readFile(join(root, OUT, 'evaluation.md'), 'utf8')).toContain('failed to load');
  });

  it('a champion identical to the challenger is said, not warned about', async () => {
    const root = await repo(evaluateYaml({ 'max-regression': { accuracy: 0 } }));
    await classificationSplit(join(root, DATA), ROWS);
    await classifierModel(join(root, MODEL));
    await commitChampion(root, MODEL);
    const { stage, logger } = await run(root);
    expect(stage.error).toBeUndefined();
    const r = await readReport(root);
    expect(r.champion.reason).toContain('identical to the challenger');
    expect(logger.messages('warn').join('\n')).not.toContain('no champion comparison');
    expect(r.gates[0]!.status).toBe('skipped');
  });
});

describe('evaluate: the detector', () => {
  it('compares boxes in original pixels and writes re-scorable predictions', async () => {
    const data = 'data/processed/face-troubles';
    const model = 'models/skin-detection';
    const out = 'reports/skin-detection';
    const root = await repo(evaluateYaml({ model: 'skin-detection', champion: 'none', min: { map50: 0.4 } }, [data, model], out, 'evaluate-skin-detection'));
    // The detector finds Acne at [30, 18, 50, 38] and Skin-Redness at [70, 22, 90, 42] on every image.
    await detectionSplit(join(root, data), [
      { boxes: [[0, 30, 18, 50, 38]], skin_tone: 'II' },
      { boxes: [[0, 30, 18, 50, 38], [9, 0, 0, 10, 10]], skin_tone: 'V' },
      { boxes: [], skin_tone: 'V' },
    ]);
    await detectorModelDir(join(root, model));
    const { stage } = await run(root);
    expect(stage.error).toBeUndefined();
    const r = await readReport(root, out);
    expect(evaluationProblems(r)).toEqual([]);
    const m = r.metrics as DetectionMetrics;
    expect(m.task).toBe('detection');
    expect(m.per_class.Acne).toMatchObject({ support: 2, recall: 1 });
    expect(m.per_class.Acne!.precision).toBeCloseTo(2 / 3, 10);
    expect(m.per_class.Acne!.ap50).toBeCloseTo(1, 10);
    expect(m.per_class.Wrinkles!.ap50).toBe(0);
    expect(m.map50).toBeCloseTo(0.5, 10);
    expect(m.precision).toBeCloseTo(2 / 6, 10);
    expect(m.recall).toBeCloseTo(2 / 3, 10);
    expect(r.slices.skin_tone!.values.I).toEqual({ n: 0, metrics: null });
    expect(r.verdict).toBe('pass');
    expect(stage.outputs['primary-metric']).toBe('map50');
    const again = await metricsFromFile(join(root, out, 'predictions.jsonl'), 'predictions.jsonl', 'detection');
    expect((again.metrics as DetectionMetrics).map50).toBeCloseTo(m.map50, 6);
  });
});

describe('evaluate: the tabular context-correction model', () => {
  it('scores the prepared CSV split, slices by skin type, and leaves out rows of a class the model lacks (said)', async () => {
    const data = 'data/processed/fusion';
    const model = 'models/context-correction';
    const out = 'reports/context-correction';
    const root = await repo(evaluateYaml({ model: 'context-correction', champion: 'none', 'max-slice-gap': { skin_type: 0.5 } }, [data, model], out, 'evaluate-context-correction'));
    await tabularSplit(join(root, data), [
      { tr0: 0.9, skin: 'Dry', target: 17 },
      { tr0: 0, skin: 'Oily', target: 42 },
      { tr0: 0, skin: 'Dry', target: 3 },
      { tr0: 0, skin: 'Combination', target: 3 },
      { tr0: 0.9, skin: 'Oily', target: 42 },
      { tr0: 0, skin: 'Dry', target: 99 },
    ]);
    await tabularModelDir(join(root, model));
    const { stage, logger } = await run(root);
    expect(stage.error).toBeUndefined();
    const r = await readReport(root, out);
    expect(evaluationProblems(r)).toEqual([]);
    const m = r.metrics as ClassificationMetrics;
    expect(r.data.rows).toBe(5);
    expect(m.accuracy).toBeCloseTo(4 / 5, 10);
    expect(Object.keys(r.slices.skin_type!.values).sort()).toEqual(['Combination', 'Dry', 'Oily']);
    expect(r.slices.skin_type!.values.Oily!.n).toBe(2);
    expect(logger.messages('warn').join('\n')).toContain('1 row(s) of data/processed/fusion/test.csv have a target the model has no class for (first: line 7: `99`)');
  });
});

describe('evaluate: the gbdt model the train stage writes', () => {
  it('trains and evaluates in one pipeline run; the one-hot card gives the dropped skin-type level', async () => {
    const data = 'data/processed/fusion';
    const model = 'models/context-correction';
    const train =
      '  train-context-correction:\n    kind: train\n' +
      `    params: ${JSON.stringify({ model: 'context-correction', trainer: 'gbdt', 'n-estimators': 12, 'max-depth': 3, 'early-stopping-rounds': 5 })}\n` +
      `    deps: [${data}]\n    outs: [${model}]\n`;
    const root = await repo(train + evaluateYaml({ model: 'context-correction', min: { accuracy: 0.7 } }, [data, model], 'reports/context-correction', 'evaluate-context-correction'));
    await prepareFusion(join(root, 'raw'), fusionRows(900), join(root, data));
    const logger = new RecordingLogger();
    const result = await repro(await loadPipeline({ root }), { logger, env: { GITHUB_SHA: 'a'.repeat(40) } });
    expect(result.stages.map((s) => [s.stage, s.action, s.error])).toEqual([
      ['train-context-correction', 'ran', undefined],
      ['evaluate-context-correction', 'ran', undefined],
    ]);
    const r = await readReport(root, 'reports/context-correction');
    expect(evaluationProblems(r)).toEqual([]);
    const m = r.metrics as ClassificationMetrics;
    expect(m.classes.sort()).toEqual(['17', '3', '42']);
    // The rule is learnable (5% label noise): far above the majority class.
    expect(m.accuracy).toBeGreaterThan(0.8);
    expect(r.verdict).toBe('pass');
    expect(Object.keys(r.slices.skin_type!.values).sort()).toEqual(['Combination', 'Dry', 'Normal', 'Oily', 'Sensitive']);
    // Not a git repository: no base branch to compare with, and the report says so.
    expect(r.champion.reason).toContain('base branch: cannot read pipeline/pipeline.lock at `main`');
  });
});

describe('evaluate: the chain', () => {
  it('scores buckets against ground-truth boxes and severities against the chain fed the ground truth', async () => {
    const data = 'data/processed/face-troubles';
    const deps = [data, 'models/skin-detection', 'models/skin-type', 'models/context-correction'];
    const root = await repo(evaluateYaml({ model: 'chain', min: { f1_macro: 0.1 } }, deps, 'reports/chain', 'evaluate-chain'));
    await detectionSplit(join(root, data), [{ boxes: [[0, 30, 18, 50, 38]] }, { boxes: [[0, 30, 18, 50, 38], [9, 0, 0, 10, 10]] }, { boxes: [] }]);
    await detectorModelDir(join(root, deps[1]!));
    await classifierModel(join(root, deps[2]!));
    await tabularModelDir(join(root, deps[3]!));
    const { stage } = await run(root);
    expect(stage.error).toBeUndefined();
    const r = await readReport(root, 'reports/chain');
    expect(evaluationProblems(r)).toEqual([]);
    const m = r.metrics as ChainMetrics;
    // Every image: Acne 0.9/1.4 → MODERATE, Skin-Redness 0.5/1.4 → LOW (see the test fixtures).
    expect(m.buckets.acne).toMatchObject({ recall: 1, f1: 0.8, support: 2, severity_agreement: 0 });
    expect(m.buckets.acne!.precision).toBeCloseTo(2 / 3, 10);
    expect(m.buckets.wrinkles).toMatchObject({ precision: 0, recall: 0, f1: 0, support: 1 });
    expect(m.buckets.wrinkles!.severity_agreement).toBeCloseTo(2 / 3, 10);
    expect(m.buckets.dark_spots).toMatchObject({ f1: 0, support: 0, severity_agreement: 1 });
    expect(m.buckets.redness).toMatchObject({ f1: 0, support: 0, severity_agreement: 0 });
    expect(m.f1_macro).toBeCloseTo(0.2, 10);
    expect(m.severity_agreement).toBeCloseTo(5 / 12, 10);
    expect(r.champion.source).toBe('none');
    expect(r.verdict).toBe('pass');
    const first = JSON.parse((await readFile(join(root, 'reports/chain/predictions.jsonl'), 'utf8')).split('\n')[0]!);
    expect(first.buckets.acne).toEqual({ detected: true, severity: 'MODERATE', confidence: expect.closeTo(0.9 / 1.4, 6) });
    expect(first.reference.acne).toEqual({ detected: true, severity: 'HIGH', confidence: 1 });
    expect(first.skin_type).toHaveProperty('Dry');
    expect(first.context.class_id).toBeTypeOf('number');
  });

  it('refuses a regression gate and the wrong number of deps at load time', async () => {
    const root = await repo(evaluateYaml({ model: 'chain', 'max-regression': { f1_macro: 0.1 } }, ['a', 'b'], 'reports/chain', 'evaluate-chain'));
    const error = await loadPipeline({ root }).then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigurationError);
    expect((error as Error).message).toContain('needs 4 deps');
    expect((error as Error).message).toContain('`max-regression` cannot apply');
  });
});

describe('chain scoring', () => {
  const none = { detected: false, severity: 'NONE', confidence: 0 } as const;
  const b = (o: Partial<Record<'acne' | 'wrinkles' | 'dark_spots' | 'redness', { detected: boolean; severity: 'HIGH' | 'MODERATE' | 'LOW' | 'NONE'; confidence: number }>>): Buckets => ({
    acne: none,
    wrinkles: none,
    dark_spots: none,
    redness: none,
    ...o,
  });
  it('zero_division 0 everywhere, and nothing to score is all zeros', () => {
    expect(scoreChain([])).toEqual({ task: 'chain', n: 0, buckets: expect.any(Object), f1_macro: 0, severity_agreement: 0 });
    const m = scoreChain([{ predicted: b({ acne: { detected: true, severity: 'HIGH', confidence: 0.9 } }), reference: b({ acne: { detected: true, severity: 'HIGH', confidence: 1 } }) }]);
    expect(m.buckets.acne).toEqual({ precision: 1, recall: 1, f1: 1, support: 1, severity_agreement: 1 });
    expect(m.f1_macro).toBe(0.25);
    expect(m.severity_agreement).toBe(1);
  });
});
