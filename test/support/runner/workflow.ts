// A small job executor: runs one job of a workflow file step by step, offline, the way the runner
// would — `uses: ./actions/<name>` through runAction, `run:` through bash — with `env:` at three
// levels, `with:`, `if:` and `${{ }}` substitution. Steps that only prepare the workspace
// (checkout, setup-node, our own ./actions/setup, actions/cache) count as already done; any other
// construct outside this subset is rejected up front, naming the step.

import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import {
  commandFiles,
  githubContext,
  parseCommands,
  readCommandFiles,
  runAction,
  runnerEnv,
  spawnCollect,
  unreachableApi,
  type Annotation,
  type StandInEndpoints,
} from './action.ts';
import { evaluateCondition, interpolate, toText, type ExpressionContext, type Value } from './expressions.ts';

/** `uses:` values that only prepare the workspace; the test has already done that. */
const preparedUses = [/^actions\/checkout@/, /^actions\/setup-node@/, /^actions\/cache(\/(restore|save))?@/, /^\.\/actions\/setup\/?$/];

export interface RunWorkflowJobOptions extends StandInEndpoints {
  /** Path of the workflow YAML (absolute, or relative to `cwd`). */
  workflowFile: string;
  job: string;
  eventName: string;
  eventPayload?: unknown;
  /** The checked-out repository: GITHUB_WORKSPACE, where `./actions/*` resolve and `run:` steps start. */
  cwd: string;
  /** workflow_dispatch / workflow_call inputs (defaults come from the workflow). */
  inputs?: Readonly<Record<string, string | number | boolean>>;
  secrets?: Readonly<Record<string, string>>;
  vars?: Readonly<Record<string, string>>;
  repository?: string;
  sha?: string;
  ref?: string;
  token?: string;
  /** Extra environment for every step (e.g. a PATH with a test node), under the workflow's own env. */
  env?: Readonly<Record<string, string>>;
  /** Per-step timeout (default 300 s). */
  stepTimeoutMs?: number;
  /** One combination of the job's `strategy.matrix` to run (required when the job has a matrix). */
  matrix?: Readonly<Record<string, Value>>;
  /** Results of the jobs this one `needs` (the executor runs one job; earlier jobs are the test's). */
  needs?: Readonly<Record<string, { result: 'success' | 'failure' | 'skipped'; outputs: Record<string, string> }>>;
}

export type StepKind = 'action' | 'run' | 'prepared';

export interface StepResult {
  index: number;
  id: string | undefined;
  name: string;
  kind: StepKind;
  outcome: 'success' | 'failure' | 'skipped';
  conclusion: 'success' | 'failure' | 'skipped';
  exitCode: number | null;
  outputs: Record<string, string>;
  stdout: string;
  stderr: string;
  annotations: Annotation[];
  summary: string;
  durationMs: number;
}

export interface JobRun {
  status: 'success' | 'failure';
  steps: StepResult[];
  /** Job `outputs:`, evaluated at the end. */
  outputs: Record<string, string>;
  /** All step summaries, in order. */
  summary: string;
  /** Environment exported through GITHUB_ENV by the steps. */
  exportedEnv: Record<string, string>;
}

interface StepDef {
  id?: string;
  name?: string;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
  env?: Record<string, unknown>;
  if?: string | boolean;
  shell?: string;
  'working-directory'?: string;
  'continue-on-error'?: boolean | string;
  'timeout-minutes'?: number;
}

interface JobDef {
  name?: string;
  if?: string | boolean;
  env?: Record<string, unknown>;
  steps?: StepDef[];
  outputs?: Record<string, string>;
  strategy?: unknown;
  container?: unknown;
  services?: unknown;
  uses?: string;
  needs?: string | string[];
  defaults?: { run?: { shell?: string; 'working-directory'?: string } };
}

interface WorkflowDef {
  name?: string;
  on?: unknown;
  env?: Record<string, unknown>;
  jobs?: Record<string, JobDef>;
  defaults?: { run?: { shell?: string; 'working-directory'?: string } };
}

const supportedStepKeys = new Set(['id', 'name', 'uses', 'run', 'with', 'env', 'if', 'shell', 'working-directory', 'continue-on-error', 'timeout-minutes']);

export class WorkflowNotSupportedError extends Error {
  override name = 'WorkflowNotSupportedError';
}

/** The event does not start this workflow (its branch, tag or path filters exclude it). */
export class WorkflowNotTriggeredError extends Error {
  override name = 'WorkflowNotTriggeredError';
}

/** A GitHub filter pattern as a RegExp: `*` within a path segment, `**` across, `?` one character. */
export function filterPattern(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*' && glob[i + 2] === '/') {
      re += '(?:.*/)?'; // `docs/**/*.md` matches docs/README.md too
      i += 2;
    } else if (c === '*' && glob[i + 1] === '*') {
      re += '.*';
      i++;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '.';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** GitHub's filter semantics: patterns in order, a `!` pattern excludes again; last match wins. */
function matchesFilters(value: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const p of patterns) {
    if (p.startsWith('!')) {
      if (filterPattern(p.slice(1)).test(value)) matched = false;
    } else if (filterPattern(p).test(value)) matched = true;
  }
  return matched;
}

function asList(v: unknown): string[] | undefined {
  return Array.isArray(v) ? v.map(String) : typeof v === 'string' ? [v] : undefined;
}

/** Apply a push trigger's branches/tags/paths filters to a push payload, as GitHub does. */
export function checkPushFilters(trigger: Record<string, unknown>, payload: unknown, where: string): void {
  const p = (payload ?? {}) as { ref?: string; commits?: { added?: string[]; removed?: string[]; modified?: string[] }[] };
  const ref = p.ref ?? '';
  const isTag = ref.startsWith('refs/tags/');
  const name = ref.replace(/^refs\/(heads|tags)\//, '');
  const [include, ignore] = isTag ? [asList(trigger.tags), asList(trigger['tags-ignore'])] : [asList(trigger.branches), asList(trigger['branches-ignore'])];
  const other = isTag ? asList(trigger.branches) ?? asList(trigger['branches-ignore']) : asList(trigger.tags) ?? asList(trigger['tags-ignore']);
  if (!include && !ignore && other) throw new WorkflowNotTriggeredError(`${where}: a push of ${ref} does not match its ${isTag ? 'branch' : 'tag'}-only filters`);
  if (include && !matchesFilters(name, include)) throw new WorkflowNotTriggeredError(`${where}: ${ref} does not match ${include.join(', ')}`);
  if (ignore && matchesFilters(name, ignore)) throw new WorkflowNotTriggeredError(`${where}: ${ref} is ignored by ${ignore.join(', ')}`);
  const paths = asList(trigger.paths);
  const pathsIgnore = asList(trigger['paths-ignore']);
  if (isTag || (!paths && !pathsIgnore)) return;
  const changed = [...new Set((p.commits ?? []).flatMap((c) => [...(c.added ?? []), ...(c.removed ?? []), ...(c.modified ?? [])]))];
  if (paths && !changed.some((f) => matchesFilters(f, paths))) {
    throw new WorkflowNotTriggeredError(`${where}: none of the changed files (${changed.join(', ') || 'none'}) match paths ${paths.join(', ')}`);
  }
  if (pathsIgnore && changed.every((f) => matchesFilters(f, pathsIgnore))) {
    throw new WorkflowNotTriggeredError(`${where}: every changed file is ignored by paths-ignore`);
  }
}

function stepLabel(step: StepDef, index: number): string {
  return step.name ?? step.id ?? (step.uses ? `uses ${step.uses}` : `step ${index + 1}`);
}

/** The combinations a static `strategy.matrix` expands to (cartesian product, then exclude, then include). */
export function matrixCombinations(matrix: Record<string, unknown>, where: string): Record<string, Value>[] {
  const { include, exclude, ...axes } = matrix as { include?: unknown; exclude?: unknown } & Record<string, unknown>;
  let combos: Record<string, Value>[] = [{}];
  for (const [axis, values] of Object.entries(axes)) {
    if (!Array.isArray(values)) throw new WorkflowNotSupportedError(`${where}: matrix axis '${axis}' is not a static list`);
    combos = combos.flatMap((c) => values.map((v) => ({ ...c, [axis]: v as Value })));
  }
  if (!Object.keys(axes).length) combos = [];
  const matches = (combo: Record<string, Value>, pattern: Record<string, Value>) =>
    Object.entries(pattern).every(([k, v]) => JSON.stringify(combo[k]) === JSON.stringify(v));
  if (Array.isArray(exclude)) combos = combos.filter((c) => !exclude.some((e) => matches(c, e as Record<string, Value>)));
  if (Array.isArray(include)) {
    for (const extra of include as Record<string, Value>[]) {
      const original = Object.keys(axes);
      const target = combos.filter((c) => Object.entries(extra).every(([k, v]) => !original.includes(k) || JSON.stringify(c[k]) === JSON.stringify(v)));
      if (target.length) target.forEach((c) => Object.assign(c, extra));
      else combos.push({ ...extra });
    }
  }
  return combos;
}

/** The events a workflow declares in `on:`, with their configuration. */
function triggers(on: unknown): Map<string, Record<string, unknown>> {
  if (typeof on === 'string') return new Map([[on, {}]]);
  if (Array.isArray(on)) return new Map(on.map((e) => [String(e), {}]));
  if (on && typeof on === 'object') return new Map(Object.entries(on).map(([k, v]) => [k, (v ?? {}) as Record<string, unknown>]));
  return new Map();
}

function checkSupported(workflowFile: string, jobName: string, job: JobDef): void {
  const where = `${workflowFile}: job '${jobName}'`;
  if (job.uses) throw new WorkflowNotSupportedError(`${where} calls a reusable workflow (${job.uses}), which the job executor does not run`);
  if (job.container || job.services) throw new WorkflowNotSupportedError(`${where} uses a container or services, which the job executor does not run`);
  for (const shell of [job.defaults?.run?.shell]) {
    if (shell && shell !== 'bash') throw new WorkflowNotSupportedError(`${where}: default shell '${shell}' is not supported (bash only)`);
  }
  (job.steps ?? []).forEach((step, index) => {
    const label = `${where}, step '${stepLabel(step, index)}'`;
    const extra = Object.keys(step).filter((k) => !supportedStepKeys.has(k));
    if (extra.length) throw new WorkflowNotSupportedError(`${label}: key(s) ${extra.join(', ')} not supported by the job executor`);
    if (!!step.uses === !!step.run) throw new WorkflowNotSupportedError(`${label}: a step needs exactly one of uses: or run:`);
    if (step.uses) {
      const prepared = preparedUses.some((p) => p.test(step.uses!));
      if (!prepared && !/^\.\/actions\/[a-z0-9-]+\/?$/.test(step.uses)) {
        throw new WorkflowNotSupportedError(
          `${label} uses '${step.uses}', which the job executor does not support (only ./actions/<name>, and checkout/setup-node/cache/./actions/setup treated as done)`,
        );
      }
    }
    if (step.shell && step.shell !== 'bash') throw new WorkflowNotSupportedError(`${label}: shell '${step.shell}' is not supported (bash only)`);
  });
}

function workflowInputs(trigger: Record<string, unknown> | undefined, given: Readonly<Record<string, string | number | boolean>>): Record<string, Value> {
  const specs = (trigger?.inputs ?? {}) as Record<string, { type?: string; default?: unknown; required?: boolean } | null>;
  const unknown = Object.keys(given).filter((k) => !(k in specs));
  if (unknown.length) throw new Error(`unexpected workflow input(s): ${unknown.join(', ')}`);
  const values: Record<string, Value> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const raw = name in given ? given[name] : spec?.default;
    if (raw === undefined) {
      if (spec?.required) throw new Error(`workflow input '${name}' is required`);
      values[name] = spec?.type === 'boolean' ? false : '';
      continue;
    }
    values[name] = spec?.type === 'boolean' ? raw === true || raw === 'true' : spec?.type === 'number' ? Number(raw) : String(raw);
  }
  return values;
}

function evalEnv(block: Record<string, unknown> | undefined, ctx: ExpressionContext): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(block ?? {})) out[k] = interpolate(toText(v as Value), ctx);
  return out;
}

export async function runWorkflowJob(options: RunWorkflowJobOptions): Promise<JobRun> {
  const cwd = resolve(options.cwd);
  const workflowFile = resolve(cwd, options.workflowFile);
  const workflow = parseYaml(await readFile(workflowFile, 'utf8')) as WorkflowDef;
  const job = workflow.jobs?.[options.job];
  if (!job) throw new Error(`${options.workflowFile}: no job '${options.job}' (jobs: ${Object.keys(workflow.jobs ?? {}).join(', ')})`);
  const events = triggers(workflow.on);
  if (!events.has(options.eventName)) {
    throw new Error(`${options.workflowFile} is not triggered by '${options.eventName}' (on: ${[...events.keys()].join(', ')})`);
  }
  if (options.eventName === 'push') checkPushFilters(events.get('push')!, options.eventPayload, options.workflowFile);
  checkSupported(options.workflowFile, options.job, job);
  const strategy = job.strategy as { matrix?: unknown } | undefined;
  if (strategy?.matrix !== undefined) {
    const where = `${options.workflowFile}: job '${options.job}'`;
    if (typeof strategy.matrix !== 'object' || strategy.matrix === null) {
      throw new WorkflowNotSupportedError(`${where}: a matrix computed by an expression is not supported`);
    }
    const combos = matrixCombinations(strategy.matrix as Record<string, unknown>, where);
    const wanted = options.matrix;
    const shown = combos.map((c) => JSON.stringify(c)).join(', ');
    if (!wanted) throw new Error(`${where} has a matrix: pass one combination as \`matrix\` (${shown})`);
    if (!combos.some((c) => JSON.stringify(Object.entries(c).sort()) === JSON.stringify(Object.entries(wanted).sort()))) {
      throw new Error(`${where}: ${JSON.stringify(wanted)} is not one of the matrix combinations (${shown})`);
    }
  } else if (options.matrix) {
    throw new Error(`${options.workflowFile}: job '${options.job}' has no matrix`);
  }
  const needed = typeof job.needs === 'string' ? [job.needs] : (job.needs ?? []);
  const missing = needed.filter((n) => !options.needs?.[n]);
  if (missing.length) throw new Error(`${options.workflowFile}: job '${options.job}' needs ${missing.join(', ')}: pass their results as \`needs\``);

  const scratch = await mkdtemp(join(tmpdir(), 'workflow-job-'));
  try {
    const runnerTemp = join(scratch, 'runner-temp');
    await mkdir(runnerTemp);
    const eventPath = join(scratch, 'event.json');
    await writeFile(eventPath, JSON.stringify(options.eventPayload ?? {}));
    const repository = options.repository ?? 'skin-twin/skin-twin-mlops';
    const sha = options.sha ?? ((options.eventPayload as { after?: string } | undefined)?.after || '0123456789abcdef0123456789abcdef01234567');
    const ref = options.ref ?? ((options.eventPayload as { ref?: string } | undefined)?.ref || 'refs/heads/main');
    const token = options.token ?? 'ghs_loopbackTestToken000000000000000000';
    const apiUrl = (options.githubApiUrl ?? unreachableApi).replace(/\/$/, '');
    const workflowName = workflow.name ?? options.workflowFile;
    const base = runnerEnv({ eventName: options.eventName, eventPath, repository, sha, ref, token, workspace: cwd, runnerTemp, apiUrl, job: options.job, workflow: workflowName });

    const steps: Record<string, Value> = {};
    // The inputs context exists only for the events that carry inputs; elsewhere it is empty.
    const inputEvent = options.eventName === 'workflow_dispatch' || options.eventName === 'workflow_call';
    if (!inputEvent && options.inputs && Object.keys(options.inputs).length) {
      throw new Error(`workflow inputs were given, but a ${options.eventName} event carries none`);
    }
    const inputs = inputEvent ? workflowInputs(events.get(options.eventName), options.inputs ?? {}) : {};
    const github = githubContext({ eventName: options.eventName, eventPayload: options.eventPayload, repository, sha, ref, token, workspace: cwd, apiUrl, job: options.job, workflow: workflowName });
    const contexts: Record<string, Value> = {
      github,
      inputs,
      secrets: { GITHUB_TOKEN: token, ...options.secrets },
      vars: { ...options.vars },
      steps,
      runner: { os: 'Linux', arch: 'X64', name: 'loopback-runner', temp: runnerTemp, environment: 'self-hosted' },
      job: { status: 'success' },
      matrix: { ...options.matrix },
      needs: { ...options.needs },
      strategy: {},
      env: {},
    };
    let status: 'success' | 'failure' = 'success';
    const ctx = (): ExpressionContext => ({ contexts, jobStatus: status });

    const workflowEnv = { ...options.env, ...evalEnv(workflow.env, ctx()) };
    contexts.env = workflowEnv;
    if (!evaluateCondition(job.if, ctx())) {
      return { status: 'success', steps: [], outputs: {}, summary: '', exportedEnv: {} };
    }
    const jobEnv = { ...workflowEnv, ...evalEnv(job.env, ctx()) };
    const exportedEnv: Record<string, string> = {};
    const addedPath: string[] = [];
    const results: StepResult[] = [];
    const summaries: string[] = [];
    const defaults = { ...workflow.defaults?.run, ...job.defaults?.run };

    for (const [index, step] of (job.steps ?? []).entries()) {
      const name = stepLabel(step, index);
      contexts.env = { ...jobEnv, ...exportedEnv };
      contexts.job = { status };
      const result: StepResult = {
        index,
        id: step.id,
        name,
        kind: step.run ? 'run' : preparedUses.some((p) => p.test(step.uses!)) ? 'prepared' : 'action',
        outcome: 'skipped',
        conclusion: 'skipped',
        exitCode: null,
        outputs: {},
        stdout: '',
        stderr: '',
        annotations: [],
        summary: '',
        durationMs: 0,
      };
      results.push(result);
      const started = performance.now();
      const record = () => {
        if (step.id) steps[step.id] = { outputs: result.outputs, outcome: result.outcome, conclusion: result.conclusion };
      };
      if (!evaluateCondition(step.if, ctx())) {
        record();
        continue;
      }
      const stepEnv = { ...jobEnv, ...exportedEnv, ...evalEnv(step.env, ctx()) };
      contexts.env = stepEnv;
      const processEnv = { ...base, ...options.resultsEnv, ...stepEnv };
      if (addedPath.length) processEnv.PATH = [...addedPath, processEnv.PATH ?? ''].join(delimiter);
      const timeoutMs = step['timeout-minutes'] ? step['timeout-minutes'] * 60_000 : (options.stepTimeoutMs ?? 300_000);

      let ok: boolean;
      if (result.kind === 'prepared') {
        ok = true;
      } else if (result.kind === 'action') {
        const withInputs: Record<string, string> = {};
        for (const [k, v] of Object.entries(step.with ?? {})) withInputs[k] = interpolate(toText(v as Value), ctx());
        const run = await runAction({
          actionDir: resolve(cwd, step.uses!),
          inputs: withInputs,
          env: processEnv,
          eventName: options.eventName,
          eventPayload: options.eventPayload,
          cwd,
          repository,
          sha,
          ref,
          token,
          runnerTemp,
          githubApiUrl: apiUrl,
          resultsEnv: options.resultsEnv,
          timeoutMs,
          expressionContext: ctx(),
        });
        Object.assign(result, { exitCode: run.exitCode, outputs: run.outputs, stdout: run.stdout, stderr: run.stderr, annotations: run.annotations, summary: run.summary });
        Object.assign(exportedEnv, run.env);
        addedPath.unshift(...run.path);
        ok = run.exitCode === 0;
      } else {
        const script = interpolate(step.run!, ctx());
        const files = await commandFiles(join(scratch, `step-${index}`));
        const scriptPath = join(scratch, `step-${index}.sh`);
        await writeFile(scriptPath, script);
        const workdir = resolve(cwd, step['working-directory'] ?? defaults['working-directory'] ?? '.');
        const run = await spawnCollect('bash', ['--noprofile', '--norc', '-eo', 'pipefail', scriptPath], workdir, { ...processEnv, ...files }, timeoutMs);
        const written = await readCommandFiles(files);
        Object.assign(result, {
          exitCode: run.exitCode,
          outputs: written.outputs,
          stdout: run.stdout,
          stderr: run.stderr,
          annotations: parseCommands(run.stdout).annotations,
          summary: written.summary,
        });
        Object.assign(exportedEnv, written.env);
        addedPath.unshift(...written.path);
        ok = run.exitCode === 0;
      }
      result.durationMs = Math.round(performance.now() - started);
      if (result.summary) summaries.push(result.summary);
      const continueOnError = step['continue-on-error'] === true || step['continue-on-error'] === 'true';
      result.outcome = ok ? 'success' : 'failure';
      result.conclusion = ok || continueOnError ? 'success' : 'failure';
      if (result.conclusion === 'failure') status = 'failure';
      record();
    }

    contexts.env = { ...jobEnv, ...exportedEnv };
    const outputs: Record<string, string> = {};
    for (const [k, v] of Object.entries(job.outputs ?? {})) outputs[k] = interpolate(String(v), ctx());
    return { status, steps: results, outputs, summary: summaries.join('\n'), exportedEnv };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
