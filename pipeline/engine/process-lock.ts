// One `repro` at a time per checkout: two processes writing the same outs and pipeline.lock would
// interleave staged swaps and lock entries. A pid file taken with O_EXCL guards it; a file left by
// a process that no longer exists (killed, machine rebooted) is taken over, not obeyed.

import { hostname } from 'node:os';
import { mkdir, open, readFile, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ConfigurationError } from '../core/errors.ts';

export const PROCESS_LOCK_FILE = 'repro.pid';

/** Locks this process holds now, so a second `repro` in the same process is refused too. */
const heldHere = new Set<string>();

interface Holder {
  pid: number;
  host: string;
  startedAt: string;
}

/** Whether `pid` names a live process on this machine (EPERM: alive, owned by someone else). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const h = JSON.parse(await readFile(path, 'utf8')) as Partial<Holder>;
    return typeof h.pid === 'number' ? { pid: h.pid, host: String(h.host ?? ''), startedAt: String(h.startedAt ?? '') } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Take the lock at `path` (absolute) or throw a ConfigurationError naming the running process.
 * Resolves to the release function; releasing twice is harmless.
 */
export async function acquireProcessLock(path: string, display: string, now: () => Date = () => new Date()): Promise<() => Promise<void>> {
  if (heldHere.has(path)) throw new ConfigurationError('a `repro` is already running in this process for this checkout', { file: display });
  await mkdir(dirname(path), { recursive: true });
  const me: Holder = { pid: process.pid, host: hostname(), startedAt: now().toISOString() };
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(path, 'wx');
      await handle.writeFile(JSON.stringify(me) + '\n');
      await handle.close();
      heldHere.add(path);
      let released = false;
      return async () => {
        if (released) return;
        released = true;
        heldHere.delete(path);
        const holder = await readHolder(path);
        if (holder?.pid === me.pid) await rm(path, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readHolder(path);
    // Another host's pid cannot be checked: a shared (network) checkout is refused, not guessed at.
    if (holder && holder.pid !== process.pid && (holder.host !== me.host || alive(holder.pid))) {
      throw new ConfigurationError(
        `another \`skintwin repro\` is running in this checkout (pid ${holder.pid} on ${holder.host || 'unknown host'}, started ${holder.startedAt || 'at an unknown time'}): ` +
          `wait for it to finish, or stop it; if no such process exists, delete the lock file`,
        { file: display },
      );
    }
    // Unreadable, ours from an earlier crash, or its process is gone: stale, take it over.
    await rm(path, { force: true });
  }
  throw new ConfigurationError('could not take the repro lock (another process keeps re-creating it)', { file: display });
}
