// What a CLI command is: the table in commands/index.ts lists them; `main` parses, dispatches
// and turns errors into exit codes. Commands write results to stdout, logs go to stderr.

import type { ConsoleLogger } from './console-logger.ts';

export interface Writer {
  write(text: string): unknown;
}

/** Everything the CLI touches of its process, so tests run it in-process. */
export interface CliIO {
  stdout: Writer;
  stderr: Writer;
  env: Readonly<Record<string, string | undefined>>;
  cwd: string;
  /** Whether stderr (where progress goes) is a terminal. */
  isTTY: boolean;
  columns?: number;
  /** Aborted on Ctrl-C / SIGTERM. */
  signal?: AbortSignal;
  /** Milliseconds clock for progress rates (injected in tests). */
  now?: () => number;
}

export interface CliOption {
  /** kebab-case flag name without the dashes. */
  name: string;
  type: 'boolean' | 'string';
  description: string;
  /** Placeholder shown in help for string options, e.g. `<path>`. */
  value?: string;
}

export interface ParsedArgs {
  positionals: string[];
  flags: Record<string, string | boolean>;
  /** `--<name> value` flags not declared by the command (only with `allowUnknownFlags`). */
  extra: Record<string, string>;
}

export interface CommandContext {
  io: CliIO;
  args: ParsedArgs;
  logger: ConsoleLogger;
}

export interface CliCommand {
  name: string;
  /** One line, for `skintwin --help`. */
  summary: string;
  /** e.g. `skintwin run <stage> [--<param> <value> …] [options]`. */
  usage: string;
  /** Longer text for `skintwin <name> --help`. */
  description?: string;
  options: readonly CliOption[];
  /** Accept undeclared `--<name> <value>` flags (stage param overrides). */
  allowUnknownFlags?: boolean;
  /** Resolves to the exit code. Throws ConfigurationError for usage mistakes (exit 2). */
  run(ctx: CommandContext): Promise<number>;
}
