// Contract between stage kinds and their actions: one action per kind and no other, each
// action.yml exactly what the generator renders from the kind's spec (inputs = params, same
// names), one runtime for all, and a built bundle where `main` points.

import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, inject, it } from 'vitest';
import { stageKinds } from '../../pipeline/stages.ts';
import { defineStage } from '../../pipeline/core/stage.ts';
import { actionInputs, COMMON_INPUTS, COMMON_OUTPUTS, renderActionYaml, RUNS_USING } from '../../actions/lib/action-yaml.ts';
import { generateActions, NON_STAGE_ACTIONS } from '../../actions/lib/gen-actions.ts';
import { repoRoot } from '../support/runner/index.ts';

interface ActionYaml {
  inputs: Record<string, { required?: boolean; default?: string; description: string }>;
  outputs: Record<string, { description: string }>;
  runs: { using: string; main: string };
}

async function actionDirs(): Promise<string[]> {
  return (await readdir(join(repoRoot, 'actions'), { withFileTypes: true }))
    .filter((d) => d.isDirectory() && !NON_STAGE_ACTIONS.has(d.name))
    .map((d) => d.name)
    .sort();
}

async function readAction(kind: string): Promise<{ text: string; doc: ActionYaml }> {
  const text = await readFile(join(repoRoot, 'actions', kind, 'action.yml'), 'utf8');
  return { text, doc: parse(text) as ActionYaml };
}

describe('stage actions', () => {
  it('there is one action per stage kind and no action without a kind', async () => {
    expect(await actionDirs()).toEqual([...stageKinds.keys()].sort());
  });

  it.each([...stageKinds.keys()])('actions/%s/action.yml is exactly what `npm run gen:actions` produces', async (kind) => {
    const { text } = await readAction(kind);
    expect(text, 'run `npm run gen:actions` and commit the result').toBe(renderActionYaml(stageKinds.get(kind)!));
  });

  it('the generator reports nothing stale (what `npm run gen:actions -- --check` runs in CI)', async () => {
    expect(await generateActions(repoRoot, { check: true })).toEqual({ changed: [], orphans: [] });
  });

  it.each([...stageKinds.keys()])('actions/%s inputs match the kind: config, stage, force, then every param by name', async (kind) => {
    const spec = stageKinds.get(kind)!;
    const { doc } = await readAction(kind);
    expect(Object.keys(doc.inputs)).toEqual([...Object.keys(COMMON_INPUTS), ...Object.keys(spec.params)]);
    expect(doc.inputs.stage?.required).toBe(true);
    for (const param of Object.keys(spec.params)) {
      // No default and not required: "" keeps what pipeline.yaml says.
      expect(doc.inputs[param]?.default, `input ${param}`).toBeUndefined();
      expect(doc.inputs[param]?.required, `input ${param}`).toBe(false);
    }
    expect(Object.keys(doc.outputs)).toEqual([...Object.keys(COMMON_OUTPUTS), ...Object.keys(spec.outputs)]);
    expect(doc.runs).toEqual({ using: RUNS_USING, main: `../../dist/actions/${kind}.js` });
  });

  it.each([...stageKinds.keys()])('actions/%s/main.ts hands its own kind to the shared runner', async (kind) => {
    const main = await readFile(join(repoRoot, 'actions', kind, 'main.ts'), 'utf8');
    expect(main).toContain("from '../lib/runner.ts'");
    expect(main).toContain(`runStageAction('${kind}')`);
  });

  it('all stage actions use the same runs.using', async () => {
    const runtimes = new Set<string>();
    for (const kind of await actionDirs()) runtimes.add((await readAction(kind)).doc.runs.using);
    expect([...runtimes]).toEqual([RUNS_USING]);
  });

  it('every action main points at a bundle the build produced', async () => {
    expect(inject('buildError')).toBe('');
    for (const kind of await actionDirs()) {
      const { doc } = await readAction(kind);
      expect(existsSync(resolve(repoRoot, 'actions', kind, doc.runs.main)), `${kind}: ${doc.runs.main}`).toBe(true);
    }
  });

  it('a param that clashes with a common input is refused by the generator', () => {
    const bad = defineStage({
      kind: 'bad',
      title: 'bad',
      params: { force: { type: 'boolean', description: 'clash' } },
      outputs: {},
      codePaths: [],
    });
    expect(() => actionInputs(bad)).toThrow(/clashes/);
    const badOutput = defineStage({ kind: 'bad', title: 'bad', params: {}, outputs: { status: 'clash' }, codePaths: [] });
    expect(() => renderActionYaml(badOutput)).toThrow(/clashes/);
  });

  it('param inputs describe type, choices and default', () => {
    const kind = defineStage({
      kind: 'demo',
      title: 'Demo',
      params: {
        epochs: { type: 'integer', description: 'Training epochs', default: 10, min: 1 },
        task: { type: 'string', description: 'Task', choices: ['detection', 'classification'], required: true },
      },
      outputs: { model: 'Path of the model' },
      codePaths: [],
    });
    const doc = parse(renderActionYaml(kind)) as ActionYaml;
    expect(doc.inputs.epochs).toEqual({ description: 'Training epochs (integer; ≥ 1). Default 10. Empty: the value in pipeline.yaml.', required: false });
    expect(doc.inputs.task?.description).toContain('one of detection, classification');
    expect(doc.outputs.model).toEqual({ description: 'Path of the model' });
  });
});
