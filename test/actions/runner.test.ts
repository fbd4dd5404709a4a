// The stage actions as the runner sees them: the built bundle spawned with INPUT_* variables and
// command files, in a workspace holding a pipeline.yaml with a `command` stage.

import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { repoRoot, runAction as runActionDir, spawnCollect, type ActionRun } from '../support/runner/index.ts';

const PIPELINE = `settings:
  cache-dir: .skintwin/cache
stages:
  hello:
    kind: command
    params:
      cmd: mkdir -p out && echo hi > out/hello.txt
    outs: [out]
  fail:
    kind: command
    params:
      cmd: echo partial > broken.txt; echo boom >&2; exit 3
    outs: [broken.txt]
`;

const workspaces: string[] = [];
async function workspace(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'skintwin-ws-'));
  workspaces.push(dir);
  await mkdir(join(dir, 'pipeline'));
  await writeFile(join(dir, 'pipeline/pipeline.yaml'), PIPELINE);
  return dir;
}

/** Run `actions/<action>` in `ws` with `with:` inputs. */
function runAction(action: string, ws: string, inputs: Record<string, string>): Promise<ActionRun> {
  return runActionDir({ actionDir: join(repoRoot, 'actions', action), cwd: ws, inputs });
}

afterEach(async () => {
  await Promise.all(workspaces.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

beforeAll(() => {
  expect(inject('buildError'), 'the build must succeed for action tests').toBe('');
});

/** The messages of a run's `::error::` annotations, decoded as the runner does. */
function errorMessages(run: ActionRun): string[] {
  return run.annotations.filter((a) => a.level === 'error').map((a) => a.message);
}

describe('command action', () => {
  it('runs the stage, sets every output and writes the job summary', async () => {
    const ws = await workspace();
    const r = await runAction('command', ws, { stage: 'hello' });
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.outputs).toMatchObject({ status: 'ran', stage: 'hello', kind: 'command', outs: '["out"]', reports: '[]', 'exit-code': '0' });
    expect(JSON.parse(r.outputs.reasons!)).toEqual([{ type: 'never-run' }]);
    // Whole milliseconds: the output is rounded.
    expect(r.outputs['duration-ms']).toMatch(/^\d+$/);
    expect(r.summary).toContain('hello');
    expect(r.summary).toContain('mkdir -p out');
    expect(await readFile(join(ws, 'out/hello.txt'), 'utf8')).toBe('hi\n');
    expect(errorMessages(r)).toEqual([]);
    // The lock is recorded, so the next step or job sees the stage as up to date.
    expect(existsSync(join(ws, 'pipeline/pipeline.lock'))).toBe(true);

    const again = await runAction('command', ws, { stage: 'hello' });
    expect(again.exitCode, again.stdout).toBe(0);
    expect(again.outputs).toMatchObject({ status: 'skipped', reasons: '[]' });
    expect(again.summary).toMatch(/Up to date: not run again/);

    const forced = await runAction('command', ws, { stage: 'hello', force: 'true' });
    expect(forced.outputs.status).toBe('ran');
    expect(JSON.parse(forced.outputs.reasons!)).toContainEqual({ type: 'forced' });
  });

  it('an input overrides the param of the same name in pipeline.yaml', async () => {
    const ws = await workspace();
    const r = await runAction('command', ws, { stage: 'hello', cmd: 'mkdir -p out && echo from-input > out/hello.txt' });
    expect(r.exitCode, r.stdout).toBe(0);
    expect(await readFile(join(ws, 'out/hello.txt'), 'utf8')).toBe('from-input\n');
  });

  it('a failing stage exits 1 with one error annotation carrying the message the CLI prints', async () => {
    const ws = await workspace();
    const r = await runAction('command', ws, { stage: 'fail' });
    expect(r.exitCode).toBe(1);
    expect(r.outputs).toMatchObject({ status: 'failed', stage: 'fail', outs: '["broken.txt"]' });
    const errors = errorMessages(r);
    expect(errors).toHaveLength(1);
    const message = errors[0]!;
    expect(message).toMatch(/exited with code 3/);
    expect(r.summary).toContain(message);
    // The failed stage changed nothing: no out, no lock entry.
    expect(existsSync(join(ws, 'broken.txt'))).toBe(false);

    const cli = await runCli(ws, ['repro', 'fail']);
    expect(cli.exitCode).not.toBe(0);
    expect(cli.stderr + cli.stdout).toContain(message);
  });

  it('a configuration mistake fails the step with the CLI\'s message, naming the fix', async () => {
    const ws = await workspace();
    const r = await runAction('command', ws, { stage: 'helo' });
    expect(r.exitCode).toBe(1);
    expect(r.outputs.status).toBe('failed');
    const [message, ...rest] = errorMessages(r);
    expect(rest).toEqual([]);
    expect(message).toMatch(/helo/);
    expect(message).toMatch(/did you mean `hello`/);
    const cli = await runCli(ws, ['repro', 'helo']);
    expect(cli.exitCode).not.toBe(0);
    expect(cli.stderr + cli.stdout).toContain(message!.split('\n')[0]);
  });

  it('refuses a stage of another kind and a malformed boolean input', async () => {
    const ws = await workspace();
    const wrongKind = await runAction('prepare-data', ws, { stage: 'hello' });
    expect(wrongKind.exitCode).toBe(1);
    expect(errorMessages(wrongKind).join('\n')).toMatch(/`hello` is of kind `command`.*\.\/actions\/command/);

    const badForce = await runAction('command', ws, { stage: 'hello', force: 'yes' });
    expect(badForce.exitCode).toBe(1);
    expect(errorMessages(badForce).join('\n')).toMatch(/input `force` must be true or false/);
    expect(existsSync(join(ws, 'out'))).toBe(false);
  });
});

function runCli(cwd: string, args: string[]) {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? cwd, NO_COLOR: '1' };
  return spawnCollect(process.execPath, [join(repoRoot, 'dist/cli.js'), ...args], cwd, env, 60_000);
}
