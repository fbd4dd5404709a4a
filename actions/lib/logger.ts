// The pipeline's Logger rendered through @actions/core: workflow commands for levels and groups,
// plain periodic progress lines (no ANSI in job logs), and secrets masked by the runner and here.

import * as core from '@actions/core';
import { maskSecrets, type Logger, type Progress } from '../../pipeline/core/logger.ts';

export interface ActionsLoggerOptions {
  /** Milliseconds clock; injected so progress throttling is testable without sleeping. */
  now?: () => number;
  /** Minimum time between two progress lines for the same bar. */
  progressIntervalMs?: number;
}

export class ActionsLogger implements Logger {
  private readonly secrets = new Set<string>();
  private readonly now: () => number;
  private readonly interval: number;
  private groupDepth = 0;
  /** Error messages already shown as annotations, so the final failure is not annotated twice. */
  readonly errorsShown = new Set<string>();

  constructor(options: ActionsLoggerOptions = {}) {
    this.now = options.now ?? (() => performance.now());
    this.interval = options.progressIntervalMs ?? 10_000;
  }

  private mask(message: string): string {
    return maskSecrets(message, this.secrets);
  }

  debug(message: string): void {
    core.debug(this.mask(message));
  }
  info(message: string): void {
    core.info(this.mask(message));
  }
  warn(message: string): void {
    core.warning(this.mask(message));
  }
  error(message: string): void {
    const masked = this.mask(message);
    this.errorsShown.add(masked);
    core.error(masked);
  }

  /** Fail the step with `message`: exit code 1 and one error annotation. */
  fail(message: string): void {
    const masked = this.mask(message);
    if (this.errorsShown.has(masked)) process.exitCode = 1;
    else core.setFailed(masked);
  }

  async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    // The runner does not nest groups: an inner ::group:: would close the outer one.
    if (this.groupDepth > 0) {
      core.info(`── ${this.mask(title)}`);
      return fn();
    }
    this.groupDepth++;
    try {
      return await core.group(this.mask(title), fn);
    } finally {
      this.groupDepth--;
    }
  }

  progress(label: string, total?: number, unit = 'items'): Progress {
    const started = this.now();
    let done = 0;
    let lastLine = started;
    let lastTenth = 0;
    const elapsedSeconds = (): number => (this.now() - started) / 1000;
    const rate = (): string => {
      const seconds = elapsedSeconds();
      return seconds > 0 ? `${(done / seconds).toFixed(1)} ${unit}/s` : `– ${unit}/s`;
    };
    const line = (): string => {
      const head = total !== undefined ? `${done}/${total} ${unit}` : `${done} ${unit}`;
      let text = `${this.mask(label)}: ${head}, ${rate()}`;
      if (total !== undefined && done > 0 && done < total) {
        text += `, ETA ${Math.ceil(((total - done) * elapsedSeconds()) / done)} s`;
      }
      return text;
    };
    // A line every tenth of the work or every interval, whichever comes first: readable logs
    // of bounded length for any size of job.
    const maybePrint = (): void => {
      const tenth = total ? Math.floor((done * 10) / total) : 0;
      const t = this.now();
      if ((total && tenth > lastTenth) || t - lastLine >= this.interval) {
        lastTenth = Math.max(lastTenth, tenth);
        lastLine = t;
        core.info(line());
      }
    };
    let finished = false;
    return {
      tick: (n = 1) => {
        done += n;
        maybePrint();
      },
      set: (n) => {
        done = n;
        maybePrint();
      },
      done: () => {
        if (finished) return;
        finished = true;
        core.info(`${this.mask(label)}: ${done} ${unit} in ${elapsedSeconds().toFixed(1)} s (${rate()})`);
      },
    };
  }

  secret(value: string): void {
    if (!value) return;
    this.secrets.add(value);
    core.setSecret(value);
  }
}
