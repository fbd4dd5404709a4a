// Static checks of every workflow and action: actionlint, and the project's own rules
// (local action inputs, SHA pins, least privilege, no event text in scripts, stage order).

import { readdir, readFile } from 'node:fs/promises';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  actionShapeErrors,
  actionlint,
  actionsImportErrors,
  compositeAsWorkflow,
  injectionErrors,
  loadActions,
  loadWorkflows,
  localActionInputErrors,
  nodeRuntimes,
  permissionErrors,
  pinErrors,
  selfHostedLabels,
  stageOrderErrors,
  stageSteps,
  type ActionFile,
  type GraphStage,
  type YamlFile,
} from './rules.ts';

const root = resolve(fileURLToPath(import.meta.url), '../../..');

let workflows: YamlFile[];
let actions: ActionFile[];
let labels: string[];

beforeAll(async () => {
  [workflows, actions, labels] = await Promise.all([loadWorkflows(root), loadActions(root), selfHostedLabels(root)]);
});

function yamlFile(path: string, text: string): YamlFile {
  return { path, text, doc: parse(text) };
}

/** A workflow the checks must reject: `on:`, then the lines under `jobs:`. */
function badWorkflow(on: string, jobs: string[]): YamlFile {
  return yamlFile('bad.yml', [`on: ${on}`, 'jobs:', ...jobs].join('\n'));
}

/** The lines of one job `a` on ubuntu-latest with these step lines. */
function jobA(steps: string[]): string[] {
  return ['  a:', '    runs-on: ubuntu-latest', '    steps:', ...steps];
}

const format = (findings: { line: number; column: number; message: string }[], path: string): string[] =>
  findings.map((f) => `${path}:${f.line}:${f.column}: ${f.message}`);

describe('actionlint', () => {
  it('finds the workflows and actions to check', () => {
    expect(workflows.map((w) => w.path)).toEqual(expect.arrayContaining(['.github/workflows/ci.yml', '.github/workflows/retrain.yml']));
    expect(actions.map((a) => a.ref)).toEqual(expect.arrayContaining(['./actions/setup', './actions/command']));
    expect(labels).toContain('gpu');
  });

  it('reports nothing on any workflow', async () => {
    const findings: string[] = [];
    for (const w of workflows) findings.push(...format(await actionlint(w.text, w.path, labels), w.path));
    expect(findings).toEqual([]);
  });

  it('reports nothing on the steps of any composite action', async () => {
    const findings: string[] = [];
    for (const a of actions.filter((x) => x.doc?.runs?.using === 'composite')) {
      // Lines refer to the wrapped workflow, so name the action and quote the finding.
      findings.push(...format(await actionlint(compositeAsWorkflow(a.doc), a.path, labels), `${a.path} (wrapped)`));
    }
    expect(findings).toEqual([]);
  });

  it('catches untrusted input in scripts, unknown labels and bad expressions', async () => {
    const bad = [
      'on: pull_request',
      'permissions: {}',
      'jobs:',
      '  a:',
      '    runs-on: [self-hosted, linux, gpux]',
      '    steps:',
      '      - run: echo "${{ github.event.pull_request.title }}"',
      '      - run: echo "${{ steps.x.outputs }}"',
    ].join('\n');
    const kinds = (await actionlint(bad, 'bad.yml', labels)).map((f) => f.kind);
    expect(kinds).toEqual(expect.arrayContaining(['runner-label', 'expression']));
    // The declared label is accepted, an undeclared one is not.
    const gpu = bad.replace('gpux', 'gpu');
    expect((await actionlint(gpu, 'ok.yml', labels)).filter((f) => f.kind === 'runner-label')).toEqual([]);
    expect((await actionlint(gpu, 'ok.yml', [])).filter((f) => f.kind === 'runner-label')).toHaveLength(1);
  });

  it('catches a broken expression inside a composite action', async () => {
    const action = parse('name: x\ndescription: x\nruns:\n  using: composite\n  steps:\n    - shell: bash\n      run: echo ${{ inputs.cuda ==  }}\n');
    expect(await actionlint(compositeAsWorkflow(action), 'x', labels)).not.toEqual([]);
  });
});

describe('action metadata', () => {
  it('every action.yml has the shape the runner needs', () => {
    expect(actions.flatMap(actionShapeErrors)).toEqual([]);
  });

  it('all JavaScript actions use one and the same Node runtime', () => {
    const runtimes = nodeRuntimes(actions);
    expect([...runtimes.keys()]).toEqual(['node24']);
    expect(nodeRuntimes([...actions, { ...actions[0]!, path: 'x/action.yml', doc: { runs: { using: 'node20', main: 'x.js' } } }]).size).toBe(2);
  });

  it('the shape check catches a composite run step without shell and a missing main', () => {
    const composite = { path: 'a/action.yml', ref: './a', text: '', doc: parse('name: a\ndescription: a\nruns:\n  using: composite\n  steps:\n    - run: echo\n') };
    const node = { path: 'b/action.yml', ref: './b', text: '', doc: parse('name: b\ndescription: b\ninputs:\n  Bad_Name: {}\nruns:\n  using: node24\n') };
    expect(actionShapeErrors(composite).join('\n')).toMatch(/needs `shell`/);
    const errors = actionShapeErrors(node).join('\n');
    expect(errors).toMatch(/runs.main/);
    expect(errors).toMatch(/not kebab-case/);
  });
});

describe('local action inputs', () => {
  it('every `uses: ./actions/x` step passes only declared inputs and all required ones', () => {
    expect([...workflows, ...actions].flatMap((f) => localActionInputErrors(f, actions))).toEqual([]);
  });

  it('catches an undeclared input, a missing required input and a missing action', () => {
    const wf = badWorkflow(
      'push',
      jobA([
        '      - uses: ./actions/command',
        '        with: { stage: x, epoch: 3 }',
        '      - uses: ./actions/command',
        '        with: { force: true }',
        '      - uses: ./actions/nope',
      ]),
    );
    const errors = localActionInputErrors(wf, actions).join('\n');
    expect(errors).toMatch(/input `epoch` is not declared/);
    expect(errors).toMatch(/required input `stage`/);
    expect(errors).toMatch(/`\.\/actions\/nope` has no action.yml/);
  });
});

describe('supply chain and privileges', () => {
  it('third-party actions are pinned by full commit SHA', () => {
    expect([...workflows, ...actions].flatMap(pinErrors)).toEqual([]);
  });

  it('the pin check rejects tags, short SHAs and unpinned images', () => {
    const wf = badWorkflow(
      'push',
      jobA([
        '      - uses: actions/checkout@v5',
        '      - uses: actions/setup-node@a0853c2',
        '      - uses: docker://alpine:3',
        '      - uses: actions/cache/restore@0057852bfaa89a56745cba8c7296529d2fc39830',
        '      - uses: ./actions/setup',
      ]),
    );
    expect(pinErrors(wf)).toHaveLength(3);
  });

  it('every job has permissions, none grants write-all, and fork PRs cannot reach self-hosted runners', () => {
    expect(workflows.flatMap(permissionErrors)).toEqual([]);
  });

  it('the permission check catches a job without permissions, write-all and an unguarded self-hosted PR job', () => {
    const wf = badWorkflow('[pull_request]', [
      '  a:',
      '    runs-on: ubuntu-latest',
      '    steps: [{ run: echo }]',
      '  b:',
      '    runs-on: ubuntu-latest',
      '    permissions: write-all',
      '    steps: [{ run: echo }]',
      '  c:',
      '    runs-on: [self-hosted, gpu]',
      '    permissions: { contents: read }',
      '    steps: [{ run: echo }]',
      '  d:',
      '    runs-on: [self-hosted, gpu]',
      '    permissions: { contents: read }',
      '    if: github.event.pull_request.head.repo.full_name == github.repository',
      '    steps: [{ run: echo }]',
    ]);
    const errors = permissionErrors(wf).join('\n');
    expect(errors).toMatch(/job `a` has no `permissions`/);
    expect(errors).toMatch(/job `b` grants `permissions: write-all`/);
    expect(errors).toMatch(/job `c` runs pull request code on a self-hosted runner/);
    expect(errors).not.toMatch(/job `d`/);
  });

  it('no event text or head_ref is expanded inside a run: script', () => {
    expect([...workflows, ...actions].flatMap(injectionErrors)).toEqual([]);
  });

  it('the injection check catches event titles, branch names and head_ref, not event_name', () => {
    const wf = badWorkflow(
      'pull_request',
      jobA([
        '      - run: echo "${{ github.event.pull_request.title }}"',
        '      - run: |',
        '          git checkout ${{ github.head_ref }}',
        '      - run: echo "${{ github.event_name }}"',
        '      - env: { TITLE: "${{ github.event.issue.title }}" }',
        '        run: echo "$TITLE"',
      ]),
    );
    const errors = injectionErrors(wf);
    expect(errors).toHaveLength(2);
    expect(errors.join('\n')).toMatch(/pull_request\.title/);
    expect(errors.join('\n')).toMatch(/head_ref/);
  });
});

describe('pipeline/ stays free of @actions/*', () => {
  async function sources(dir: string): Promise<{ path: string; text: string }[]> {
    const out: { path: string; text: string }[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
      if (!entry.isFile() || !/\.(ts|mts|cts|js|mjs)$/.test(entry.name)) continue;
      const abs = join(entry.parentPath, entry.name);
      out.push({ path: relative(root, abs), text: await readFile(abs, 'utf8') });
    }
    return out;
  }

  it('no source file under pipeline/ imports @actions/*', async () => {
    const files = await sources(join(root, 'pipeline'));
    expect(files.length).toBeGreaterThan(10);
    expect(actionsImportErrors(files)).toEqual([]);
  });

  it('the scan catches static, dynamic and type imports and require', () => {
    const files = [
      { path: 'a.ts', text: "import * as core from '@actions/core';" },
      { path: 'b.ts', text: "const { saveCache } = await import('@actions/cache');" },
      { path: 'c.ts', text: "import type { Octokit } from \"@actions/github/lib/utils\";" },
      { path: 'd.ts', text: "const c = require('@actions/core');" },
      { path: 'e.ts', text: "import '@actions/core';" },
      { path: 'f.ts', text: "// the actions/ adapter wraps @actions/cache\nconst name = 'octokit';" },
    ];
    expect(actionsImportErrors(files).map((e) => e.split(':')[0])).toEqual(['a.ts', 'b.ts', 'c.ts', 'd.ts', 'e.ts']);
  });
});

describe('retrain.yml runs the pipeline in graph order', () => {
  const graph = (entries: [string, string, string[]][]): Map<string, GraphStage> =>
    new Map(entries.map(([name, kind, upstream]) => [name, { kind, upstream }]));

  it('the order check catches a stage before its upstream, a repeat, a wrong kind, a missing and an unknown stage', () => {
    const stages = graph([
      ['fetch', 'fetch-dataset', []],
      ['prep', 'prepare-data', ['fetch']],
      ['fusion', 'build-fusion-data', ['fetch']],
    ]);
    const step = (stage: string, kind: string) => ({ where: `step ${stage}`, stage, kind });
    expect(stageOrderErrors([step('fetch', 'fetch-dataset'), step('prep', 'prepare-data'), step('fusion', 'build-fusion-data')], stages)).toEqual([]);
    const errors = stageOrderErrors(
      [step('prep', 'prepare-data'), step('fetch', 'fetch-dataset'), step('fetch', 'fetch-dataset'), step('extra', 'command'), step('fusion', 'prepare-data')],
      new Map([...stages, ['train', { kind: 'train', upstream: ['prep'] }]]),
    ).join('\n');
    expect(errors).toMatch(/`prep` runs before its upstream stage `fetch`/);
    expect(errors).toMatch(/`fetch` runs more than once/);
    expect(errors).toMatch(/`extra` is not in the pipeline/);
    expect(errors).toMatch(/`fusion` is of kind `build-fusion-data`/);
    expect(errors).toMatch(/`train` of the pipeline has no step/);
  });

  it('every stage of pipeline/pipeline.yaml appears once, after its upstream stages', async () => {
    // The engine's own loader, so the graph is exactly the one `repro` uses.
    const { loadPipeline } = await import('../../pipeline/engine/index.ts');
    const pipeline = await loadPipeline({ root });
    const stages = new Map([...pipeline.stages].map(([name, s]) => [name, { kind: s.kind.kind, upstream: s.upstream }]));
    const retrain = workflows.find((w) => w.path === '.github/workflows/retrain.yml');
    expect(retrain, 'retrain.yml exists').toBeDefined();
    const steps = stageSteps(retrain!, 'retrain');
    expect(steps.length).toBe(stages.size);
    expect(stageOrderErrors(steps, stages)).toEqual([]);
  });
});
