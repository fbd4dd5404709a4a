import { describe, expect, it } from 'vitest';
import { ConsoleLogger, logModeFor } from '../../pipeline/cli/console-logger.ts';

function logger(env: Record<string, string>, isTTY: boolean) {
  let out = '';
  let t = 0;
  const log = new ConsoleLogger({ write: (s) => (out += s), isTTY, env, now: () => t, columns: 100, intervalMs: 5000 });
  return { log, out: () => out, advance: (ms: number) => (t += ms) };
}

describe('ConsoleLogger', () => {
  it('picks the mode from the TTY and the CI variables', () => {
    expect(logModeFor(true, {})).toBe('tty');
    expect(logModeFor(true, { CI: 'true' })).toBe('plain');
    expect(logModeFor(false, {})).toBe('plain');
    expect(logModeFor(true, { GITHUB_ACTIONS: 'true', CI: 'true' })).toBe('github');
  });

  it('plain mode: no ANSI, a progress line at most every interval, and a final line', () => {
    const { log, out, advance } = logger({ CI: 'true' }, true);
    const bar = log.progress('hashing', 1000, 'files');
    for (let i = 0; i < 100; i++) {
      advance(100); // 10 s in all
      bar.tick(10);
    }
    bar.done();
    const lines = out().trimEnd().split('\n');
    expect(out()).not.toMatch(/\x1b/);
    expect(lines).toEqual([
      'hashing: 50% 500/1,000 files, 100 files/s ETA 5.0 s',
      'hashing: 100% 1,000/1,000 files, 100 files/s',
      'hashing: 1,000 files in 10.0 s (100 files/s)',
    ]);
  });

  it('tty mode: a bar redrawn in place with rate and ETA, cleared around log lines', () => {
    const { log, out, advance } = logger({}, true);
    const bar = log.progress('training', 200, 'batches');
    advance(1000);
    bar.set(50);
    expect(out()).toContain('\r\x1b[2K[#####...............] training: 25% 50/200 batches, 50.0 batches/s ETA 3.0 s');
    log.info('epoch 1 done');
    expect(out()).toContain('\r\x1b[2Kepoch 1 done\n');
    bar.done();
    log.close();
    expect(out().endsWith('\r\x1b[2Ktraining: 50 batches in 1.0 s (50.0 batches/s)\n')).toBe(true);
  });

  it('github mode: groups, annotations, no nested groups', async () => {
    const { log, out } = logger({ GITHUB_ACTIONS: 'true' }, false);
    await log.group('stage a', async () => {
      log.warn('careful\nsecond line');
      await log.group('inner', async () => log.error('broken'));
    });
    expect(out()).toBe('::group::stage a\n::warning::careful%0Asecond line\n::error::broken\n::endgroup::\n');
  });

  it('masks registered secrets everywhere', () => {
    const { log, out } = logger({ CI: 'true' }, false);
    log.secret('s3cr3t-token');
    log.info('token is s3cr3t-token');
    log.error('auth failed for s3cr3t-token');
    expect(out()).not.toContain('s3cr3t-token');
    expect(out()).toContain('token is ***');
  });
});
