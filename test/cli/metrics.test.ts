import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../pipeline/cli/main.ts';
import { CLASSIFICATION_HEADLINE, DETECTION_HEADLINE } from '../../pipeline/evaluate/types.ts';

let base: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'skintwin-metrics-cli-'));
});
afterEach(async () => {
  await rm(base, { recursive: true, force: true });
});

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(argv, {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { CI: 'true' },
    cwd: base,
    isTTY: false,
  });
  return { code, stdout, stderr };
}

const TONES = ['I', 'V'];
async function classificationFile(name = 'preds.jsonl'): Promise<void> {
  const lines = Array.from({ length: 12 }, (_, i) => {
    const label = ['Dry', 'Normal', 'Oily'][i % 3]!;
    const right = i % 4 !== 0;
    const top = right ? label : label === 'Oily' ? 'Dry' : 'Oily';
    const probs = Object.fromEntries(['Dry', 'Normal', 'Oily'].map((c) => [c, c === top ? 0.8 : 0.1]));
    return JSON.stringify({ id: `r${i}`, label, probs, slice: { skin_tone: TONES[i % 2], source: 'kaggle' } });
  });
  await writeFile(join(base, name), lines.join('\n') + '\n');
}

describe('skintwin metrics', () => {
  it('prints the report as JSON with exactly the headline keys', async () => {
    await classificationFile();
    const { code, stdout, stderr } = await cli(['metrics', 'preds.jsonl', '--task', 'classification', '--json']);
    expect(stderr).toBe('');
    expect(code).toBe(0);
    const report = JSON.parse(stdout);
    for (const key of CLASSIFICATION_HEADLINE) expect(typeof report.metrics[key]).toBe('number');
    expect(report.metrics.n).toBe(12);
    expect(report.metrics.accuracy).toBeCloseTo(9 / 12, 12);
    expect(Object.keys(report.metrics.per_class)).toEqual(['Dry', 'Normal', 'Oily']);
    expect(Object.keys(report.slices)).toEqual(['skin_tone', 'source']);
    expect(report.slices.skin_tone.metric).toBe('f1_macro');
  });

  it('prints a readable table: headline, per class, per slice with worst and gap', async () => {
    await classificationFile();
    const { code, stdout } = await cli(['metrics', 'preds.jsonl', '--task', 'classification']);
    expect(code).toBe(0);
    expect(stdout).toContain('Classification metrics of preds.jsonl: 12 rows, 3 classes');
    expect(stdout).toMatch(/accuracy\s+0\.7500/);
    expect(stdout).toMatch(/CLASS\s+PRECISION\s+RECALL\s+F1\s+ROC-AUC\s+SUPPORT/);
    expect(stdout).toMatch(/Slice skin_tone \(f1_macro\): worst (I|V) [\d.]+, best (I|V) [\d.]+, gap [\d.]+/);
  });

  it('scores detection predictions', async () => {
    const b = [0, 0, 10, 10];
    await writeFile(
      join(base, 'det.jsonl'),
      [
        { id: 'a', gt: [{ cls: 'Acne', box: b }], pred: [{ cls: 'Acne', conf: 0.93, box: b }] },
        { id: 'b', gt: [{ cls: 'Acne', box: b }], pred: [] },
      ]
        .map((l) => JSON.stringify(l))
        .join('\n'),
    );
    const json = await cli(['metrics', 'det.jsonl', '--task', 'detection', '--classes', 'Acne,Wrinkles', '--json']);
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout);
    expect(Object.keys(report.metrics).filter((k) => (DETECTION_HEADLINE as readonly string[]).includes(k)).sort()).toEqual([...DETECTION_HEADLINE].sort());
    expect(report.metrics).toMatchObject({ precision: 1, recall: 0.5, classes: ['Acne', 'Wrinkles'] });
    const text = await cli(['metrics', 'det.jsonl', '--task', 'detection']);
    expect(text.stdout).toMatch(/map50\s+0\.5050/);
    expect(text.stdout).toContain('at confidence ≥ 0.1, IoU 0.5');
  });

  it('exits 1 naming file and line for bad data', async () => {
    await writeFile(join(base, 'bad.jsonl'), '{"id": "1", "label": "Dry", "probs": {"Dry": 0.5, "Normal": 0.4, "Oily": 0}}\n');
    const { code, stderr } = await cli(['metrics', 'bad.jsonl', '--task', 'classification']);
    expect(code).toBe(1);
    expect(stderr).toContain('skintwin metrics: error: bad.jsonl:1: probabilities sum to 0.9');
  });

  it('exits 2 for usage mistakes: no file, no task, an unknown task, a bad class list, a missing file', async () => {
    await classificationFile();
    expect((await cli(['metrics', '--task', 'classification'])).stderr).toContain('needs a predictions file');
    const noTask = await cli(['metrics', 'preds.jsonl']);
    expect(noTask.code).toBe(2);
    expect(noTask.stderr).toContain('--task classification|detection');
    const typo = await cli(['metrics', 'preds.jsonl', '--task', 'clasification']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('did you mean `classification`?');
    expect((await cli(['metrics', 'preds.jsonl', '--task', 'classification', '--classes', 'a,,b'])).code).toBe(2);
    const missing = await cli(['metrics', 'nope.jsonl', '--task', 'classification']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('nope.jsonl: cannot read the predictions file');
  });

  it('is listed in the global help and has its own', async () => {
    expect((await cli(['--help'])).stdout).toMatch(/metrics\s+compute evaluation metrics/);
    const help = await cli(['metrics', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--task <classification|detection>');
  });
});
