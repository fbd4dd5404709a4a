// `skintwin status [stage…]`: each stage up to date or stale, with the reason.

import { ExitCode } from '../../core/errors.ts';
import { describeReason, status } from '../../engine/index.ts';
import { loadFromFlags, PIPELINE_OPTIONS, printJson, renderStatus } from '../common.ts';
import type { CliCommand } from '../types.ts';

export const statusCommand: CliCommand = {
  name: 'status',
  summary: 'show each stage as up to date or stale, with the reason (dep, param, code, missing out)',
  usage: 'skintwin status [<stage>…] [options]',
  description: 'Reads pipeline.yaml, pipeline.lock and the workspace; changes nothing (only the hash cache is refreshed).',
  options: PIPELINE_OPTIONS,
  async run(ctx) {
    const p = await loadFromFlags(ctx);
    const stages = await status(p, {
      targets: ctx.args.positionals,
      logger: ctx.logger,
      env: ctx.io.env,
      ...(ctx.io.signal ? { signal: ctx.io.signal } : {}),
    });
    if (ctx.args.flags.json) {
      printJson(ctx.io, {
        command: 'status',
        ok: true,
        exitCode: ExitCode.ok,
        stages: stages.map((s) => ({ ...s, why: s.reasons.map(describeReason) })),
      });
    } else ctx.io.stdout.write(renderStatus(stages));
    return ExitCode.ok;
  },
};
