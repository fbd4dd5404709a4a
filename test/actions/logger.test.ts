// The Logger the actions use, rendered through @actions/core workflow commands.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ActionsLogger } from '../../actions/lib/logger.ts';

let lines: string[];

beforeEach(() => {
  lines = [];
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    lines.push(...String(chunk).split('\n').filter(Boolean));
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
  process.exitCode = undefined;
});

describe('ActionsLogger', () => {
  it('maps levels to workflow commands', () => {
    const log = new ActionsLogger();
    log.debug('d');
    log.info('i');
    log.warn('w');
    log.error('e');
    expect(lines).toEqual(['::debug::d', 'i', '::warning::w', '::error::e']);
  });

  it('masks registered secrets itself and asks the runner to mask them', () => {
    const log = new ActionsLogger();
    log.secret('s3cr3t-token');
    log.info('token is s3cr3t-token');
    log.warn('again s3cr3t-token');
    expect(lines).toEqual(['::add-mask::s3cr3t-token', 'token is ***', '::warning::again ***']);
  });

  it('opens one group at a time: the runner cannot nest them', async () => {
    const log = new ActionsLogger();
    const value = await log.group('outer', async () => {
      await log.group('inner', async () => log.info('work'));
      return 42;
    });
    expect(value).toBe(42);
    expect(lines).toEqual(['::group::outer', '── inner', 'work', '::endgroup::']);
  });

  it('closes the group when the work throws', async () => {
    const log = new ActionsLogger();
    await expect(log.group('g', async () => Promise.reject(new Error('x')))).rejects.toThrow('x');
    expect(lines).toEqual(['::group::g', '::endgroup::']);
    await log.group('next', async () => undefined);
    expect(lines.slice(2)).toEqual(['::group::next', '::endgroup::']);
  });

  it('prints progress at most every tenth of the work, then a final line with the rate', () => {
    let now = 0;
    const log = new ActionsLogger({ now: () => now, progressIntervalMs: 1e9 });
    const bar = log.progress('hashing', 1000, 'files');
    for (let i = 0; i < 1000; i++) {
      now += 2;
      bar.tick();
    }
    bar.done();
    bar.done();
    expect(lines).toHaveLength(11);
    expect(lines[0]).toBe('hashing: 100/1000 files, 500.0 files/s, ETA 2 s');
    expect(lines[10]).toBe('hashing: 1000 files in 2.0 s (500.0 files/s)');
    expect(lines.join('\n')).not.toMatch(/\u001b\[/);
  });

  it('prints progress of unknown size on the time interval only', () => {
    let now = 0;
    const log = new ActionsLogger({ now: () => now, progressIntervalMs: 10_000 });
    const bar = log.progress('downloading', undefined, 'MB');
    bar.tick(5);
    now = 9_999;
    bar.tick(5);
    expect(lines).toEqual([]);
    now = 10_000;
    bar.tick(5);
    expect(lines).toEqual(['downloading: 15 MB, 1.5 MB/s']);
  });

  it('fails once: an error already annotated only sets the exit code', () => {
    const log = new ActionsLogger();
    log.error('stage `x` failed');
    log.fail('stage `x` failed');
    expect(lines).toEqual(['::error::stage `x` failed']);
    expect(process.exitCode).toBe(1);
    log.fail('something else');
    expect(lines).toEqual(['::error::stage `x` failed', '::error::something else']);
  });
});
