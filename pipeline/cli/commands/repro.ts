// `skintwin repro [stage…]`: bring stages (default: all) and their upstream stages up to date.

import { loadFromFlags, PIPELINE_OPTIONS, reproAndReport } from '../common.ts';
import type { CliCommand } from '../types.ts';

export const reproCommand: CliCommand = {
  name: 'repro',
  summary: 'run the stages whose inputs changed, in dependency order, restoring from the cache where possible',
  usage: 'skintwin repro [<stage>…] [options]',
  description:
    'Brings the named stages (default: every stage) and the stages they depend on up to date. A stage is skipped\n' +
    'when its deps, params, code and outs match pipeline.lock; restored when the cache holds outs for exactly its\n' +
    'inputs; run otherwise. Independent stages run concurrently (--jobs).',
  options: PIPELINE_OPTIONS,
  async run(ctx) {
    const p = await loadFromFlags(ctx);
    return reproAndReport(ctx, 'repro', p, { targets: ctx.args.positionals, force: ctx.args.flags.force === true });
  },
};
