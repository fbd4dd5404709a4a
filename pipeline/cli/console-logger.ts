// The CLI's Logger: a live progress bar redrawn in place in a terminal; plain periodic lines
// without ANSI in CI logs; `::group::`, `::warning::` and `::error::` on GitHub Actions.
// Every line is masked for registered secrets.

import { maskSecrets, type Logger, type Progress } from '../core/logger.ts';

export type LogMode = 'tty' | 'plain' | 'github';

export interface ConsoleLoggerOptions {
  write(text: string): void;
  isTTY: boolean;
  env: Readonly<Record<string, string | undefined>>;
  /** Milliseconds clock (injected in tests). */
  now?: () => number;
  columns?: number;
  /** Minimum time between two periodic progress lines in plain/GitHub mode. */
  intervalMs?: number;
}

/** Where the output goes decides how it looks: GitHub Actions, other CI / pipes, or a terminal. */
export function logModeFor(isTTY: boolean, env: Readonly<Record<string, string | undefined>>): LogMode {
  if (env.GITHUB_ACTIONS === 'true') return 'github';
  if (!isTTY || env.CI === 'true' || env.TERM === 'dumb') return 'plain';
  return 'tty';
}

interface Bar {
  label: string;
  total: number | undefined;
  unit: string;
  done: number;
  start: number;
  lastLine: number;
}

const REDRAW_MS = 100;

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

function rateOf(bar: Bar, now: number): number {
  const seconds = (now - bar.start) / 1000;
  return seconds > 0 ? bar.done / seconds : 0;
}

function describeBar(bar: Bar, now: number, final: boolean): string {
  const rate = rateOf(bar, now);
  const rateText = rate > 0 ? `${rate >= 100 ? Math.round(rate) : rate.toFixed(1)} ${bar.unit}/s` : '';
  if (final) {
    return `${bar.label}: ${formatCount(bar.done)} ${bar.unit} in ${formatDuration(now - bar.start)}${rateText ? ` (${rateText})` : ''}`;
  }
  const count = bar.total !== undefined ? `${formatCount(bar.done)}/${formatCount(bar.total)} ${bar.unit}` : `${formatCount(bar.done)} ${bar.unit}`;
  const pct = bar.total ? ` ${Math.floor((100 * Math.min(bar.done, bar.total)) / bar.total)}%` : '';
  const eta = bar.total !== undefined && rate > 0 && bar.done < bar.total ? ` ETA ${formatDuration(((bar.total - bar.done) / rate) * 1000)}` : '';
  return `${bar.label}:${pct} ${count}${rateText ? `, ${rateText}` : ''}${eta}`;
}

export class ConsoleLogger implements Logger {
  readonly mode: LogMode;
  private readonly secrets = new Set<string>();
  private readonly bars = new Set<Bar>();
  private readonly now: () => number;
  private readonly interval: number;
  private readonly debugEnabled: boolean;
  private drawn = false;
  private lastDraw = -Infinity;
  private groupDepth = 0;

  constructor(private readonly opts: ConsoleLoggerOptions) {
    this.mode = logModeFor(opts.isTTY, opts.env);
    this.now = opts.now ?? (() => performance.now());
    this.interval = opts.intervalMs ?? 5000;
    this.debugEnabled = opts.env.SKINTWIN_DEBUG === '1' || opts.env.RUNNER_DEBUG === '1';
  }

  private emit(line: string): void {
    const text = maskSecrets(line, this.secrets);
    if (this.mode === 'tty' && this.drawn) {
      this.opts.write(`\r\x1b[2K${text}\n`);
      this.drawn = false;
      this.redraw(true);
    } else this.opts.write(`${text}\n`);
  }

  debug(message: string): void {
    if (this.mode === 'github') this.emit(`::debug::${escapeCommand(message)}`);
    else if (this.debugEnabled) this.emit(`debug: ${message}`);
  }
  info(message: string): void {
    this.emit(message);
  }
  warn(message: string): void {
    if (this.mode === 'github') this.emit(`::warning::${escapeCommand(message)}`);
    else this.emit(this.mode === 'tty' ? `\x1b[33mwarning:\x1b[0m ${message}` : `warning: ${message}`);
  }
  error(message: string): void {
    if (this.mode === 'github') this.emit(`::error::${escapeCommand(message)}`);
    else this.emit(this.mode === 'tty' ? `\x1b[31merror:\x1b[0m ${message}` : `error: ${message}`);
  }

  async group<T>(title: string, fn: () => Promise<T>): Promise<T> {
    // GitHub does not nest groups: only the outermost one opens a section.
    const outer = this.groupDepth === 0;
    if (this.mode === 'github' && outer) this.emit(`::group::${title}`);
    else if (this.mode === 'tty') this.emit(`\x1b[1m▸ ${title}\x1b[0m`);
    else if (this.mode === 'plain') this.emit(`== ${title}`);
    this.groupDepth++;
    try {
      return await fn();
    } finally {
      this.groupDepth--;
      if (this.mode === 'github' && outer) this.emit('::endgroup::');
    }
  }

  progress(label: string, total?: number, unit = 'items'): Progress {
    const start = this.now();
    const bar: Bar = { label, total, unit, done: 0, start, lastLine: start };
    this.bars.add(bar);
    const update = (): void => {
      if (this.mode === 'tty') this.redraw(false);
      else if (this.now() - bar.lastLine >= this.interval) {
        bar.lastLine = this.now();
        this.emit(describeBar(bar, bar.lastLine, false));
      }
    };
    let finished = false;
    return {
      tick: (n = 1) => {
        bar.done += n;
        update();
      },
      set: (n) => {
        bar.done = n;
        update();
      },
      done: () => {
        if (finished) return;
        finished = true;
        this.bars.delete(bar);
        this.clearBar();
        this.emit(describeBar(bar, this.now(), true));
        this.redraw(true);
      },
    };
  }

  secret(value: string): void {
    this.secrets.add(value);
  }

  /** Remove a drawn bar so the terminal is left clean (call before exiting). */
  close(): void {
    this.clearBar();
  }

  private clearBar(): void {
    if (this.mode === 'tty' && this.drawn) {
      this.opts.write('\r\x1b[2K');
      this.drawn = false;
    }
  }

  /** One status line for every active bar, cut to the terminal width, throttled. */
  private redraw(force: boolean): void {
    if (this.mode !== 'tty' || !this.bars.size) return;
    const now = this.now();
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const columns = Math.max(20, (this.opts.columns ?? 80) - 1);
    let line = [...this.bars].map((b) => describeBar(b, now, false)).join(' | ');
    if (this.bars.size === 1) {
      const bar = [...this.bars][0]!;
      if (bar.total) {
        const width = 20;
        const filled = Math.round((width * Math.min(bar.done, bar.total)) / bar.total);
        line = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${line}`;
      }
    }
    if (line.length > columns) line = line.slice(0, columns - 1) + '…';
    this.opts.write(`\r\x1b[2K${maskSecrets(line, this.secrets)}`);
    this.drawn = true;
  }
}

/** Workflow commands end at a newline: keep multi-line messages in one annotation. */
function escapeCommand(message: string): string {
  return message.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
}
