// Generates each stage action's metadata (action.yml) from its stage kind's spec, so action
// inputs, CLI flags and pipeline.yaml params can never drift apart (a contract test compares).

import { stringify } from 'yaml';
import type { ParamSpec } from '../../pipeline/core/params.ts';
import type { AnyStageKind } from '../../pipeline/core/stage.ts';

/** The one Node runtime every action uses. */
export const RUNS_USING = 'node24';

/** Default path of the pipeline definition, relative to the repository root. */
export const DEFAULT_CONFIG = 'pipeline/pipeline.yaml';

export interface ActionInput {
  description: string;
  required: boolean;
  default?: string;
}

/** Inputs every stage action has, besides one input per param of its kind. */
export const COMMON_INPUTS: Readonly<Record<string, ActionInput>> = {
  config: {
    description: 'Path of pipeline.yaml, relative to the repository root',
    required: false,
    default: DEFAULT_CONFIG,
  },
  stage: {
    description: 'Name of the stage instance in pipeline.yaml to run',
    required: true,
  },
  force: {
    description: 'Run the stage even when it is up to date',
    required: false,
    default: 'false',
  },
};

/** Outputs every stage action sets, on success and on failure, besides its kind's own outputs. */
export const COMMON_OUTPUTS: Readonly<Record<string, string>> = {
  status: 'What happened to the stage: ran, skipped, restored, failed or not-run',
  stage: 'Name of the stage instance',
  kind: 'Stage kind',
  outs: 'JSON array of the stage\'s declared out paths, relative to the repository root',
  reports: 'JSON array of the report files the stage wrote, relative to the repository root',
  reasons: 'JSON array of the reasons the stage was stale (empty when it was up to date)',
  'duration-ms': 'How long the stage ran, in milliseconds',
};

/** Where an action's bundle lives, relative to its action folder (built, never committed). */
export function actionMain(kind: string): string {
  return `../../dist/actions/${kind}.js`;
}

function describeParam(spec: ParamSpec): string {
  const facts: string[] = [spec.type];
  if (spec.choices) facts.push(`one of ${spec.choices.join(', ')}`);
  if (spec.min !== undefined) facts.push(`≥ ${spec.min}`);
  if (spec.max !== undefined) facts.push(`≤ ${spec.max}`);
  if (spec.type === 'string-list') facts.push('JSON array, or comma/newline separated');
  if (spec.type === 'mapping') facts.push('JSON object');
  let text = `${spec.description.replace(/\.$/, '')} (${facts.join('; ')}).`;
  if (spec.default !== undefined) text += ` Default ${JSON.stringify(spec.default)}.`;
  text += ' Empty: the value in pipeline.yaml.';
  return text;
}

/** The inputs of a kind's action: the common ones, then one per param, same kebab-case names. */
export function actionInputs(kind: AnyStageKind): Record<string, ActionInput> {
  const inputs: Record<string, ActionInput> = { ...COMMON_INPUTS };
  for (const [name, spec] of Object.entries(kind.params)) {
    if (name in COMMON_INPUTS) throw new Error(`stage kind \`${kind.kind}\`: param \`${name}\` clashes with the action input of the same name`);
    // No default: an empty input means "keep what pipeline.yaml says".
    inputs[name] = { description: describeParam(spec), required: false };
  }
  return inputs;
}

/** The outputs of a kind's action: the common ones, then the kind's own. */
export function actionOutputs(kind: AnyStageKind): Record<string, string> {
  const outputs: Record<string, string> = { ...COMMON_OUTPUTS };
  for (const [name, description] of Object.entries(kind.outputs)) {
    if (name in COMMON_OUTPUTS) throw new Error(`stage kind \`${kind.kind}\`: output \`${name}\` clashes with a common action output`);
    outputs[name] = description;
  }
  return outputs;
}

/** The action.yml text of a kind, byte for byte what is committed under actions/<kind>/. */
export function renderActionYaml(kind: AnyStageKind): string {
  const inputs: Record<string, Record<string, unknown>> = {};
  for (const [name, input] of Object.entries(actionInputs(kind))) {
    inputs[name] = { description: input.description, required: input.required };
    if (input.default !== undefined) inputs[name]!.default = input.default;
  }
  const outputs: Record<string, { description: string }> = {};
  for (const [name, description] of Object.entries(actionOutputs(kind))) outputs[name] = { description };

  const doc = {
    name: `Skin-Twin ${kind.kind}`,
    description: kind.title,
    inputs,
    outputs,
    runs: { using: RUNS_USING, main: actionMain(kind.kind) },
  };
  const header =
    `# Generated from the \`${kind.kind}\` stage kind by \`npm run gen:actions\`: do not edit by hand.\n` +
    `# Inputs are the stage's params (same names as in pipeline.yaml and the CLI flags).\n`;
  return header + stringify(doc, { lineWidth: 0, defaultStringType: 'PLAIN', defaultKeyType: 'PLAIN' });
}

/** The thin entry point of a kind's action. */
export function renderActionMain(kind: AnyStageKind): string {
  return (
    `// Action entry for the \`${kind.kind}\` stage kind: everything happens in the shared runner.\n\n` +
    `import { runStageAction } from '../lib/runner.ts';\n\n` +
    `await runStageAction('${kind.kind}');\n`
  );
}
