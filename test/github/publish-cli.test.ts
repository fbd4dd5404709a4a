// `skintwin publish-evaluation` on the local forge: the comment a pull request would get, as a
// markdown file under .skintwin/forge/, edited in place on the next run; a bad report exits 1.

import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { publishEvaluationCommand } from '../../pipeline/cli/commands/publish-evaluation.ts';
import { main } from '../../pipeline/cli/main.ts';
import { evaluationMarker } from '../../pipeline/github/body.ts';
import { evaluationReport, writeReport } from './publish-fixtures.ts';

const SHA = 'f'.repeat(40);
let root: string;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'publish-cli-'));
  await mkdir(join(root, 'pipeline'), { recursive: true });
  await writeFile(join(root, 'package.json'), '{"name":"demo"}\n');
  await writeFile(join(root, 'pipeline/pipeline.yaml'), 'stages: {}\n');
  await writeReport(join(root, 'reports'), evaluationReport('skin-type', 'pass'));
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(['publish-evaluation', ...argv], {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t) },
    env: { PATH: process.env.PATH },
    cwd: root,
    isTTY: false,
  }, [publishEvaluationCommand]);
  return { code, stdout, stderr };
}

describe('skintwin publish-evaluation', () => {
  it('writes one comment per model on the local forge and edits it on the next run', async () => {
    const first = await cli(['--head-sha', SHA]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/^skin-type: pass \(check success\) → \.skintwin\/forge\/issues\/1\/comment-\d+\.md \(created\)$/m);
    const dir = join(root, '.skintwin/forge/issues/1');
    const files = (await readdir(dir)).filter((f) => f.endsWith('.md'));
    expect(files).toHaveLength(1);
    expect(await readFile(join(dir, files[0]!), 'utf8')).toMatch(new RegExp(`^${evaluationMarker('skin-type')}\\n`));

    await writeReport(join(root, 'reports'), evaluationReport('skin-type', 'fail', 0.5));
    const second = await cli(['--head-sha', SHA, '--json']);
    expect(second.code).toBe(0);
    const doc = JSON.parse(second.stdout);
    expect(doc.published).toEqual([expect.objectContaining({ model: 'skin-type', verdict: 'fail', conclusion: 'failure', comment: expect.objectContaining({ action: 'updated' }) })]);
    expect((await readdir(dir)).filter((f) => f.endsWith('.md'))).toEqual(files);
    expect(await readFile(join(dir, files[0]!), 'utf8')).toContain('❌ fail');
  });

  it('exits 1 naming the bad evaluation.json, and 2 on a bad flag', async () => {
    await mkdir(join(root, 'reports/detector'), { recursive: true });
    await writeFile(join(root, 'reports/detector/evaluation.json'), '{}');
    const bad = await cli(['--head-sha', SHA]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^detector: not published: reports\/detector\/evaluation\.json: \d+ problems/m);
    expect(bad.stdout).toMatch(/^skin-type: pass/m);
    const usage = await cli(['--head-sha', 'main', '--pull-request', 'x']);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/--pull-request/);
    expect(usage.stderr).toMatch(/--head-sha/);
  });
});
