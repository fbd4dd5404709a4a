// `skintwin schema`: print the JSON Schema of pipeline.yaml (regenerates pipeline/pipeline.schema.json).

import { ExitCode } from '../../core/errors.ts';
import { renderPipelineJsonSchema } from '../../engine/index.ts';
import type { CliCommand } from '../types.ts';

export const schemaCommand: CliCommand = {
  name: 'schema',
  summary: 'print the JSON Schema of pipeline.yaml (skintwin schema > pipeline/pipeline.schema.json)',
  usage: 'skintwin schema',
  options: [{ name: 'help', type: 'boolean', description: 'show this help' }],
  async run(ctx) {
    ctx.io.stdout.write(renderPipelineJsonSchema());
    return ExitCode.ok;
  },
};
