// `skintwin run <stage> [--<param> <value> …]`: run one stage now, whatever the lock says,
// with param overrides under the same kebab-case names as in pipeline.yaml and action inputs.

import { ConfigurationError } from '../../core/errors.ts';
import { loadFromFlags, PIPELINE_OPTIONS, reproAndReport } from '../common.ts';
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
    return reproAndReport(ctx, 'run', p, { targets: [stage], force: true, upstream: false });
  },
};
