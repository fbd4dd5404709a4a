import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../pipeline/cli/main.ts';
import { predictCommand } from '../../pipeline/cli/commands/predict.ts';
import { trainCommand } from '../../pipeline/cli/commands/train.ts';
import { FEATURES } from '../../pipeline/data/fusion/schema.ts';
import { modelCardProblems, type ModelCard, type TabularModelCard } from '../../pipeline/train/card.ts';
import { parseGbdtModel, predictProba } from '../../pipeline/train/gbdt/index.ts';
import { readNumericTable } from '../../pipeline/train/trainers.ts';
import { fusionRows } from '../train/stage-fixtures.ts';
import { writePrepared } from '../train/head/fixtures.ts';

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'skintwin-train-cli-'));
  // A numeric table with string classes and an id column: class from x0 and x1, x3 is noise.
  const lines = ['id,x0,x1,x2,x3,species'];
  let s = 7;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0), s / 2 ** 32);
  for (let i = 0; i < 1200; i++) {
    const x = [rnd(), rnd(), rnd() * 10, rnd()];
    const species = x[0]! > 0.5 ? (x[1]! > 0.5 ? 'setosa' : 'versicolor') : 'virginica';
    // Row 5 has a missing x2: empty cells are missing values for the gbdt trainer.
    lines.push([`r${i}`, ...x.map((v, k) => (i === 5 && k === 2 ? '' : v.toFixed(5))), species].join(','));
  }
  await writeFile(join(base, 'table.csv'), lines.join('\n') + '\n');
  await writeFile(join(base, 'three.csv'), lines.map((l) => l.split(',').filter((_, k) => k !== 4).join(',')).join('\n') + '\n');
  await writeFile(join(base, 'fusion.csv'), fusionRows(1200, 3).join('\n') + '\n');
  await writeFile(join(base, 'fusion-new.csv'), fusionRows(50, 9, { withTarget: false }).join('\n') + '\n');
  await writePrepared(join(base, 'images'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(
    argv,
    { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: { CI: 'true' }, cwd: base, isTTY: false },
    [trainCommand, predictCommand],
  );
  return { code, stdout, stderr };
}

const FAST = ['--n-estimators', '15', '--max-depth', '3'];

describe('skintwin train gbdt + predict', () => {
  it('round trip on a numeric CSV: model files, valid card, predictions equal to the trainer', async () => {
    const t = await cli(['train', 'gbdt', '--data', 'table.csv', '--target', 'species', '--out', 'models/iris', ...FAST, '--json']);
    expect(t.stderr).not.toContain('error');
    expect(t.code).toBe(0);
    const result = JSON.parse(t.stdout);
    expect(result.ok).toBe(true);
    expect((await readdir(join(base, 'models/iris'))).sort()).toEqual(['model-card.json', 'model.json', 'model.onnx']);
    // No staging folder left next to the model.
    expect(await readdir(join(base, 'models'))).toEqual(['iris']);
    const card = JSON.parse(await readFile(join(base, 'models/iris/model-card.json'), 'utf8')) as TabularModelCard;
    expect(modelCardProblems(card)).toEqual([]);
    expect(card.model).toBe('iris');
    expect(card.classes.map((c) => c.name)).toEqual(['setosa', 'versicolor', 'virginica']);
    expect(card.input.features).toEqual(['x0', 'x1', 'x2', 'x3']);
    expect(card.preprocessing).toMatchObject({ type: 'numeric', target: 'species' });
    expect(card.trainer.params['n-estimators']).toBe(15);
    // Seeded 85/15 split.
    expect(card.trainingData.trainRows + card.trainingData.valRows).toBe(1200);
    expect(card.trainingData.valRows / 1200).toBeGreaterThan(0.1);
    expect(card.trainingData.valRows / 1200).toBeLessThan(0.2);
    expect(card.metrics.validation.accuracy).toBeGreaterThan(0.9);

    const p = await cli(['predict', '--model', 'models/iris/model.onnx', '--data', 'table.csv', '--out', 'preds.jsonl', '--batch-size', '500']);
    expect(p.stderr).not.toContain('error');
    expect(p.code).toBe(0);
    const preds = (await readFile(join(base, 'preds.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(preds).toHaveLength(1200);
    expect(preds[0]).toMatchObject({ id: 'r0', label: expect.any(String) });
    expect(Object.keys(preds[0].probs)).toEqual(['setosa', 'versicolor', 'virginica']);
    const model = parseGbdtModel(await readFile(join(base, 'models/iris/model.json'), 'utf8'));
    const table = await readNumericTable(join(base, 'table.csv'), 'table.csv', { features: card.input.features, target: 'species', targetRequired: true, allowMissing: true });
    const ts = predictProba(model, table);
    let worst = 0;
    let correct = 0;
    preds.forEach((row, r) => {
      const probs = Object.values(row.probs as Record<string, number>);
      probs.forEach((v, k) => (worst = Math.max(worst, Math.abs(v - ts[r * 3 + k]!))));
      const best = Object.entries(row.probs as Record<string, number>).sort((a, b) => b[1] - a[1])[0]![0];
      if (best === row.label) correct++;
    });
    expect(worst).toBeLessThanOrEqual(1e-5);
    expect(correct / 1200).toBeGreaterThan(0.9);

    // A table lacking one of the model's features: a clear error, nothing written.
    const bad = await cli(['predict', '--model', 'models/iris/model.onnx', '--data', 'three.csv', '--out', 'bad.jsonl']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('three.csv:1: the model expects 4 features, the table has 3 feature column(s); missing: x3');
    expect(await readdir(base)).not.toContain('bad.jsonl');
  });

  it('a fusion table is one-hot encoded as in the pipeline; predict works without the target column', async () => {
    const t = await cli(['train', 'gbdt', '--data', 'fusion.csv', '--target', 'target', '--out', 'cc', ...FAST]);
    expect(t.stderr).not.toContain('error');
    expect(t.code).toBe(0);
    expect(t.stdout).toContain('majority-class baseline');
    const card = JSON.parse(await readFile(join(base, 'cc/model-card.json'), 'utf8')) as TabularModelCard;
    expect(card.input.features).toEqual([...FEATURES]);
    expect(card.preprocessing.type).toBe('fusion-one-hot');
    expect(card.classes.map((c) => c.id)).toEqual([3, 17, 42]);
    const p = await cli(['predict', '--model', 'cc/model.onnx', '--data', 'fusion-new.csv', '--out', 'cc.jsonl']);
    expect(p.code).toBe(0);
    const preds = (await readFile(join(base, 'cc.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(preds).toHaveLength(50);
    expect(preds[0].id).toBe('2');
    expect(preds[0]).not.toHaveProperty('label');
    expect(Object.keys(preds[0].probs)).toEqual(['3', '17', '42']);
  });

  it('refuses a card that belongs to another model.onnx', async () => {
    expect((await cli(['train', 'gbdt', '--data', 'table.csv', '--target', 'species', '--out', 'a', ...FAST])).code).toBe(0);
    expect((await cli(['train', 'gbdt', '--data', 'table.csv', '--target', 'species', '--out', 'b', '--n-estimators', '3', '--max-depth', '2'])).code).toBe(0);
    await writeFile(join(base, 'a/model-card.json'), await readFile(join(base, 'b/model-card.json')));
    const r = await cli(['predict', '--model', 'a/model.onnx', '--data', 'table.csv', '--out', 'p.jsonl']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('model-card.json does not belong to this model.onnx');
  });

  it('names a non-numeric column and its line', async () => {
    await writeFile(join(base, 'text.csv'), 'a,city,y\n1,2,0\n2,Paris,1\n');
    const r = await cli(['train', 'gbdt', '--data', 'text.csv', '--target', 'y', '--out', 'x']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('text.csv:3: city is `Paris`, not a number');
  });

  it('usage mistakes: unknown param, missing target column, head trainer, unwritable out folder', async () => {
    const unknown = await cli(['train', 'gbdt', '--data', 'table.csv', '--target', 'species', '--out', 'm', '--n-estimator', '5']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown param `n-estimator`.*n-estimators/);
    const noTarget = await cli(['train', 'gbdt', '--data', 'table.csv', '--target', 'kind', '--out', 'm']);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain('target column `kind` is not in the header');
    const head = await cli(['train', 'head', '--data', 'table.csv']);
    expect(head.code).toBe(2);
    expect(head.stderr).toContain('`train head` needs `--model`');
    await writeFile(join(base, 'afile'), 'x');
    const unwritable = await cli(['train', 'gbdt', '--data', 'table.csv', '--target', 'species', '--out', 'afile/model', ...FAST]);
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toContain('afile/model: cannot create the output folder (ENOTDIR)');
    const noCard = await cli(['predict', '--model', 'afile', '--data', 'table.csv', '--out', 'p.jsonl']);
    expect(noCard.code).toBe(1);
    expect(noCard.stderr).toContain('no model card next to the model');
  });
});

describe('skintwin train head', () => {
  const FAST_HEAD = ['--epochs', '40', '--patience', '10', '--batch-size', '8', '--head-learning-rate', '0.05', '--execution-provider', 'cpu'];

  it('trains skin-type from a prepared image folder: model.onnx and a valid card, same params as the stage', async () => {
    const t = await cli(['train', 'head', '--data', 'images', '--model', 'skin-type', '--out', 'models/st', ...FAST_HEAD, '--head', 'mlp', '--hidden-units', '8', '--json']);
    expect(t.stderr).not.toMatch(/error/i);
    expect(t.code).toBe(0);
    const result = JSON.parse(t.stdout);
    expect(result).toMatchObject({ ok: true, trainer: 'head', model: 'skin-type', executionProvider: 'cpu', extractor: { kind: 'builtin' } });
    expect((await readdir(join(base, 'models/st'))).sort()).toEqual(['model-card.json', 'model.onnx']);
    // No staging folder left next to the model.
    expect((await readdir(join(base, 'models'))).filter((n) => n.startsWith('.'))).toEqual([]);
    const card = JSON.parse(await readFile(join(base, 'models/st/model-card.json'), 'utf8')) as ModelCard;
    expect(modelCardProblems(card)).toEqual([]);
    expect(card.trainer.params).toMatchObject({ head: 'mlp', 'hidden-units': 8, epochs: 40, 'batch-size': 8 });
    expect(card.trainingData.path).toBe('images');
    expect(card.metrics.validation!.accuracy).toBeGreaterThan(0.8);
    expect(result.onnxSha256).toBe(card.onnx.sha256);
    // Without --json: the summary and one line for a person.
    const plain = await cli(['train', 'head', '--data', 'images', '--model', 'skin-type', '--out', 'models/st2', ...FAST_HEAD]);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toContain('### Trained `skin-type` (head) → `models/st2/model.onnx`');
    expect(plain.stdout).toMatch(/Validation accuracy \d\.\d{4}, macro F1 \d\.\d{4}, log loss \d\.\d{4}; wrote models\/st2\/model\.onnx, model-card\.json\./);
  });

  it('usage mistakes: bad model, unknown or misplaced param, not a prepared folder, unwritable out', async () => {
    const model = await cli(['train', 'head', '--data', 'images', '--model', 'context-correction', '--out', 'm']);
    expect(model.code).toBe(2);
    expect(model.stderr).toContain('`--model` must be one of skin-type, skin-detection');
    const unknown = await cli(['train', 'head', '--data', 'images', '--model', 'skin-type', '--out', 'm', '--epoch', '3']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown param `epoch`.*epochs/);
    const hidden = await cli(['train', 'head', '--data', 'images', '--model', 'skin-type', '--out', 'm', '--hidden-units', '3']);
    expect(hidden.code).toBe(2);
    expect(hidden.stderr).toContain('param `hidden-units` is for `head: mlp` only');
    const notPrepared = await cli(['train', 'head', '--data', 'table.csv', '--model', 'skin-type', '--out', 'm']);
    expect(notPrepared.code).toBe(1);
    expect(notPrepared.stderr).toContain('table.csv/train/meta.json: cannot read the prepared image meta');
    await writeFile(join(base, 'bfile'), 'x');
    const unwritable = await cli(['train', 'head', '--data', 'images', '--model', 'skin-type', '--out', 'bfile/model']);
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr).toContain('bfile/model: cannot write the model there (ENOTDIR)');
  });
});
