// actions/repro: the whole pipeline in one step with the Actions cache. A second, fresh runner
// (no local cache, no outs) restores every stage from the cache the first one saved.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { startResultsStandIn, type ResultsStandIn } from '../support/actions-runtime/index.ts';
import { repoRoot, runAction, type ActionRun } from '../support/runner/index.ts';

const PIPELINE = `settings:
  cache-dir: .skintwin/cache
stages:
  hello:
    kind: command
    params:
      cmd: mkdir -p out && echo hi > out/hello.txt
    outs: [out]
  shout:
    kind: command
    params:
      cmd: tr a-z A-Z < out/hello.txt > loud.txt
    deps: [out]
    outs: [loud.txt]
`;

let results: ResultsStandIn;
const dirs: string[] = [];

beforeAll(async () => {
  expect(inject('buildError'), 'the build must succeed for action tests').toBe('');
  results = await startResultsStandIn();
});
afterAll(async () => {
  await results?.close();
});
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function runner(pipeline = PIPELINE): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'skintwin-repro-action-'));
  dirs.push(dir);
  await mkdir(join(dir, 'pipeline'));
  await writeFile(join(dir, 'pipeline/pipeline.yaml'), pipeline);
  return dir;
}

function repro(ws: string, inputs: Record<string, string> = {}): Promise<ActionRun> {
  return runAction({ actionDir: join(repoRoot, 'actions/repro'), cwd: ws, inputs, resultsEnv: results.env });
}

const actions = (run: ActionRun): Record<string, string> =>
  Object.fromEntries((JSON.parse(run.outputs.stages ?? '[]') as { stage: string; action: string }[]).map((s) => [s.stage, s.action]));

describe('repro action', () => {
  it('runs every stage, and a fresh runner restores them all from the Actions cache', async () => {
    const first = await runner();
    const run1 = await repro(first);
    expect(run1.exitCode, run1.stdout + run1.stderr).toBe(0);
    expect(run1.outputs.ok).toBe('true');
    expect(actions(run1)).toEqual({ hello: 'ran', shout: 'ran' });
    expect(await readFile(join(first, 'loud.txt'), 'utf8')).toBe('HI\n');
    expect(run1.summary).toContain('| `shout` | command | ran |');

    // The next job on a fresh runner: same workspace path (the cache matches paths too), nothing local.
    await rm(first, { recursive: true, force: true });
    const fresh = first;
    await mkdir(join(fresh, 'pipeline'), { recursive: true });
    await writeFile(join(fresh, 'pipeline/pipeline.yaml'), PIPELINE);
    const run2 = await repro(fresh);
    expect(run2.exitCode, run2.stdout + run2.stderr).toBe(0);
    expect(actions(run2)).toEqual({ hello: 'restored', shout: 'restored' });
    expect(await readFile(join(fresh, 'loud.txt'), 'utf8')).toBe('HI\n');
  });

  it('runs only the named stages with their upstream, and fails with the stage error', async () => {
    const ws = await runner(`${PIPELINE}  broken:\n    kind: command\n    params:\n      cmd: echo boom >&2; exit 3\n    outs: [b.txt]\n`);
    const some = await repro(ws, { stages: 'shout' });
    expect(some.exitCode, some.stdout + some.stderr).toBe(0);
    expect(Object.keys(actions(some)).sort()).toEqual(['hello', 'shout']);

    const all = await repro(ws);
    expect(all.exitCode).toBe(1);
    expect(all.outputs.ok).toBe('false');
    expect(actions(all).broken).toBe('failed');
    expect(all.annotations.filter((a) => a.level === 'error').map((a) => a.message).join('\n')).toMatch(/exit(ed)? .*3|code 3/);
    expect(existsSync(join(ws, 'b.txt'))).toBe(false);
  });

  it('refuses a malformed force input before running anything', async () => {
    const ws = await runner();
    const run = await repro(ws, { force: 'yes' });
    expect(run.exitCode).toBe(1);
    expect(run.annotations.map((a) => a.message).join('\n')).toMatch(/input `force` must be true or false/);
    expect(existsSync(join(ws, 'out'))).toBe(false);
  });
});
