// `skintwin synth --out <dir> [--seed n] [--size tiny|small|…] [knobs…]`: the synthetic Skin-Twin
// dataset on its own, with the same params as the `synthetic` source of fetch-dataset.

import { mkdir, rename, rm, readdir } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ConfigurationError, ExitCode } from '../../core/errors.ts';
import { siblingTempPath } from '../../core/fs.ts';
import { parseParams, type ParamSpec } from '../../core/params.ts';
import { synthesize, synthParams } from '../../data/synthetic/index.ts';
import { printJson } from '../common.ts';
import type { CliCommand } from '../types.ts';

const knobs = Object.entries(synthParams as Readonly<Record<string, ParamSpec>>)
  .map(([name, spec]) => `  --${name.padEnd(14)} ${spec.description}${spec.default !== undefined ? ` (default ${JSON.stringify(spec.default)})` : ''}`)
  .join('\n');

export const synthCommand: CliCommand = {
  name: 'synth',
  summary: 'generate the synthetic Skin-Twin dataset (images, labels, metadata, fusion table) into a folder',
  usage: 'skintwin synth --out <dir> [--<param> <value> …]',
  description:
    'Deterministic from the seed: the same params write the same bytes. The folder must not exist or be empty;\n' +
    'the dataset appears there only once it is complete. Params (the `synthetic` source params of fetch-dataset):\n' +
    knobs,
  options: [
    { name: 'out', type: 'string', value: '<dir>', description: 'folder to write the dataset to (must not exist, or be empty)' },
    { name: 'json', type: 'boolean', description: 'print the summary as JSON on stdout' },
    { name: 'help', type: 'boolean', description: 'show this help' },
  ],
  allowUnknownFlags: true,
  async run(ctx) {
    const out = ctx.args.flags.out;
    if (typeof out !== 'string' || out === '') throw new ConfigurationError('`synth` needs `--out <dir>`', { field: 'out' });
    if (ctx.args.positionals.length) throw new ConfigurationError(`\`synth\` takes no positional arguments, got \`${ctx.args.positionals[0]}\``);
    const params = parseParams(synthParams, ctx.args.extra, { what: 'synth', locate: (name) => ({ field: `--${name}` }) });
    const target = resolve(ctx.io.cwd, out);
    const existing = await readdir(target).catch(() => undefined);
    if (existing?.length) throw new ConfigurationError(`${out}: folder exists and is not empty: nothing was written`, { field: 'out' });

    // Generate next to the target and rename at the end: an interrupted run leaves nothing behind.
    const staging = siblingTempPath(target);
    await mkdir(staging, { recursive: true });
    try {
      const summary = await synthesize(staging, params, { logger: ctx.logger, ...(ctx.io.signal ? { signal: ctx.io.signal } : {}) });
      if (existing) await rm(target, { recursive: true });
      await rename(staging, target);
      ctx.logger.close();
      if (ctx.args.flags.json) printJson(ctx.io, { command: 'synth', ok: true, out: target, summary });
      else {
        ctx.io.stdout.write(
          `Wrote the synthetic Skin-Twin dataset to ${out}: ${summary.images} images (${summary.width}×${summary.height}; ` +
            `train ${summary.imagesBySplit.train}, valid ${summary.imagesBySplit.valid}, test ${summary.imagesBySplit.test}), ` +
            `${summary.fusionRows} fusion rows (${(summary.fusionNoDetectionFraction * 100).toFixed(1)}% without detection).\n`,
        );
      }
      return ExitCode.ok;
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      throw error;
    }
  },
};
