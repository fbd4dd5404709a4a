// `skintwin run <stage> [--<param> <value> …]`: run one stage now, whatever the lock says,
// with param overrides under the same kebab-case names as in pipeline.yaml and action inputs.

import { ConfigurationError, ExitCode } from '../../core/errors.ts';
import { repro } from '../../engine/index.ts';
import { jobsFlag, loadFromFlags, PIPELINE_OPTIONS, printJson, renderRepro } from '../common.ts';
import type { CliCommand } from '../types.ts';

export const runCommand: CliCommand = {
  name: 'run',
  summary: "run one stage regardless of the lock (its deps must exist), with param overrides as flags",
  usage: 'skintwin run <stage> [--<param> <value> …] [options]',
  description:
    'Runs the stage even when it is up to date, without its upstream stages. Any --<param> <value> overrides\n' +
    "that stage's param for this run (e.g. `skintwin run train-skin-type --epochs 5`); the lock records what ran.",
  options: PIPELINE_OPTIONS,
  allowUnknownFlags: true,
  async run(ctx) {
    const [stage, ...rest] = ctx.args.positionals;
    if (!stage) throw new ConfigurationError('`run` needs a stage name', { hint: 'skintwin run <stage>' });
    if (rest.length) throw new ConfigurationError(`\`run\` takes one stage, got ${ctx.args.positionals.length}`, { hint: 'use `skintwin repro a b` for several' });
    const overrides = Object.keys(ctx.args.extra).length ? { [stage]: ctx.args.extra } : {};
    const p = await loadFromFlags(ctx, { overrides });
    const jobs = jobsFlag(ctx);
    const report = await repro(p, {
      targets: [stage],
      force: true,
      upstream: false,
      dryRun: ctx.args.flags['dry-run'] === true,
      logger: ctx.logger,
      env: ctx.io.env,
      ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
      ...(jobs ? { jobs } : {}),
    });
    const code = report.ok ? ExitCode.ok : ExitCode.failed;
    if (ctx.args.flags.json) printJson(ctx.io, { command: 'run', exitCode: code, ...report });
    else ctx.io.stdout.write(renderRepro(report));
    return code;
  },
};
