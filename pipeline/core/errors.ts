// Typed errors: user mistakes (bad config, bad input) are told apart from bugs by `name`,
// and carry where the mistake is (file, line, field) so every message can point at it.

export interface ErrorLocation {
  /** File the mistake is in, relative to the repository root where possible. */
  file?: string;
  /** 1-based line in that file. */
  line?: number;
  /** 1-based column in that file. */
  column?: number;
  /** Field, key, param or column name at fault. */
  field?: string;
  /** A suggestion: "did you mean `epochs`?", the list of known values, … */
  hint?: string;
}

function formatLocation(loc: ErrorLocation): string {
  if (!loc.file) return '';
  let where = loc.file;
  if (loc.line !== undefined) where += `:${loc.line}`;
  if (loc.line !== undefined && loc.column !== undefined) where += `:${loc.column}`;
  return `${where}: `;
}

/** A mistake the user can fix: bad pipeline definition, bad params, bad input data. Exit code 2. */
export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
  readonly location: ErrorLocation;
  /** Further errors found in the same pass: every bad field is reported at once. */
  readonly more: ConfigurationError[];

  constructor(message: string, location: ErrorLocation = {}, more: ConfigurationError[] = []) {
    super(formatLocation(location) + message + (location.hint ? ` (${location.hint})` : ''));
    this.location = location;
    this.more = more;
  }

  /** One error carrying a list of problems, each on its own line. */
  static all(errors: ConfigurationError[]): ConfigurationError {
    if (errors.length === 1) return errors[0]!;
    const combined = new ConfigurationError(
      `${errors.length} problems:\n` + errors.map((e) => `  - ${e.message}`).join('\n'),
      {},
      errors,
    );
    return combined;
  }
}

/** Bad data found while a stage runs (corrupt archive, hash mismatch, wrong columns). Exit code 1. */
export class DataError extends Error {
  override name = 'DataError';
  readonly location: ErrorLocation;
  constructor(message: string, location: ErrorLocation = {}) {
    super(formatLocation(location) + message + (location.hint ? ` (${location.hint})` : ''));
    this.location = location;
  }
}

/** A stage kind or option that is declared but not built yet: fails loudly, never silently. */
export class NotImplementedError extends Error {
  override name = 'NotImplementedError';
}

/** The run was stopped (Ctrl-C, job cancelled). Exit code 130. */
export class InterruptedError extends Error {
  override name = 'InterruptedError';
  constructor(message = 'interrupted') {
    super(message);
  }
}

/** Exit codes shared by the CLI and the actions (documented in the README). */
export const ExitCode = {
  ok: 0,
  failed: 1,
  usage: 2,
  interrupted: 130,
} as const;

export function exitCodeFor(error: unknown): number {
  if (error instanceof Error) {
    if (error.name === 'ConfigurationError' || error.name === 'NotImplementedError') return ExitCode.usage;
    if (error.name === 'InterruptedError' || error.name === 'AbortError') return ExitCode.interrupted;
  }
  return ExitCode.failed;
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
