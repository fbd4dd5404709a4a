// The logging/progress port. The CLI renders it for a terminal or for CI logs, the actions
// render it through @actions/core, tests record it. Stages only ever see this interface.

export interface Progress {
  /** Add `n` (default 1) finished items. */
  tick(n?: number): void;
  /** Set the number of finished items. */
  set(done: number): void;
  /** Finish the bar (prints a final line with the total and the rate). */
  done(): void;
}

export interface Logger {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
  /** Run `fn` inside a collapsible section (`::group::` on GitHub, a heading in a terminal). */
  group<T>(title: string, fn: () => Promise<T>): Promise<T>;
  /** A progress reporter for long work: items, rate and ETA. `total` may be unknown. */
  progress(label: string, total?: number, unit?: string): Progress;
  /** Register a value that must never appear in logs (tokens, keys). */
  secret(value: string): void;
}

/** Replace every registered secret in `text` by `***`. Shared by all logger implementations. */
export function maskSecrets(text: string, secrets: ReadonlySet<string>): string {
  let masked = text;
  for (const s of secrets) if (s.length >= 4) masked = masked.split(s).join('***');
  return masked;
}
