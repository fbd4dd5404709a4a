// Runs a JavaScript action the way the GitHub runner does: reads its action.yml, sets INPUT_*
// (defaults applied), writes the event payload for GITHUB_EVENT_PATH, gives it fresh
// GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STATE / GITHUB_STEP_SUMMARY / GITHUB_PATH files, spawns
// `node <main>`, and parses what it wrote back. Tests assert on the result and on the stand-ins.

import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { interpolate, type ExpressionContext, type Value } from './expressions.ts';

export interface ActionInputSpec {
  description?: string;
  required?: boolean;
  default?: string | number | boolean;
  deprecationMessage?: string;
}

export interface ActionManifest {
  name?: string;
  description?: string;
  inputs?: Record<string, ActionInputSpec | null>;
  outputs?: Record<string, { description?: string } | null>;
  runs: { using: string; main: string; pre?: string; post?: string };
}

/** Where an action's calls go: the loopback stand-ins. */
export interface StandInEndpoints {
  /** The GitHub REST stand-in's base URL (GITHUB_API_URL). Unset: an address that refuses connections. */
  githubApiUrl?: string;
  /** The results stand-in's variables (ACTIONS_RESULTS_URL, ACTIONS_RUNTIME_TOKEN, ACTIONS_CACHE_SERVICE_V2). */
  resultsEnv?: Readonly<Record<string, string>>;
}

export interface RunActionOptions extends StandInEndpoints {
  /** Folder holding action.yml. */
  actionDir: string;
  /** `with:` values; names as in action.yml. Unknown names are an error. */
  inputs?: Readonly<Record<string, string | number | boolean>>;
  /** Extra environment (step `env:`), applied over the runner's variables. */
  env?: Readonly<Record<string, string | undefined>>;
  eventName?: string;
  eventPayload?: unknown;
  /** GITHUB_WORKSPACE and the working directory (default: a fresh temp dir). */
  cwd?: string;
  repository?: string;
  sha?: string;
  ref?: string;
  token?: string;
  /** RUNNER_TEMP (default: a temp dir removed afterwards). */
  runnerTemp?: string;
  /** Kill the action after this long (default 120 s). */
  timeoutMs?: number;
  /** Node binary (default: the one running the tests). */
  node?: string;
  /** Context for evaluating `${{ }}` in input defaults (default: built from the options). */
  expressionContext?: ExpressionContext;
}

export interface Annotation {
  level: 'error' | 'warning' | 'notice';
  message: string;
  properties: Record<string, string>;
}

export interface ActionRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  outputs: Record<string, string>;
  /** Variables exported through GITHUB_ENV. */
  env: Record<string, string>;
  /** Folders added through GITHUB_PATH. */
  path: string[];
  state: Record<string, string>;
  summary: string;
  stdout: string;
  stderr: string;
  annotations: Annotation[];
  /** Values registered with ::add-mask::. */
  masks: string[];
}

const defaultRepository = 'skin-twin/skin-twin-mlops';
const defaultSha = '0123456789abcdef0123456789abcdef01234567';
/** Port 9 (discard) on loopback: nothing listens, so a forgotten stand-in fails fast instead of leaving the machine. */
export const unreachableApi = 'http://127.0.0.1:9';

export async function readActionManifest(actionDir: string): Promise<ActionManifest> {
  let text: string;
  try {
    text = await readFile(join(actionDir, 'action.yml'), 'utf8');
  } catch {
    text = await readFile(join(actionDir, 'action.yaml'), 'utf8');
  }
  const manifest = parseYaml(text) as ActionManifest;
  if (!manifest?.runs?.using || !manifest.runs.main) throw new Error(`${actionDir}/action.yml: runs.using and runs.main are required`);
  if (!/^node\d+$/.test(manifest.runs.using)) {
    throw new Error(`${actionDir}/action.yml: runs.using '${manifest.runs.using}' is not a JavaScript action`);
  }
  return manifest;
}

/** The runner's env var name for an input: upper-cased, spaces to `_`, hyphens kept. */
export function inputEnvName(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/** Parse a GITHUB_OUTPUT / GITHUB_ENV / GITHUB_STATE file: `name=value` and `name<<DELIM` blocks. */
export function parseKeyValueFile(text: string, file = 'file'): Record<string, string> {
  const result: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (line === '') continue;
    const heredoc = /^([^=]+?)<<(.+)$/.exec(line);
    const eq = line.indexOf('=');
    if (heredoc && (eq < 0 || eq > line.indexOf('<<'))) {
      const [, name, delimiter] = heredoc as unknown as [string, string, string];
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]!);
      if (i >= lines.length) throw new Error(`${file}: no closing delimiter ${delimiter} for ${name}`);
      result[name] = value.join('\n');
    } else if (eq > 0) {
      result[line.slice(0, eq)] = line.slice(eq + 1);
    } else {
      throw new Error(`${file}: invalid line ${JSON.stringify(line)}`);
    }
  }
  return result;
}

function unescapeData(s: string): string {
  return s.replace(/%0D/g, '\r').replace(/%0A/g, '\n').replace(/%25/g, '%');
}

function unescapeProperty(s: string): string {
  return unescapeData(s).replace(/%3A/g, ':').replace(/%2C/g, ',');
}

/** Parse workflow commands (`::error file=a::msg`, `::add-mask::v`) from an action's stdout. */
export function parseCommands(stdout: string): { annotations: Annotation[]; masks: string[] } {
  const annotations: Annotation[] = [];
  const masks: string[] = [];
  for (const line of stdout.split(/\r?\n/)) {
    const m = /^::([a-z-]+)(?: ([^:]*))?::(.*)$/.exec(line);
    if (!m) continue;
    const [, command, props, data] = m as unknown as [string, string, string | undefined, string];
    if (command === 'add-mask') masks.push(unescapeData(data));
    if (command !== 'error' && command !== 'warning' && command !== 'notice') continue;
    const properties: Record<string, string> = {};
    for (const part of (props ?? '').split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) properties[part.slice(0, eq).trim()] = unescapeProperty(part.slice(eq + 1));
    }
    annotations.push({ level: command, message: unescapeData(data), properties });
  }
  return { annotations, masks };
}

/** What the runner derives from the repository and ref, for both the `github` context and GITHUB_* variables. */
function refFacts(repository: string, ref: string): { owner: string; refName: string; refType: 'tag' | 'branch' } {
  return {
    owner: repository.split('/')[0] ?? '',
    refName: ref.replace(/^refs\/(heads|tags)\//, '').replace(/^refs\/pull\/(\d+)\/merge$/, '$1/merge'),
    refType: ref.startsWith('refs/tags/') ? 'tag' : 'branch',
  };
}

/** The `github` context an action or step sees, from the run's options. */
export function githubContext(o: {
  eventName: string;
  eventPayload: unknown;
  repository: string;
  sha: string;
  ref: string;
  token: string;
  workspace: string;
  apiUrl: string;
  job?: string;
  workflow?: string;
}): Record<string, Value> {
  const { owner, refName, refType } = refFacts(o.repository, o.ref);
  const payload = (o.eventPayload ?? {}) as Record<string, Value>;
  const pr = payload.pull_request as Record<string, Record<string, Value>> | undefined;
  return {
    event: payload,
    event_name: o.eventName,
    repository: o.repository,
    repository_owner: owner,
    sha: o.sha,
    ref: o.ref,
    ref_name: refName,
    ref_type: refType,
    head_ref: (pr?.head?.ref as string | undefined) ?? '',
    base_ref: (pr?.base?.ref as string | undefined) ?? '',
    actor: ((payload.sender as Record<string, Value> | undefined)?.login as string | undefined) ?? 'octocat',
    token: o.token,
    workspace: o.workspace,
    server_url: 'https://github.com',
    api_url: o.apiUrl,
    graphql_url: `${o.apiUrl}/graphql`,
    run_id: '1658821493',
    run_number: '7',
    run_attempt: '1',
    job: o.job ?? 'job',
    workflow: o.workflow ?? 'workflow',
    action: '__run',
  };
}

/** The variables the runner sets for every step. */
export function runnerEnv(o: {
  eventName: string;
  eventPath: string;
  repository: string;
  sha: string;
  ref: string;
  token: string;
  workspace: string;
  runnerTemp: string;
  apiUrl: string;
  job?: string;
  workflow?: string;
}): Record<string, string> {
  const inherited: Record<string, string> = {};
  // A runner's step gets a clean environment: only what a shell and node need is inherited.
  for (const name of ['PATH', 'HOME', 'LANG', 'TZ', 'SYSTEMROOT']) {
    const v = process.env[name];
    if (v !== undefined) inherited[name] = v;
  }
  const { owner, refName, refType } = refFacts(o.repository, o.ref);
  return {
    ...inherited,
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_REPOSITORY: o.repository,
    GITHUB_REPOSITORY_OWNER: owner,
    GITHUB_EVENT_NAME: o.eventName,
    GITHUB_EVENT_PATH: o.eventPath,
    GITHUB_SHA: o.sha,
    GITHUB_REF: o.ref,
    GITHUB_REF_NAME: refName,
    GITHUB_REF_TYPE: refType,
    GITHUB_TOKEN: o.token,
    GITHUB_WORKSPACE: o.workspace,
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_API_URL: o.apiUrl,
    GITHUB_GRAPHQL_URL: `${o.apiUrl}/graphql`,
    GITHUB_RUN_ID: '1658821493',
    GITHUB_RUN_NUMBER: '7',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_ACTOR: 'octocat',
    GITHUB_JOB: o.job ?? 'job',
    GITHUB_WORKFLOW: o.workflow ?? 'workflow',
    RUNNER_OS: 'Linux',
    RUNNER_ARCH: 'X64',
    RUNNER_NAME: 'loopback-runner',
    RUNNER_ENVIRONMENT: 'self-hosted',
    RUNNER_TEMP: o.runnerTemp,
    RUNNER_TOOL_CACHE: join(o.runnerTemp, 'tool-cache'),
  };
}

export interface SpawnResult {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Spawn a process, collect its output, kill it after `timeoutMs`. */
export function spawnCollect(command: string, args: string[], cwd: string, env: Record<string, string>, timeoutMs: number): Promise<SpawnResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (exitCode, signal) => {
      clearTimeout(timer);
      resolvePromise({ exitCode, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') });
    });
  });
}

/** Fresh, empty runner command files in `dir`. */
export async function commandFiles(dir: string): Promise<Record<'GITHUB_OUTPUT' | 'GITHUB_ENV' | 'GITHUB_STATE' | 'GITHUB_STEP_SUMMARY' | 'GITHUB_PATH', string>> {
  await mkdir(dir, { recursive: true });
  const files = {
    GITHUB_OUTPUT: join(dir, 'output'),
    GITHUB_ENV: join(dir, 'env'),
    GITHUB_STATE: join(dir, 'state'),
    GITHUB_STEP_SUMMARY: join(dir, 'step-summary.md'),
    GITHUB_PATH: join(dir, 'path'),
  };
  await Promise.all(Object.values(files).map((f) => writeFile(f, '')));
  return files;
}

export async function readCommandFiles(files: Awaited<ReturnType<typeof commandFiles>>) {
  const [output, env, state, summary, path] = await Promise.all(
    [files.GITHUB_OUTPUT, files.GITHUB_ENV, files.GITHUB_STATE, files.GITHUB_STEP_SUMMARY, files.GITHUB_PATH].map((f) => readFile(f, 'utf8')),
  );
  return {
    outputs: parseKeyValueFile(output!, 'GITHUB_OUTPUT'),
    env: parseKeyValueFile(env!, 'GITHUB_ENV'),
    state: parseKeyValueFile(state!, 'GITHUB_STATE'),
    summary: summary!,
    path: path!.split(/\r?\n/).filter(Boolean),
  };
}

/** Resolve inputs against action.yml: reject unknown names, apply defaults (evaluating `${{ }}`). */
export function resolveInputs(
  manifest: ActionManifest,
  given: Readonly<Record<string, string | number | boolean>>,
  ctx: ExpressionContext,
  where: string,
): Record<string, string> {
  const specs = manifest.inputs ?? {};
  const known = new Map(Object.keys(specs).map((k) => [k.toLowerCase(), k]));
  const unknown = Object.keys(given).filter((k) => !known.has(k.toLowerCase()));
  if (unknown.length) {
    throw new Error(`${where}: unexpected input(s) ${unknown.map((u) => `'${u}'`).join(', ')}; valid inputs are ${[...known.values()].join(', ') || '(none)'}`);
  }
  const values: Record<string, string> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const supplied = Object.entries(given).find(([k]) => k.toLowerCase() === name.toLowerCase());
    if (supplied) values[name] = String(supplied[1]);
    else if (spec?.default !== undefined) values[name] = interpolate(String(spec.default), ctx);
  }
  return values;
}

export async function runAction(options: RunActionOptions): Promise<ActionRun> {
  const actionDir = resolve(options.actionDir);
  const manifest = await readActionManifest(actionDir);
  const scratch = await mkdtemp(join(tmpdir(), 'action-run-'));
  try {
    const workspace = options.cwd ? resolve(options.cwd) : join(scratch, 'workspace');
    const runnerTemp = options.runnerTemp ?? join(scratch, 'runner-temp');
    await mkdir(workspace, { recursive: true });
    await mkdir(runnerTemp, { recursive: true });
    const eventName = options.eventName ?? 'push';
    const eventPath = join(scratch, 'event.json');
    await writeFile(eventPath, JSON.stringify(options.eventPayload ?? {}));
    const files = await commandFiles(join(scratch, 'files'));
    const repository = options.repository ?? defaultRepository;
    const sha = options.sha ?? defaultSha;
    const ref = options.ref ?? 'refs/heads/main';
    const token = options.token ?? 'ghs_loopbackTestToken000000000000000000';
    const apiUrl = (options.githubApiUrl ?? unreachableApi).replace(/\/$/, '');

    const ctx: ExpressionContext = options.expressionContext ?? {
      jobStatus: 'success',
      contexts: {
        github: githubContext({ eventName, eventPayload: options.eventPayload, repository, sha, ref, token, workspace, apiUrl }),
        env: {},
        runner: { os: 'Linux', arch: 'X64', temp: runnerTemp },
      },
    };
    const inputs = resolveInputs(manifest, options.inputs ?? {}, ctx, `${actionDir}/action.yml`);
    const env: Record<string, string> = {
      ...runnerEnv({ eventName, eventPath, repository, sha, ref, token, workspace, runnerTemp, apiUrl }),
      ...options.resultsEnv,
      ...files,
    };
    for (const [name, value] of Object.entries(inputs)) env[inputEnvName(name)] = value;
    for (const [name, value] of Object.entries(options.env ?? {})) {
      if (value === undefined) delete env[name];
      else env[name] = value;
    }
    const main = resolve(actionDir, manifest.runs.main);
    const run = await spawnCollect(options.node ?? process.execPath, [main], workspace, env, options.timeoutMs ?? 120_000);
    const written = await readCommandFiles(files);
    return { ...run, ...written, ...parseCommands(run.stdout) };
  } finally {
    await rm(scratch, { recursive: true, force: true });
  }
}
