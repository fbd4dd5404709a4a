// What the pipeline commands (repro, status, run) share: their options, finding the repository
// and pipeline.yaml, and printing reports for people (tables) or programs (--json).

import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { ConfigurationError, errorMessage, ExitCode, exitCodeFor } from '../core/errors.ts';
import { DEFAULT_PIPELINE_FILE, describeReasons, loadPipeline, repro } from '../engine/index.ts';
import type { LoadOptions, Pipeline, ReproReport, RunOptions, StageRun, StageStatus } from '../engine/types.ts';
import { formatDuration } from './console-logger.ts';
import type { CliIO, CliOption, CommandContext } from './types.ts';

export const PIPELINE_OPTIONS: readonly CliOption[] = [
  { name: 'config', type: 'string', value: '<path>', description: `pipeline definition (default: ${DEFAULT_PIPELINE_FILE} in this repository)` },
  { name: 'jobs', type: 'string', value: '<n>', description: 'how many independent stages may run at once (default: settings.jobs, else 2)' },
  { name: 'dry-run', type: 'boolean', description: 'say what would happen, change nothing' },
  { name: 'force', type: 'boolean', description: 'run the stages even when they are up to date' },
  { name: 'json', type: 'boolean', description: 'print one JSON document on stdout instead of text' },
  { name: 'help', type: 'boolean', description: 'show this help' },
];

function hasMarker(dir: string): boolean {
  return existsSync(join(dir, 'package.json')) || existsSync(join(dir, '.git'));
}

/** The repository root and the pipeline file (relative to it) from `--config` or the working directory. */
export function locatePipeline(io: CliIO, config: string | undefined): { root: string; file: string } {
  if (config) {
    const abs = resolve(io.cwd, config);
    if (!existsSync(abs)) throw new ConfigurationError(`pipeline file not found: ${config}`, { field: 'config' });
    for (let dir = dirname(abs); ; dir = dirname(dir)) {
      if (hasMarker(dir)) return { root: dir, file: relative(dir, abs).split('\\').join('/') };
      if (dirname(dir) === dir) break;
    }
    return { root: io.cwd, file: relative(io.cwd, abs).split('\\').join('/') };
  }
  for (let dir = resolve(io.cwd); ; dir = dirname(dir)) {
    if (existsSync(join(dir, DEFAULT_PIPELINE_FILE))) return { root: dir, file: DEFAULT_PIPELINE_FILE };
    if (dirname(dir) === dir) break;
  }
  throw new ConfigurationError(`no ${DEFAULT_PIPELINE_FILE} in ${io.cwd} or its parents`, { hint: 'run inside the repository, or pass --config <path>' });
}

function jobsFlag(ctx: CommandContext): number | undefined {
  const raw = ctx.args.flags.jobs;
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new ConfigurationError(`option \`--jobs\` must be an integer ≥ 1, got \`${String(raw)}\``);
  return n;
}

export async function loadFromFlags(ctx: CommandContext, extra: Partial<LoadOptions> = {}): Promise<Pipeline> {
  const config = typeof ctx.args.flags.config === 'string' ? ctx.args.flags.config : undefined;
  const where = locatePipeline(ctx.io, config);
  return loadPipeline({ ...where, ...extra });
}

/**
 * Run `repro` with what `repro` and `run` share (--dry-run, --jobs, the logger, env, signal), print
 * the report as a table or JSON, and return the exit code.
 */
export async function reproAndReport(
  ctx: CommandContext,
  command: string,
  p: Pipeline,
  opts: Pick<RunOptions, 'targets' | 'force' | 'upstream'>,
): Promise<number> {
  const jobs = jobsFlag(ctx);
  const report = await repro(p, {
    ...opts,
    dryRun: ctx.args.flags['dry-run'] === true,
    logger: ctx.logger,
    env: ctx.io.env,
    ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
    ...(jobs ? { jobs } : {}),
  });
  const code = report.ok ? ExitCode.ok : ExitCode.failed;
  if (ctx.args.flags.json) printJson(ctx.io, { command, exitCode: code, ...report });
  else ctx.io.stdout.write(renderRepro(report));
  return code;
}

export function printJson(io: CliIO, value: unknown): void {
  io.stdout.write(JSON.stringify(value, null, 2) + '\n');
}

function table(rows: string[][]): string {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n') + '\n';
}

const ACTION_TEXT: Record<string, string> = {
  ran: 'ran',
  skipped: 'skipped',
  restored: 'restored',
  'would-run': 'would run',
  'would-restore': 'would restore',
  failed: 'FAILED',
  'not-run': 'not run',
};

/** The WHY column: a failure's message, or the stage's reasons (a stage not run names the upstream stages that failed). */
function whyText(s: StageRun): string {
  if (s.action === 'failed') return s.error ?? 'failed';
  const why = describeReasons(s.reasons);
  return s.action === 'not-run' ? why.replaceAll('is stale', 'failed') : why;
}

/** The end-of-run report: each stage's action with its reasons, then where every result is. */
export function renderRepro(report: ReproReport): string {
  const rows = [['STAGE', 'KIND', 'ACTION', 'TIME', 'WHY']];
  for (const s of report.stages) {
    rows.push([s.stage, s.kind, ACTION_TEXT[s.action] ?? s.action, s.durationMs ? formatDuration(s.durationMs) : '', whyText(s)]);
  }
  let text = (report.dryRun ? 'Dry run: nothing was changed.\n\n' : '') + table(rows);
  const results = report.stages.filter((s) => ['ran', 'skipped', 'restored'].includes(s.action) && (s.outs.length || s.reports.length));
  if (results.length) {
    text += '\nResults:\n';
    for (const s of results) {
      text += `  ${s.stage}: ${s.outs.join(', ') || '(no outs)'}\n`;
      const reports = s.reports.filter((r) => !s.outs.includes(r));
      if (reports.length) text += `    reports: ${reports.join(', ')}\n`;
    }
  }
  const failed = report.stages.filter((s) => s.action === 'failed');
  if (failed.length) text += `\n${failed.length} stage${failed.length > 1 ? 's' : ''} failed; previous outs and pipeline.lock are unchanged for ${failed.length > 1 ? 'them' : 'it'}.\n`;
  return text;
}

export function renderStatus(stages: readonly StageStatus[]): string {
  const rows = [['STAGE', 'KIND', 'STATE', 'WHY']];
  for (const s of stages) {
    const state = s.state === 'up-to-date' ? 'up to date' : s.state === 'restorable' ? 'stale (restorable from cache)' : 'stale';
    rows.push([s.stage, s.kind, state, s.state === 'up-to-date' ? '' : describeReasons(s.reasons)]);
  }
  const stale = stages.filter((s) => s.state !== 'up-to-date').length;
  return table(rows) + (stale ? `\n${stale} stale: run \`skintwin repro\` to bring them up to date.\n` : '\nEverything is up to date.\n');
}

/** A failure as text on stderr, or as the one JSON document on stdout with --json. */
export function reportError(io: CliIO, command: string, error: unknown, json: boolean): number {
  const code = exitCodeFor(error);
  const name = error instanceof Error ? error.name : 'Error';
  if (json) printJson(io, { command, ok: false, exitCode: code, error: { name, message: errorMessage(error) } });
  else io.stderr.write(`skintwin ${command}: ${name === 'InterruptedError' ? '' : 'error: '}${errorMessage(error)}\n`);
  return code;
}
