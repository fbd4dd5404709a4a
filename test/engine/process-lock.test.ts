import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigurationError } from '../../pipeline/core/errors.ts';
import { acquireProcessLock } from '../../pipeline/engine/process-lock.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'skintwin-plock-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A real process: alive until killed, or already exited. */
function child(live: boolean): Promise<{ pid: number; stop(): void }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['-e', live ? 'setInterval(() => {}, 1000)' : '']);
    p.on('error', reject);
    if (live) p.on('spawn', () => resolve({ pid: p.pid!, stop: () => p.kill() }));
    else p.on('exit', () => resolve({ pid: p.pid!, stop: () => undefined }));
  });
}

describe('repro process lock', () => {
  it('is taken, refused while held in this process, and released', async () => {
    const path = join(dir, 'cache', 'repro.pid');
    const release = await acquireProcessLock(path, '.skintwin/cache/repro.pid');
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid);
    await expect(acquireProcessLock(path, '.skintwin/cache/repro.pid')).rejects.toThrow(/already running in this process/);
    await release();
    await release();
    const again = await acquireProcessLock(path, '.skintwin/cache/repro.pid');
    await again();
  });

  it('refuses while another live process holds it, naming the pid and the file', async () => {
    const other = await child(true);
    try {
      const path = join(dir, 'repro.pid');
      await writeFile(path, JSON.stringify({ pid: other.pid, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
      const error = await acquireProcessLock(path, '.skintwin/cache/repro.pid').catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigurationError);
      expect(String(error)).toContain(`pid ${other.pid}`);
      expect(String(error)).toContain('.skintwin/cache/repro.pid');
      // Refusing leaves the holder's file alone.
      expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(other.pid);
    } finally {
      other.stop();
    }
  });

  it('takes over a lock left by a process that has exited, or an unreadable one', async () => {
    const gone = await child(false);
    const path = join(dir, 'repro.pid');
    await writeFile(path, JSON.stringify({ pid: gone.pid, host: hostname(), startedAt: '2026-01-01T00:00:00.000Z' }));
    const release = await acquireProcessLock(path, 'repro.pid');
    expect(JSON.parse(await readFile(path, 'utf8')).pid).toBe(process.pid);
    await release();
    await writeFile(path, 'not json');
    await (await acquireProcessLock(path, 'repro.pid'))();
  });

  it('refuses a lock held from another host (its pid cannot be checked)', async () => {
    const path = join(dir, 'repro.pid');
    await writeFile(path, JSON.stringify({ pid: 1, host: `${hostname()}-elsewhere`, startedAt: 'x' }));
    await expect(acquireProcessLock(path, 'repro.pid')).rejects.toThrow(/another `skintwin repro` is running/);
  });
});
