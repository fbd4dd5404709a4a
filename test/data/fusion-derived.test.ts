import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseParams } from '../../pipeline/core/params.ts';
import type { StageContext } from '../../pipeline/core/stage.ts';
import { buildFusionDataStage } from '../../pipeline/data/build-fusion-data.ts';
import { splitCsvLine } from '../../pipeline/data/fusion/csv.ts';
import { derivedCategoryMap, listDatasetImages } from '../../pipeline/data/fusion/derived.ts';
import { encodeRow, FEATURES, isIssue, parseCategoryMap, RAW_COLUMNS } from '../../pipeline/data/fusion/schema.ts';
import { prepareTabular } from '../../pipeline/data/prepare/tabular.ts';
import { synthesize, synthParams } from '../../pipeline/data/synthetic/index.ts';
import { RecordingLogger } from '../support/logger.ts';
import { detectorBias, detectorModel, save, skinTypeModel } from '../inference/models.ts';

// Derived mode over the tiny synthetic dataset with two tiny models: a detector whose class 9
// score is the image's mean pixel value (so rows differ) and constant scores elsewhere, and a
// skin-type classifier with fixed logits through Softmax.

let root: string;
let ids: string[];
const DATASET = 'data/raw/synthetic';
const DET = 'models/detector/model.onnx';
const SK = 'models/skin-type/model.onnx';
const ANCHORS = 6;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'fusion-derived-'));
  await mkdir(join(root, 'data', 'raw'), { recursive: true });
  await mkdir(join(root, 'models', 'detector'), { recursive: true });
  await mkdir(join(root, 'models', 'skin-type'), { recursive: true });
  await mkdir(join(root, 'users'), { recursive: true });
  const params = parseParams(synthParams, { size: 'tiny', seed: 42 }, { what: 'synthetic' });
  await synthesize(join(root, DATASET), params, { logger: new RecordingLogger() });
  ids = (await listDatasetImages(join(root, DATASET), DATASET)).map((i) => i.id);
  const bias = detectorBias(ANCHORS, [
    { anchor: 0, cls: 2, score: 0.5 },
    { anchor: 1, cls: 5, score: 0.3 },
    { anchor: 2, cls: 5, score: 0.6 },
    { anchor: 3, cls: 7, score: 0.05 },
  ]);
  const weight = new Array(14 * ANCHORS).fill(0);
  weight[(4 + 9) * ANCHORS + 4] = 1; // anchor 4, class 9: the mean of the letterboxed image (0..1)
  await save(join(root, DET), detectorModel({ size: 64, bias, weight, anchors: ANCHORS }));
  // Logits [0.2, 1.2, -0.4] plus 0.5·mean on Dry: Softmax.
  await save(join(root, SK), skinTypeModel({ size: 32, bias: [0.2, 1.2, -0.4], weight: [0.5, 0, 0] }));
}, 60_000);
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

let runs = 0;
function ctxFor(params: Record<string, unknown>, deps = [DATASET, 'models', 'users']): StageContext<any> & { logger: RecordingLogger } {
  const parsed = parseParams(buildFusionDataStage.params, { mode: 'derived', 'detector-model': DET, 'skin-type-model': SK, 'batch-size': 4, ...params }, { what: 'build-fusion' });
  const stage = { name: 'build-fusion', deps, outs: ['data/fusion/derived'] };
  buildFusionDataStage.validate!(parsed as never, stage);
  const staging = join(root, `.staging-${runs++}`);
  return {
    name: stage.name,
    kind: 'build-fusion-data',
    params: parsed,
    settings: { seed: 42, cacheDir: '.cache', jobs: 2 },
    root,
    deps,
    outs: stage.outs,
    path: (rel: string) => join(root, rel),
    out: (rel: string) => join(staging, rel),
    tmpDir: join(root, '.tmp'),
    logger: new RecordingLogger(),
    now: () => new Date(0),
    signal: new AbortController().signal,
    env: {},
  };
}

async function csv(path: string): Promise<string[][]> {
  return (await readFile(path, 'utf8')).trim().split('\n').map(splitCsvLine);
}

describe('build-fusion-data, derived mode', () => {
  it('runs both models over every image and writes fusion.csv, features.csv, images.csv and schema.json', async () => {
    const ctx = ctxFor({});
    const result = await buildFusionDataStage.run!(ctx);
    expect(result.outputs).toMatchObject({ 'fusion-dir': 'data/fusion/derived', rows: '40', encoded: '40', rejected: '{}' });
    expect(ctx.logger.messages('info').join('\n')).toMatch(/models\/detector\/model\.onnx: onnxruntime CPU/);
    expect(ctx.logger.progressDone).toEqual([{ label: 'images through the models', done: 40, total: 40 }]);
    const out = ctx.out('data/fusion/derived');
    const raw = await csv(join(out, 'fusion.csv'));
    expect(raw[0]).toEqual([...RAW_COLUMNS]);
    expect(raw).toHaveLength(41);
    const index = await csv(join(out, 'images.csv'));
    expect(index.slice(1).map((r) => r[0])).toEqual(ids);
    const col = (name: string) => RAW_COLUMNS.indexOf(name as never);
    const means = new Set<string>();
    for (const row of raw.slice(1)) {
      // The original defaults; alcohol `No` is read as `Low`; skin type as predicted (Normal wins).
      expect([row[col('age')], row[col('gender')], row[col('sleep_hours')], row[col('stress_level')], row[col('diet_quality')], row[col('smoker')], row[col('alcohol_consumption')], row[col('skin_type')]])
        .toEqual(['25', 'Female', '7', '5', 'Average', 'No', 'Low', 'Normal']);
      const tr = row.slice(col('tr_p0'), col('tr_p9') + 1).map(Number);
      const m = tr[9]! * (Math.fround(0.5) + Math.fround(0.6)) / (1 - tr[9]!); // tr_p9 = m / (0.5 + 0.6 + m)
      expect(m).toBeGreaterThan(0.1);
      expect(m).toBeLessThan(1);
      means.add(m.toFixed(6));
      const sum = Math.fround(0.5) + Math.fround(0.6) + m;
      expect(tr[2]).toBeCloseTo(Math.fround(0.5) / sum, 6);
      expect(tr[5]).toBeCloseTo(Math.fround(0.6) / sum, 6); // the max of 0.3 and 0.6
      expect(tr[7]).toBe(0); // 0.05: below the threshold
      expect(tr.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
      const sk = row.slice(col('sk_p0'), col('sk_p2') + 1).map(Number);
      expect(sk.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
      expect(sk[1]).toBeGreaterThan(sk[0]!);
      expect(row[col('target')]).toBe('');
    }
    expect(means.size).toBeGreaterThan(1); // the scores follow the pixels
    const features = await csv(join(out, 'features.csv'));
    expect(features[0]).toEqual([...FEATURES, 'target']);
    expect(features).toHaveLength(41);
    // features.csv is the encoding of fusion.csv, target left empty.
    const enc = encodeRow(raw[1]!.map((v, i) => (i === col('target') ? '0' : v)), new Map(RAW_COLUMNS.map((c, i) => [c, i])), derivedCategoryMap({}), { file: 'f', line: 2 });
    if (isIssue(enc)) throw new Error(enc.detail);
    expect(features[1]).toEqual([...Array.from(enc.features, String), '']);
    const schema = JSON.parse(await readFile(join(out, 'schema.json'), 'utf8'));
    expect(schema.categoryMap).toEqual({ alcohol_consumption: { No: 'Low' } });
    expect(schema.mapped).toEqual({ 'alcohol_consumption.No': 40 });
    expect(schema.derived).toMatchObject({ detector: { file: DET, inputSize: 64 }, skinType: { file: SK, inputSize: 32 }, confidence: 0.1, targetColumn: null });
    expect(result.summary).toMatch(/No target column/);
  }, 30_000);

  it('joins user fields by image id, defaults the rest, and gives a table prepare-data accepts', async () => {
    const [a, b, c] = ids as [string, string, string];
    await writeFile(
      join(root, 'users', 'fields.csv'),
      ['id,age,gender,alcohol_consumption,skin_type,smoker,label', `${a},61,Male,Moderate,Sensitive,Yes,42`, `${b},33,,,Dry,,7`, `nobody,40,Male,Low,Oily,No,1`].join('\n') + '\n',
    );
    const ctx = ctxFor({ 'user-fields': 'users/fields.csv', 'target-column': 'label', confidence: 0.55, 'batch-size': 3 });
    const result = await buildFusionDataStage.run!(ctx);
    // Images without a row have no target: kept in fusion.csv, left out of features.csv.
    expect(result.outputs).toMatchObject({ rows: '40', encoded: '2', rejected: '{"bad-target":38}' });
    expect(ctx.logger.messages('warn').join('\n')).toMatch(/1 user-fields row\(s\) match no image/);
    const out = ctx.out('data/fusion/derived');
    const raw = await csv(join(out, 'fusion.csv'));
    const byId = new Map((await csv(join(out, 'images.csv'))).slice(1).map((r, i) => [r[0]!, raw[i + 1]!]));
    const pick = (row: string[], names: string[]) => names.map((n) => row[RAW_COLUMNS.indexOf(n as never)]);
    const user = ['age', 'gender', 'sleep_hours', 'stress_level', 'diet_quality', 'smoker', 'alcohol_consumption', 'skin_type', 'target'];
    expect(pick(byId.get(a)!, user)).toEqual(['61', 'Male', '7', '5', 'Average', 'Yes', 'Moderate', 'Sensitive', '42']);
    expect(pick(byId.get(b)!, user)).toEqual(['33', 'Female', '7', '5', 'Average', 'No', 'Low', 'Dry', '7']);
    expect(pick(byId.get(c)!, user)).toEqual(['25', 'Female', '7', '5', 'Average', 'No', 'Low', 'Normal', '']);
    // Confidence 0.55: only class 5 (0.6) counts; class 9 (the mean, < 0.55 on these images) may too.
    const tr = pick(byId.get(a)!, ['tr_p2', 'tr_p5']).map(Number);
    expect(tr[0]).toBe(0);
    expect(tr[1]).toBeGreaterThan(0);
    const features = await csv(join(out, 'features.csv'));
    expect(features.slice(1).map((r) => r.at(-1))).toEqual(['42', '7']);

    // prepare-data's tabular reader takes the derived fusion.csv unchanged.
    const prepared = join(root, 'prepared');
    const logger = new RecordingLogger();
    const r = await prepareTabular({
      input: join(out, 'fusion.csv'),
      display: 'data/fusion/derived/fusion.csv',
      outDir: prepared,
      target: 'target',
      categoryMap: parseCategoryMap({}), // prepare-data's default: the derived table needs no mapping
      fractions: { train: 0.7, val: 0.15 },
      seed: 42,
      maxBadFraction: 1,
      logger,
    });
    expect(r.total).toBe(40);
    expect(r.quarantined).toBe(38);
    expect(r.counts.train + r.counts.val + r.counts.test).toBe(2);
    const split = await csv(join(prepared, `${r.counts.train ? 'train' : r.counts.val ? 'val' : 'test'}.csv`));
    expect(split[0]).toEqual([...FEATURES, 'target']);
  }, 30_000);

  it('rejects an unknown category with the user-fields line and the known values, or maps it', async () => {
    await writeFile(join(root, 'users', 'bad.csv'), `id,alcohol_consumption\n${ids[0]},Low\n${ids[1]},Occasional\n`);
    await expect(buildFusionDataStage.run!(ctxFor({ 'user-fields': 'users/bad.csv' }))).rejects.toMatchObject({
      name: 'DataError',
      message: expect.stringMatching(/^users\/bad\.csv:3: unknown alcohol_consumption value `Occasional`; known values: High, Low, Moderate/),
    });
    const ctx = ctxFor({ 'user-fields': 'users/bad.csv', 'category-map': { 'alcohol_consumption.Occasional': 'Moderate', 'alcohol_consumption.No': 'High' } });
    await buildFusionDataStage.run!(ctx);
    const schema = JSON.parse(await readFile(join(ctx.out('data/fusion/derived'), 'schema.json'), 'utf8'));
    // The stage's own mapping of `No` replaces the default one.
    expect(schema.mapped).toEqual({ 'alcohol_consumption.Occasional': 1, 'alcohol_consumption.No': 38 });
    expect(schema.categoryMap.alcohol_consumption).toEqual({ No: 'High', Occasional: 'Moderate' });
  }, 30_000);

  it('leaves out an image that cannot be decoded, and runs a fixed-batch model in padded chunks', async () => {
    const mini = 'data/raw/mini';
    await mkdir(join(root, mini, 'train', 'images'), { recursive: true });
    const files = (await listDatasetImages(join(root, DATASET), DATASET)).slice(0, 4);
    for (const f of files) await copyFile(join(root, DATASET, f.file), join(root, mini, 'train', 'images', `${f.id}.jpg`));
    await copyFile(join(root, DATASET, 'data.yaml'), join(root, mini, 'data.yaml'));
    await writeFile(join(root, mini, 'train', 'images', 'broken.jpg'), Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0x10, 1, 2, 3]));
    const fixed = 'models/detector/fixed3.onnx';
    const bias = detectorBias(ANCHORS, [{ anchor: 0, cls: 4, score: 0.4 }]);
    await save(join(root, fixed), detectorModel({ size: 64, bias, anchors: ANCHORS, batch: 3 }));
    const ctx = ctxFor({ 'detector-model': fixed, 'batch-size': 5 }, [mini, 'models']);
    const result = await buildFusionDataStage.run!(ctx);
    expect(result.outputs).toMatchObject({ rows: '4', encoded: '4', rejected: '{"unreadable-image":1}' });
    expect(ctx.logger.messages('warn').join('\n')).toMatch(/data\/raw\/mini\/train\/images\/broken\.jpg: left out, cannot be decoded/);
    const raw = await csv(join(ctx.out('data/fusion/derived'), 'fusion.csv'));
    // 4 good images in a batch of 5, through a batch-3 model: chunks of 3 and 1 (padded).
    for (const row of raw.slice(1)) expect(row[RAW_COLUMNS.indexOf('tr_p4')]).toBe('1');
    const index = await csv(join(ctx.out('data/fusion/derived'), 'images.csv'));
    expect(index.slice(1).map((r) => r[0])).toEqual(files.map((f) => f.id).sort());
  }, 30_000);

  it('names bad user-fields columns', async () => {
    await writeFile(join(root, 'users', 'cols.csv'), `id,stress,alcohol_consumption\n${ids[0]},3,Low\n`);
    await expect(buildFusionDataStage.run!(ctxFor({ 'user-fields': 'users/cols.csv' }))).rejects.toThrow(
      /users\/cols\.csv:1: unknown user-fields column\(s\) `stress`/,
    );
  });

  it('names the model whose output is not what its param expects', async () => {
    // The skin-type model given as the detector: inputs fit, the output does not.
    await expect(buildFusionDataStage.run!(ctxFor({ 'detector-model': SK, 'skin-type-model': SK }))).rejects.toMatchObject({
      name: 'ConfigurationError',
      message: expect.stringMatching(/models\/skin-type\/model\.onnx.*detector output has shape \[4, 3\], expected \[batch, 14, boxes\]/),
    });
  }, 30_000);

  it('checks at load time that models and user fields are deps, and that derived params are not given in csv mode', () => {
    const parse = (p: Record<string, unknown>) => parseParams(buildFusionDataStage.params, p, { what: 'build-fusion' }) as never;
    const stage = (deps: string[]) => ({ name: 'build-fusion', deps, outs: ['data/fusion/derived'] });
    const derived = { mode: 'derived', 'detector-model': DET, 'skin-type-model': SK };
    expect(() => buildFusionDataStage.validate!(parse(derived), stage([DATASET, 'models/detector']))).toThrow(
      /`skin-type-model` models\/skin-type\/model\.onnx is not in the stage's deps.*add `models\/skin-type\/model\.onnx` \(or its folder\) to deps/,
    );
    expect(() => buildFusionDataStage.validate!(parse(derived), stage(['./models/detector/model.onnx', 'models/skin-type/', DATASET]))).not.toThrow();
    expect(() => buildFusionDataStage.validate!(parse(derived), stage(['models']))).toThrow(/needs the image dataset as a dep/);
    expect(() => buildFusionDataStage.validate!(parse({ mode: 'derived' }), stage([DATASET]))).toThrow(/needs `detector-model`[\s\S]*needs `skin-type-model`/);
    expect(() => buildFusionDataStage.validate!(parse({ ...derived, 'target-column': 'label' }), stage([DATASET, 'models']))).toThrow(
      /`target-column` needs `user-fields`/,
    );
    expect(() => buildFusionDataStage.validate!(parse({ 'detector-model': DET }), stage([DATASET]))).toThrow(/`detector-model` only apply to mode `derived`/);
  });
});
