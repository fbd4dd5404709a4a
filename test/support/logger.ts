// A Logger that records everything, for assertions on what a stage told the user.

import { maskSecrets, type Logger, type Progress } from '../../pipeline/core/logger.ts';

export interface RecordedLine {
  level: 'debug' | 'info' | 'warn' | 'error' | 'group';
  message: string;
}

export class RecordingLogger implements Logger {
  readonly lines: RecordedLine[] = [];
  readonly secrets = new Set<string>();
  readonly progressDone: { label: string; done: number; total: number | undefined }[] = [];

  private push(level: RecordedLine['level'], message: string): void {
    this.lines.push({ level, message: maskSecrets(message, this.secrets) });
  }
  debug(message: string): void {
    this.push('debug', message);
  }
  info(message: string): void {
    this.push('info', message);
  }
  warn(message: string): void {
    this.push('warn', message);
  }
  error(message: string): void {
    this.push('error', message);
  }
  async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    this.push('group', title);
    return fn();
  }
  progress(label: string, total?: number): Progress {
    let done = 0;
    return {
      tick: (n = 1) => void (done += n),
      set: (n) => void (done = n),
      done: () => void this.progressDone.push({ label, done, total }),
    };
  }
  secret(value: string): void {
    this.secrets.add(value);
  }
  /** Everything logged at these levels, one string per line. */
  messages(...levels: RecordedLine['level'][]): string[] {
    return this.lines.filter((l) => !levels.length || levels.includes(l.level)).map((l) => l.message);
  }
}
