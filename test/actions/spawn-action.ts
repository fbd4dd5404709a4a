// Runs a built action bundle the way the GitHub runner does: INPUT_* variables (defaults from
// action.yml), the GITHUB_* command files, cwd = the workspace; then parses what it wrote.

import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

export const repoRoot = resolve(fileURLToPath(import.meta.url), '../../..');

export interface ActionResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Last value of each output written to GITHUB_OUTPUT. */
  outputs: Record<string, string>;
  summary: string;
}

/** The runner's variable name for an input: upper-cased, spaces → `_`, hyphens kept. */
export function inputVariable(name: string): string {
  return `INPUT_${name.replace(/ /g, '_').toUpperCase()}`;
}

/** Parse GITHUB_OUTPUT / GITHUB_STATE content: `name=value` lines and `name<<DELIM` heredocs. */
export function parseCommandFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delimiter] = heredoc;
      const value: string[] = [];
      for (i++; i < lines.length && lines[i] !== delimiter; i++) value.push(lines[i]!);
      if (i >= lines.length) throw new Error(`unterminated value for ${name} (delimiter ${delimiter})`);
      out[name!] = value.join('\n');
    } else if (line.includes('=')) {
      const at = line.indexOf('=');
      out[line.slice(0, at)] = line.slice(at + 1);
    } else if (line.trim()) throw new Error(`malformed command file line: ${line}`);
  }
  return out;
}

/**
 * Spawn `actions/<action>`'s bundle in `workspace`. `inputs` are what a workflow's `with:` passes;
 * inputs it omits get their action.yml default (or "" like the runner).
 */
export async function runAction(
  action: string,
  workspace: string,
  inputs: Record<string, string>,
  extraEnv: Record<string, string> = {},
): Promise<ActionResult> {
  const actionDir = join(repoRoot, 'actions', action);
  const meta = parse(await readFile(join(actionDir, 'action.yml'), 'utf8')) as {
    inputs?: Record<string, { default?: string }>;
    runs: { main: string };
  };
  const files = await mkdtemp(join(tmpdir(), 'skintwin-runner-'));
  try {
    const paths = {
      GITHUB_OUTPUT: join(files, 'output'),
      GITHUB_ENV: join(files, 'env'),
      GITHUB_STATE: join(files, 'state'),
      GITHUB_STEP_SUMMARY: join(files, 'summary'),
    };
    await Promise.all(Object.values(paths).map((p) => writeFile(p, '')));
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? files,
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: workspace,
      RUNNER_TEMP: files,
      ...paths,
      ...extraEnv,
    };
    for (const [name, spec] of Object.entries(meta.inputs ?? {})) env[inputVariable(name)] = spec.default ?? '';
    for (const [name, value] of Object.entries(inputs)) env[inputVariable(name)] = value;

    const bundle = resolve(actionDir, meta.runs.main);
    const child = spawn(process.execPath, [bundle], { cwd: workspace, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((done, fail) => {
      child.on('error', fail);
      child.on('close', done);
    });
    return {
      code,
      stdout,
      stderr,
      outputs: parseCommandFile(await readFile(paths.GITHUB_OUTPUT, 'utf8')),
      summary: await readFile(paths.GITHUB_STEP_SUMMARY, 'utf8'),
    };
  } finally {
    await rm(files, { recursive: true, force: true });
  }
}

/** A throwaway workspace holding `files` (path → content). */
export async function tempWorkspace(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'skintwin-ws-'));
  for (const [path, content] of Object.entries(files)) {
    const abs = join(dir, path);
    await mkdir(dirname(abs), { recursive: true });
    await writeFile(abs, content);
  }
  return dir;
}
