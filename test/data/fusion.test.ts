import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildFusionDataStage } from '../../pipeline/data/build-fusion-data.ts';
import { buildFusionTable } from '../../pipeline/data/fusion/build.ts';
import { splitCsvLine } from '../../pipeline/data/fusion/csv.ts';
import { encodeRow, FEATURES, headerIndex, isIssue, parseCategoryMap, RAW_COLUMNS } from '../../pipeline/data/fusion/schema.ts';
import { parseParams } from '../../pipeline/core/params.ts';
import type { StageContext } from '../../pipeline/core/stage.ts';
import { RecordingLogger } from '../support/logger.ts';

const HEADER = RAW_COLUMNS.join(',');
// age,gender,sleep,stress,diet,smoker,alcohol,skin_type,tr_p0..9,sk_p0..2,target
const ROW_A = '34,Male,6.5,7,Good,Yes,Moderate,Oily,0.5,0,0,0.25,0,0,0,0.25,0,0,0.1,0.2,0.7,42';
const ROW_B = '61,Female,8,3,Average,No,High,Combination,0,0,0,0,0,0,0,0,0,0,0.6,0.3,0.1,0';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fusion-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const index = headerIndex(HEADER.split(','), 'f.csv');
const none = parseCategoryMap({});

describe('fusion encoding', () => {
  it('has the 27 features of the original, in order', () => {
    expect(FEATURES).toEqual([
      'age', 'sleep_hours', 'stress_level',
      'tr_p0', 'tr_p1', 'tr_p2', 'tr_p3', 'tr_p4', 'tr_p5', 'tr_p6', 'tr_p7', 'tr_p8', 'tr_p9',
      'sk_p0', 'sk_p1', 'sk_p2',
      'gender_Male', 'skin_type_Dry', 'skin_type_Normal', 'skin_type_Oily', 'skin_type_Sensitive', 'smoker_Yes',
      'alcohol_consumption_Low', 'alcohol_consumption_Moderate', 'diet_quality_Excellent', 'diet_quality_Good', 'diet_quality_Poor',
    ]);
  });

  it('encodes rows exactly as hand-computed (first levels dropped)', () => {
    const a = encodeRow(splitCsvLine(ROW_A), index, none, { file: 'f.csv', line: 2 });
    const b = encodeRow(splitCsvLine(ROW_B), index, none, { file: 'f.csv', line: 3 });
    if (isIssue(a) || isIssue(b)) throw new Error('unexpected issue');
    expect(Array.from(a.features)).toEqual([
      34, 6.5, 7, 0.5, 0, 0, 0.25, 0, 0, 0, 0.25, 0, 0, 0.1, 0.2, 0.7,
      1, 0, 0, 1, 0, 1, 0, 1, 0, 1, 0,
    ]);
    expect(a.target).toBe(42);
    // Female, Combination, No, High, Average: every one-hot is zero.
    expect(Array.from(b.features)).toEqual([61, 8, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0.6, 0.3, 0.1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('rejects an unknown category with file, line, column, the known values and the nearest', () => {
    const row = ROW_A.replace('Moderate', 'Occasional');
    let error: unknown;
    try {
      encodeRow(splitCsvLine(row), index, none, { file: 'data/raw/x/fusion.csv', line: 7 });
    } catch (e) {
      error = e;
    }
    expect((error as Error).name).toBe('DataError');
    const msg = (error as Error).message;
    expect(msg).toContain('data/raw/x/fusion.csv:7');
    expect(msg).toContain('alcohol_consumption');
    expect(msg).toContain('`Occasional`');
    expect(msg).toContain('High, Low, Moderate');
    expect(msg).toContain('category-map');
    expect(() => encodeRow(splitCsvLine(ROW_A.replace('Male', 'Mail')), index, none, { file: 'f', line: 2 })).toThrow(/did you mean `Male`/);
  });

  it('encodes a mapped value as its target level', () => {
    const map = parseCategoryMap({ 'alcohol_consumption.Occasional': 'Low' });
    const r = encodeRow(splitCsvLine(ROW_A.replace('Moderate', 'Occasional')), index, map, { file: 'f', line: 2 });
    if (isIssue(r)) throw new Error('issue');
    expect(r.categories.alcohol_consumption).toBe('Low');
    expect(r.features[FEATURES.indexOf('alcohol_consumption_Low')]).toBe(1);
    expect(r.features[FEATURES.indexOf('alcohol_consumption_Moderate')]).toBe(0);
  });

  it('refuses a mapping to an unknown level or column', () => {
    expect(() => parseCategoryMap({ 'alcohol_consumption.Occasional': 'Sometimes' })).toThrow(/not a level of alcohol_consumption/);
    expect(() => parseCategoryMap({ 'alcohol.Occasional': 'Low' })).toThrow(/expected `<column>.<value>`/);
  });

  it('reports bad rows as issues: column count, non-numeric, NaN, Infinity, out-of-range age', () => {
    const at = { file: 'f', line: 2 };
    const cells = (s: string) => splitCsvLine(s);
    const cases: [string, string][] = [
      [ROW_A + ',9', 'wrong-column-count'],
      [ROW_A.replace(/^34/, 'abc'), 'non-numeric'],
      [ROW_A.replace(/^34/, 'NaN'), 'not-finite'],
      [ROW_A.replace(',6.5,', ',Infinity,'), 'not-finite'],
      [ROW_A.replace(/^34/, '400'), 'out-of-range'],
      [ROW_A.replace(/,42$/, ',4.5'), 'bad-target'],
    ];
    for (const [row, reason] of cases) {
      const r = encodeRow(cells(row), index, none, at);
      expect(isIssue(r) ? r.reason : 'ok', row).toBe(reason);
    }
  });

  it('names missing and misspelt header columns', () => {
    const header = HEADER.replace('stress_level', 'stress_lvl').split(',');
    expect(() => headerIndex(header, 'f.csv')).toThrow(/f\.csv:1: .*missing column\(s\) stress_level.*stress_lvl \(did you mean stress_level\?\)/);
  });
});

function ctxFor(params: Record<string, unknown>, root: string): StageContext<any> {
  const parsed = parseParams(buildFusionDataStage.params, params, { what: 'build-fusion' });
  return {
    name: 'build-fusion',
    kind: 'build-fusion-data',
    params: parsed,
    settings: { seed: 42, cacheDir: '.cache', jobs: 2 },
    root,
    deps: ['raw'],
    outs: ['fusion'],
    path: (rel: string) => join(root, rel),
    out: (rel: string) => join(root, '.staging', rel),
    tmpDir: join(root, '.tmp'),
    logger: new RecordingLogger(),
    now: () => new Date(0),
    signal: new AbortController().signal,
    env: {},
  };
}

describe('build-fusion-data stage', () => {
  it('writes fusion.csv, features.csv and schema.json, mapping values and leaving bad rows out', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'raw'));
    await writeFile(
      join(dir, 'raw', 'fusion.csv'),
      [HEADER, ROW_A, ROW_B.replace('High', 'Occasional'), ROW_A.replace(/^34/, 'NaN')].join('\n') + '\n',
    );
    const ctx = ctxFor({ 'category-map': { 'alcohol_consumption.Occasional': 'Low' } }, dir);
    const result = await buildFusionDataStage.run!(ctx);
    expect(result.outputs).toMatchObject({ 'fusion-dir': 'fusion', rows: '3', encoded: '2', rejected: '{"not-finite":1}' });
    const out = join(dir, '.staging', 'fusion');
    const features = (await readFile(join(out, 'features.csv'), 'utf8')).trim().split('\n');
    expect(features[0]).toBe([...FEATURES, 'target'].join(','));
    expect(features).toHaveLength(3);
    expect(features[2]).toBe('61,8,3,0,0,0,0,0,0,0,0,0,0,0.6,0.3,0.1,0,0,0,0,0,0,1,0,0,0,0,0');
    const raw = (await readFile(join(out, 'fusion.csv'), 'utf8')).trim().split('\n');
    // Line numbers keep pointing at the source: the bad row is still line 4.
    expect(raw).toHaveLength(4);
    expect(raw[2]).toContain(',Low,');
    expect(raw[3]!.startsWith('NaN,')).toBe(true);
    const schema = JSON.parse(await readFile(join(out, 'schema.json'), 'utf8'));
    expect(schema.droppedLevels).toEqual({ gender: 'Female', skin_type: 'Combination', smoker: 'No', alcohol_consumption: 'High', diet_quality: 'Average' });
    expect(schema.mapped).toEqual({ 'alcohol_consumption.Occasional': 1 });
  });

  it('fails on an unmapped unknown value, naming the line', async () => {
    const { mkdir } = await import('node:fs/promises');
    await mkdir(join(dir, 'raw'));
    await writeFile(join(dir, 'raw', 'fusion.csv'), [HEADER, ROW_A, ROW_B.replace('High', 'Occasional')].join('\n'));
    await expect(buildFusionDataStage.run!(ctxFor({}, dir))).rejects.toThrow(/raw\/fusion\.csv:3: unknown alcohol_consumption value `Occasional`/);
  });

  it('derived mode without its models is a configuration error, never a silent CSV build', async () => {
    await expect(buildFusionDataStage.run!(ctxFor({ mode: 'derived' }, dir))).rejects.toMatchObject({
      name: 'ConfigurationError',
      message: expect.stringMatching(/derived/),
    });
  });

  it('streams a large table row by row', async () => {
    const input = join(dir, 'big.csv');
    const { createWriteStream } = await import('node:fs');
    const ws = createWriteStream(input);
    ws.write(HEADER + '\n');
    const n = 50_000;
    for (let i = 0; i < n; i++) ws.write(ROW_A + '\n');
    await new Promise((r) => ws.end(r));
    let rows = 0;
    const result = await buildFusionTable({ input, displayPath: 'big.csv', outDir: join(dir, 'out'), categoryMap: none, onRow: () => rows++ });
    expect(result.encoded).toBe(n);
    expect(rows).toBe(n);
    const text = await readFile(join(dir, 'out', 'features.csv'), 'utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(n + 1);
  });
});
