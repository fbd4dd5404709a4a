// `skintwin`: the one CLI over the pipeline. `main` is pure over its CliIO so tests run it
// in-process; entry.ts wires it to the real process (argv, streams, signals, exit code).

import { ExitCode } from '../core/errors.ts';
import { suggestion } from '../core/suggest.ts';
import { parseArgs } from './args.ts';
import { reportError } from './common.ts';
import { commands as defaultCommands } from './commands/index.ts';
import { ConsoleLogger } from './console-logger.ts';
import type { CliCommand, CliIO } from './types.ts';

export type { CliIO, CliCommand } from './types.ts';

const EXIT_CODES = `Exit codes:
  0    success
  1    a stage failed (its previous outs and pipeline.lock entry are unchanged)
  2    usage or pipeline definition error (nothing was changed)
  130  interrupted (Ctrl-C / SIGTERM); running stages were stopped and cleaned up
`;

function globalHelp(commands: readonly CliCommand[]): string {
  const width = Math.max(...commands.map((c) => c.name.length));
  return (
    'Usage: skintwin <command> [options]\n\n' +
    'Runs the Skin-Twin pipeline defined in pipeline/pipeline.yaml.\n\n' +
    'Commands:\n' +
    commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n') +
    '\n\nRun `skintwin <command> --help` for its options.\n\n' +
    EXIT_CODES
  );
}

function commandHelp(command: CliCommand): string {
  const label = (o: CliCommand['options'][number]): string => `--${o.name}${o.value ? ` ${o.value}` : ''}`;
  const width = Math.max(...command.options.map((o) => label(o).length), 0);
  return (
    `Usage: ${command.usage}\n\n${command.summary.charAt(0).toUpperCase()}${command.summary.slice(1)}.\n` +
    (command.description ? `\n${command.description}\n` : '') +
    (command.options.length ? `\nOptions:\n${command.options.map((o) => `  ${label(o).padEnd(width)}  ${o.description}`).join('\n')}\n` : '') +
    `\n${EXIT_CODES}`
  );
}

export async function main(argv: readonly string[], io: CliIO, commands: readonly CliCommand[] = defaultCommands): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(globalHelp(commands));
    return name === undefined ? ExitCode.usage : ExitCode.ok;
  }
  const command = commands.find((c) => c.name === name);
  if (!command) {
    const hint = suggestion(name, commands.map((c) => c.name));
    io.stderr.write(`skintwin: unknown command \`${name}\`${hint ? ` (${hint})` : ''}\nRun \`skintwin --help\` for the list.\n`);
    return ExitCode.usage;
  }
  const json = rest.includes('--json');
  let args;
  try {
    args = parseArgs(rest, command.options, command.allowUnknownFlags ?? false);
  } catch (error) {
    const code = reportError(io, command.name, error, json);
    if (!json) io.stderr.write(`Run \`skintwin ${command.name} --help\` for usage.\n`);
    return code;
  }
  if (args.flags.help) {
    io.stdout.write(commandHelp(command));
    return ExitCode.ok;
  }
  const logger = new ConsoleLogger({
    write: (text) => io.stderr.write(text),
    isTTY: io.isTTY,
    env: io.env,
    ...(io.columns ? { columns: io.columns } : {}),
    ...(io.now ? { now: io.now } : {}),
  });
  let outcome: { code: number } | { error: unknown };
  try {
    outcome = { code: await command.run({ io, args, logger }) };
  } catch (error) {
    outcome = { error };
  }
  // Closed before the error is printed, so a live progress line does not swallow it.
  logger.close();
  return 'code' in outcome ? outcome.code : reportError(io, command.name, outcome.error, args.flags.json === true);
}

