import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../pipeline/cli/main.ts';

let base: string;
beforeEach(async () => {
  base = await mkdtemp(join(tmpdir(), 'skintwin-synth-cli-'));
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

describe('skintwin synth', () => {
  it('writes the dataset with the given knobs and prints a summary', async () => {
    const { code, stdout, stderr } = await cli(['synth', '--out', 'ds', '--size', 'tiny', '--seed', '7', '--images', '12', '--json']);
    expect(stderr).not.toContain('error');
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.summary.images).toBe(12);
    const entries = await readdir(join(base, 'ds'));
    expect(entries).toEqual(expect.arrayContaining(['data.yaml', 'metadata.jsonl', 'fusion.csv', 'synthetic.json', 'train']));
    const effective = JSON.parse(await readFile(join(base, 'ds', 'synthetic.json'), 'utf8'));
    expect(JSON.stringify(effective)).toContain('"seed":7');
    // Only the dataset folder is left in the parent: no staging leftovers.
    expect(await readdir(base)).toEqual(['ds']);
  });

  it('is deterministic: the same flags write the same bytes', async () => {
    await cli(['synth', '--out', 'a', '--size', 'tiny', '--images', '6']);
    await cli(['synth', '--out', 'b', '--size', 'tiny', '--images', '6']);
    for (const file of ['metadata.jsonl', 'fusion.csv']) {
      expect(await readFile(join(base, 'b', file))).toEqual(await readFile(join(base, 'a', file)));
    }
  });

  it('refuses a non-empty folder and changes nothing in it', async () => {
    await mkdir(join(base, 'ds'));
    await writeFile(join(base, 'ds', 'keep.txt'), 'mine');
    const { code, stderr } = await cli(['synth', '--out', 'ds', '--size', 'tiny']);
    expect(code).toBe(2);
    expect(stderr).toContain('folder exists and is not empty');
    expect(await readdir(join(base, 'ds'))).toEqual(['keep.txt']);
  });

  it('reports every bad flag at once with suggestions, exit 2', async () => {
    const { code, stderr } = await cli(['synth', '--out', 'ds', '--size', 'tiyn', '--blurr', '2']);
    expect(code).toBe(2);
    expect(stderr).toContain('unknown param `blurr` (did you mean `blur`?)');
    expect(stderr).toContain('did you mean `tiny`?');
    expect(await readdir(base)).toEqual([]);
  });

  it('needs --out', async () => {
    const { code, stderr } = await cli(['synth', '--size', 'tiny']);
    expect(code).toBe(2);
    expect(stderr).toContain('--out');
  });
});
