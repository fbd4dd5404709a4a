// The stage actions as the runner sees them: the built bundle spawned with INPUT_* variables and
// command files, in a workspace holding a pipeline.yaml with a `command` stage.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import { inputVariable, parseCommandFile, repoRoot, runAction, tempWorkspace } from './spawn-action.ts';

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
  const dir = await tempWorkspace({ 'pipeline/pipeline.yaml': PIPELINE });
  workspaces.push(dir);
  return dir;
}

afterEach(async () => {
  await Promise.all(workspaces.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

beforeAll(() => {
  expect(inject('buildError'), 'the build must succeed for action tests').toBe('');
});

/** `::error::` annotations in a log, decoded like the runner does. */
function annotations(log: string): string[] {
  return log
    .split('\n')
    .filter((l) => l.startsWith('::error'))
    .map((l) => l.slice(l.indexOf('::', 2) + 2).replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%25/g, '%'));
}

describe('runner plumbing (harness)', () => {
  it('maps input names like the runner and parses both command-file forms', () => {
    expect(inputVariable('duration-ms')).toBe('INPUT_DURATION-MS');
    expect(inputVariable('my input')).toBe('INPUT_MY_INPUT');
    expect(parseCommandFile('a=1\nb<<EOF\nx\ny\nEOF\na=2\n')).toEqual({ a: '2', b: 'x\ny' });
    expect(() => parseCommandFile('b<<EOF\nx\n')).toThrow(/unterminated/);
  });
});

describe('command action', () => {
  it('runs the stage, sets every output and writes the job summary', async () => {
    const ws = await workspace();
    const r = await runAction('command', ws, { stage: 'hello' });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.outputs).toMatchObject({ status: 'ran', stage: 'hello', kind: 'command', outs: '["out"]', reports: '[]', 'exit-code': '0' });
    expect(JSON.parse(r.outputs.reasons!)).toEqual([{ type: 'never-run' }]);
    expect(Number(r.outputs['duration-ms'])).toBeGreaterThanOrEqual(0);
    expect(r.summary).toContain('hello');
    expect(r.summary).toContain('mkdir -p out');
    expect(await readFile(join(ws, 'out/hello.txt'), 'utf8')).toBe('hi\n');
    expect(annotations(r.stdout)).toEqual([]);
    // The lock is recorded, so the next step or job sees the stage as up to date.
    expect(existsSync(join(ws, 'pipeline/pipeline.lock'))).toBe(true);

    const again = await runAction('command', ws, { stage: 'hello' });
    expect(again.code, again.stdout).toBe(0);
    expect(again.outputs).toMatchObject({ status: 'skipped', reasons: '[]' });
    expect(again.summary).toMatch(/Up to date: not run again/);

    const forced = await runAction('command', ws, { stage: 'hello', force: 'true' });
    expect(forced.outputs.status).toBe('ran');
    expect(JSON.parse(forced.outputs.reasons!)).toContainEqual({ type: 'forced' });
  });

  it('an input overrides the param of the same name in pipeline.yaml', async () => {
    const ws = await workspace();
    const r = await runAction('command', ws, { stage: 'hello', cmd: 'mkdir -p out && echo from-input > out/hello.txt' });
    expect(r.code, r.stdout).toBe(0);
    expect(await readFile(join(ws, 'out/hello.txt'), 'utf8')).toBe('from-input\n');
  });

  it('a failing stage exits 1 with one error annotation carrying the message the CLI prints', async () => {
    const ws = await workspace();
    const r = await runAction('command', ws, { stage: 'fail' });
    expect(r.code).toBe(1);
    expect(r.outputs).toMatchObject({ status: 'failed', stage: 'fail', outs: '["broken.txt"]' });
    const errors = annotations(r.stdout);
    expect(errors).toHaveLength(1);
    const message = errors[0]!;
    expect(message).toMatch(/exited with code 3/);
    expect(r.summary).toContain(message);
    // The failed stage changed nothing: no out, no lock entry.
    expect(existsSync(join(ws, 'broken.txt'))).toBe(false);

    const cli = await runCli(ws, ['repro', 'fail']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr + cli.stdout).toContain(message);
  });

  it('a configuration mistake fails the step with the CLI\'s message, naming the fix', async () => {
    const ws = await workspace();
    const r = await runAction('command', ws, { stage: 'helo' });
    expect(r.code).toBe(1);
    expect(r.outputs.status).toBe('failed');
    const [message, ...rest] = annotations(r.stdout);
    expect(rest).toEqual([]);
    expect(message).toMatch(/helo/);
    expect(message).toMatch(/did you mean `hello`/);
    const cli = await runCli(ws, ['repro', 'helo']);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr + cli.stdout).toContain(message!.split('\n')[0]);
  });

  it('refuses a stage of another kind and a malformed boolean input', async () => {
    const ws = await workspace();
    const wrongKind = await runAction('prepare-data', ws, { stage: 'hello' });
    expect(wrongKind.code).toBe(1);
    expect(annotations(wrongKind.stdout).join('\n')).toMatch(/`hello` is of kind `command`.*\.\/actions\/command/);

    const badForce = await runAction('command', ws, { stage: 'hello', force: 'yes' });
    expect(badForce.code).toBe(1);
    expect(annotations(badForce.stdout).join('\n')).toMatch(/input `force` must be true or false/);
    expect(existsSync(join(ws, 'out'))).toBe(false);
  });
});

async function runCli(cwd: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? cwd, NO_COLOR: '1' };
  const child = spawn(process.execPath, [join(repoRoot, 'dist/cli.js'), ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((done, fail) => {
    child.on('error', fail);
    child.on('close', done);
  });
  return { code, stdout, stderr };
}
