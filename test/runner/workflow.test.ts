// The job executor runs a workflow job's steps in order with the runner's semantics for env,
// with:, if:, step outputs, failure and always(); anything outside its subset is rejected up front.

import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkPushFilters, runWorkflowJob } from '../support/runner/index.ts';

let repo: string;

const probeYml = `name: probe
description: echoes its inputs
inputs:
  greeting: { description: x, default: hello }
  who: { description: x, required: true }
outputs:
  message: { description: x }
runs: { using: node24, main: main.js }
`;
const probeJs = `
const fs = require('fs');
fs.appendFileSync(process.env.GITHUB_OUTPUT, 'message=' + process.env.INPUT_GREETING + ' ' + process.env.INPUT_WHO + ' (' + process.env.STEP_LEVEL + ',' + process.env.JOB_LEVEL + ')\\n');
fs.appendFileSync(process.env.GITHUB_ENV, 'FROM_ACTION=exported\\n');
fs.appendFileSync(process.env.GITHUB_STEP_SUMMARY, 'probe ran\\n');
`;

const workflow = `name: demo
on:
  push:
    branches: [main]
  workflow_dispatch:
    inputs:
      who: { type: string, default: dispatcher }
      loud: { type: boolean, default: false }
permissions: { contents: read }
env:
  WORKFLOW_LEVEL: wf
jobs:
  build:
    runs-on: [self-hosted, gpu]
    env:
      JOB_LEVEL: job-\${{ github.event_name }}
    outputs:
      final: \${{ steps.second.outputs.result }}
    steps:
      - uses: actions/checkout@08c6903cd8c0fde910a37f88322edcfb5dd907a8 # v5
      - uses: actions/setup-node@a0853c24544627f65ddf259abe73b1d18a591444 # v5
        with: { node-version-file: .node-version }
      - uses: ./actions/setup
      - id: probe
        uses: ./actions/probe
        with:
          who: \${{ github.event.pusher.name || inputs.who }}
        env:
          STEP_LEVEL: step
      - id: second
        name: use the output
        run: |
          echo "got: \${{ steps.probe.outputs.message }} / $FROM_ACTION / $WORKFLOW_LEVEL"
          echo "result=\${{ steps.probe.outputs.message }}" >> "$GITHUB_OUTPUT"
          echo "from a run step" >> "$GITHUB_STEP_SUMMARY"
      - name: only when loud
        if: inputs.loud
        run: echo loud > loud.txt
      - name: fail
        id: boom
        if: github.event_name == 'push'
        run: |
          echo "::error::boom"
          exit 4
      - name: after failure
        run: touch after.txt
      - name: on failure
        if: failure()
        run: echo "\${{ steps.boom.outcome }}" > failure.txt
      - name: always
        if: always()
        run: echo "\${{ job.status }}" > always.txt
`;

beforeAll(async () => {
  repo = await mkdtemp(join(tmpdir(), 'workflow-job-'));
  await mkdir(join(repo, 'actions', 'probe'), { recursive: true });
  await mkdir(join(repo, '.github', 'workflows'), { recursive: true });
  await writeFile(join(repo, 'actions', 'probe', 'action.yml'), probeYml);
  await writeFile(join(repo, 'actions', 'probe', 'main.js'), probeJs);
  await writeFile(join(repo, 'actions', 'probe', 'package.json'), '{"type":"commonjs"}');
  await writeFile(join(repo, '.github', 'workflows', 'demo.yml'), workflow);
});
afterAll(() => rm(repo, { recursive: true, force: true }));

const text = (name: string) => readFile(join(repo, name), 'utf8').then((t) => t.trim(), () => undefined);

describe('runWorkflowJob', () => {
  it('runs a push: passes outputs between steps, skips by if:, stops after a failure, still runs failure() and always()', async () => {
    const job = await runWorkflowJob({
      workflowFile: '.github/workflows/demo.yml',
      job: 'build',
      eventName: 'push',
      eventPayload: { ref: 'refs/heads/main', after: 'b'.repeat(40), pusher: { name: 'mona' } },
      cwd: repo,
    });
    const byName = Object.fromEntries(job.steps.map((s) => [s.name, s]));
    expect(job.steps.map((s) => [s.kind, s.conclusion])).toEqual([
      ['prepared', 'success'],
      ['prepared', 'success'],
      ['prepared', 'success'],
      ['action', 'success'],
      ['run', 'success'],
      ['run', 'skipped'],
      ['run', 'failure'],
      ['run', 'skipped'],
      ['run', 'success'],
      ['run', 'success'],
    ]);
    expect(byName.probe!.outputs.message).toBe('hello mona (step,job-push)');
    expect(byName['use the output']!.stdout).toBe('got: hello mona (step,job-push) / exported / wf\n');
    expect(byName.fail!.exitCode).toBe(4);
    expect(byName.fail!.annotations).toEqual([{ level: 'error', message: 'boom', properties: {} }]);
    expect(job.status).toBe('failure');
    expect(job.outputs).toEqual({ final: 'hello mona (step,job-push)' });
    expect(job.summary).toBe('probe ran\n\nfrom a run step\n');
    expect(await text('after.txt')).toBeUndefined();
    expect(await text('loud.txt')).toBeUndefined();
    expect(await text('failure.txt')).toBe('failure');
    expect(await text('always.txt')).toBe('failure');
  });

  it('runs a workflow_dispatch with typed inputs and defaults', async () => {
    await rm(join(repo, 'always.txt'), { force: true });
    const job = await runWorkflowJob({
      workflowFile: '.github/workflows/demo.yml',
      job: 'build',
      eventName: 'workflow_dispatch',
      eventPayload: { inputs: { loud: 'true' } },
      inputs: { loud: true },
      cwd: repo,
    });
    expect(job.status).toBe('success');
    expect(job.steps.find((s) => s.id === 'probe')!.outputs.message).toBe('hello dispatcher (step,job-workflow_dispatch)');
    expect(await text('loud.txt')).toBe('loud');
    expect(job.steps.find((s) => s.name === 'fail')!.conclusion).toBe('skipped');
    expect(await text('always.txt')).toBe('success');
  });

  it('applies the push trigger filters as GitHub does', async () => {
    await expect(
      runWorkflowJob({ workflowFile: '.github/workflows/demo.yml', job: 'build', eventName: 'push', eventPayload: { ref: 'refs/heads/dev' }, cwd: repo }),
    ).rejects.toThrow(/refs\/heads\/dev does not match main/);
    const trigger = { branches: ['main', 'release/**'], paths: ['pipeline/**', '!pipeline/**/*.md', 'data/*.yaml'] };
    const push = (ref: string, ...files: string[]) => ({ ref, commits: [{ added: [], removed: [], modified: files }] });
    expect(() => checkPushFilters(trigger, push('refs/heads/main', 'pipeline/engine/run.ts'), 'w')).not.toThrow();
    expect(() => checkPushFilters(trigger, push('refs/heads/release/2026/11', 'data/sources.yaml'), 'w')).not.toThrow();
    expect(() => checkPushFilters(trigger, push('refs/heads/main', 'pipeline/README.md', 'docs/x.md'), 'w')).toThrow(/none of the changed files/);
    expect(() => checkPushFilters(trigger, push('refs/heads/main', 'data/raw/a.yaml'), 'w')).toThrow(/none of the changed files/);
    expect(() => checkPushFilters(trigger, push('refs/tags/v1', 'pipeline/a.ts'), 'w')).toThrow(/branch-only/);
  });

  it('runs one combination of a matrix, and only a real one', async () => {
    await writeFile(
      join(repo, '.github', 'workflows', 'matrix.yml'),
      `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    strategy:
      matrix:
        node: [20, 24]
        shard: [0, 1]
        exclude: [{ node: 20, shard: 1 }]
        include: [{ node: 24, shard: 1, slow: true }]
    steps:
      - id: m
        run: echo "combo=\${{ matrix.node }}-\${{ matrix.shard }}-\${{ matrix.slow || false }}" >> "$GITHUB_OUTPUT"
`,
    );
    const base = { workflowFile: '.github/workflows/matrix.yml', job: 'j', eventName: 'push', eventPayload: { ref: 'refs/heads/main' }, cwd: repo };
    const job = await runWorkflowJob({ ...base, matrix: { node: 24, shard: 1, slow: true } });
    expect(job.steps[0]!.outputs.combo).toBe('24-1-true');
    await expect(runWorkflowJob({ ...base, matrix: { node: 20, shard: 1 } })).rejects.toThrow(/not one of the matrix combinations/);
    await expect(runWorkflowJob(base)).rejects.toThrow(/has a matrix: pass one combination/);
  });

  it('gives a job the results of the jobs it needs, and insists on them', async () => {
    await writeFile(
      join(repo, '.github', 'workflows', 'needs.yml'),
      `on: push
jobs:
  report:
    needs: train
    runs-on: ubuntu-latest
    if: needs.train.result == 'success'
    steps:
      - id: say
        run: echo "version=\${{ needs.train.outputs.version }}" >> "$GITHUB_OUTPUT"
`,
    );
    const base = { workflowFile: '.github/workflows/needs.yml', job: 'report', eventName: 'push', eventPayload: { ref: 'refs/heads/main' }, cwd: repo };
    await expect(runWorkflowJob(base)).rejects.toThrow(/needs train/);
    const ran = await runWorkflowJob({ ...base, needs: { train: { result: 'success', outputs: { version: 'v3' } } } });
    expect(ran.steps[0]!.outputs).toEqual({ version: 'v3' });
    const skipped = await runWorkflowJob({ ...base, needs: { train: { result: 'failure', outputs: {} } } });
    expect(skipped.steps).toEqual([]);
  });

  it('rejects an event the workflow does not declare, and an unknown job', async () => {
    await expect(runWorkflowJob({ workflowFile: '.github/workflows/demo.yml', job: 'build', eventName: 'release', cwd: repo })).rejects.toThrow(
      /not triggered by 'release'/,
    );
    await expect(runWorkflowJob({ workflowFile: '.github/workflows/demo.yml', job: 'deploy', eventName: 'push', cwd: repo })).rejects.toThrow(
      /no job 'deploy'/,
    );
  });

  it('rejects a step outside its subset before running anything, naming the step', async () => {
    await writeFile(
      join(repo, '.github', 'workflows', 'bad.yml'),
      `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    steps:
      - run: touch ran-before.txt
      - name: Upload
        uses: actions/upload-artifact@ea165f8d65b6e75b540449e92b4886f43607fa02
`,
    );
    await expect(runWorkflowJob({ workflowFile: '.github/workflows/bad.yml', job: 'j', eventName: 'push', cwd: repo })).rejects.toThrow(
      /step 'Upload' uses 'actions\/upload-artifact@ea16.*not support/,
    );
    expect(await text('ran-before.txt')).toBeUndefined();

    await writeFile(
      join(repo, '.github', 'workflows', 'container.yml'),
      `on: push
jobs:
  j:
    runs-on: ubuntu-latest
    container: node:24
    steps: [{ run: 'true' }]
`,
    );
    await expect(runWorkflowJob({ workflowFile: '.github/workflows/container.yml', job: 'j', eventName: 'push', cwd: repo })).rejects.toThrow(
      /container or services/,
    );
  });
});
