// The CLI's command table. A new command is a module in this folder exporting a CliCommand,
// added to this list; `skintwin --help` and dispatch pick it up.

import type { CliCommand } from '../types.ts';
import { metricsCommand } from './metrics.ts';
import { predictCommand } from './predict.ts';
import { publishEvaluationCommand } from './publish-evaluation.ts';
import { reproCommand } from './repro.ts';
import { runCommand } from './run.ts';
import { schemaCommand } from './schema.ts';
import { statusCommand } from './status.ts';
import { synthCommand } from './synth.ts';
import { trainCommand } from './train.ts';

export const commands: readonly CliCommand[] = [
  reproCommand,
  statusCommand,
  runCommand,
  synthCommand,
  trainCommand,
  predictCommand,
  publishEvaluationCommand,
  metricsCommand,
  schemaCommand,
];
