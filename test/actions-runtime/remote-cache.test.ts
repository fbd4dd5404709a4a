// The project's RemoteCache adapter over the real @actions/cache, through the results stand-in:
// hits, misses, conflicts and an unavailable service all resolve booleans and never throw.

import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createActionsCache } from '../../actions/lib/remote-cache.ts';
import { startResultsStandIn, type ResultsStandIn } from '../support/actions-runtime/index.ts';
import { RecordingLogger } from '../support/logger.ts';

let standIn: ResultsStandIn;
let work: string;

beforeAll(async () => {
  standIn = await startResultsStandIn();
  work = await mkdtemp(join(tmpdir(), 'remote-cache-'));
  await mkdir(join(work, 'tmp'));
});
afterAll(async () => {
  await standIn.close();
  await rm(work, { recursive: true, force: true });
});
afterEach(() => standIn.clearFaults());

function runnerEnv(s: ResultsStandIn = standIn): Record<string, string> {
  return { ...s.env, GITHUB_WORKSPACE: work, RUNNER_TEMP: join(work, 'tmp') };
}

async function makeOut(name: string, content: string): Promise<string> {
  const dir = join(work, 'data', name);
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, 'part.txt'), content);
  return dir;
}

describe('createActionsCache', () => {
  it('is off, saying why, when the runner environment is absent', () => {
    const logger = new RecordingLogger();
    expect(createActionsCache({}, logger)).toBeUndefined();
    expect(logger.messages('info').join('\n')).toMatch(/ACTIONS_RUNTIME_TOKEN/);
    expect(createActionsCache({ ACTIONS_RUNTIME_TOKEN: 'x.y.z' }, logger)).toBeUndefined();
    expect(logger.messages('info')[1]).toMatch(/ACTIONS_RESULTS_URL/);
    expect(logger.messages('warn')).toEqual([]);
  });

  it('saves a directory, restores it after it is gone, and reports a miss as false without a warning', async () => {
    const logger = new RecordingLogger();
    const remote = createActionsCache(runnerEnv(), logger)!;
    expect(remote).toBeDefined();
    const dir = await makeOut('fetch', 'rows');
    expect(await remote.save('fetch-synthetic-0123abcd', dir)).toBe(true);
    await rm(dir, { recursive: true });
    expect(await remote.restore('fetch-synthetic-0123abcd', dir)).toBe(true);
    expect(await readFile(join(dir, 'part.txt'), 'utf8')).toBe('rows');

    expect(await remote.restore('fetch-synthetic-ffff', dir)).toBe(false);
    // A prefix of an existing key is not a hit: keys are content hashes.
    expect(await remote.restore('fetch-synthetic-', dir)).toBe(false);
    expect(logger.messages('warn')).toEqual([]);
    expect(logger.messages('info')).toContain('Remote cache: no entry for fetch-synthetic-ffff.');
    // The runtime variables were applied only around the calls.
    expect(process.env.ACTIONS_RUNTIME_TOKEN).toBeUndefined();
    expect(process.env.ACTIONS_RESULTS_URL).toBeUndefined();
  });

  it('warns and resolves false when another job holds the key', async () => {
    const logger = new RecordingLogger();
    const remote = createActionsCache(runnerEnv(), logger)!;
    const dir = await makeOut('conflict', 'x');
    expect(await remote.save('conflict-key', dir)).toBe(true);
    expect(await remote.save('conflict-key', dir)).toBe(false);
    expect(logger.messages('warn').join('\n')).toMatch(/conflict-key was not saved: .*another job may be creating this cache/);
  });

  it('warns and resolves false when the service is unreachable', async () => {
    const gone = await startResultsStandIn();
    await gone.close();
    const logger = new RecordingLogger();
    const remote = createActionsCache(runnerEnv(gone), logger)!;
    const dir = await makeOut('unreachable', 'x');
    await expect(remote.save('k-unreachable', dir)).resolves.toBe(false);
    await expect(remote.restore('k-unreachable', dir)).resolves.toBe(false);
    const warnings = logger.messages('warn');
    expect(warnings).toHaveLength(2);
    // The library reports an unreachable service on save as a failed reservation.
    expect(warnings[0]).toMatch(/k-unreachable was not saved: .*Unable to reserve cache/);
    expect(warnings[1]).toMatch(/could not restore k-unreachable: .*ECONNREFUSED/);
  });

  it('warns and resolves false when the service answers 500 on every attempt', async () => {
    const logger = new RecordingLogger();
    const remote = createActionsCache(runnerEnv(), logger)!;
    const dir = await makeOut('five-hundred', 'x');
    expect(await remote.save('k-500', dir)).toBe(true);
    standIn.fail({ target: 'twirp', method: 'GetCacheEntryDownloadURL', status: 500 });
    const before = standIn.calls.length;
    // The library backs off between its retries with setTimeout: drive that clock instead of waiting.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    try {
      let settled = false;
      const restored = remote.restore('k-500', dir).finally(() => void (settled = true));
      while (!settled) {
        await new Promise((resolve) => setImmediate(resolve));
        vi.advanceTimersToNextTimer();
      }
      expect(await restored).toBe(false);
    } finally {
      vi.useRealTimers();
    }
    const attempts = standIn.calls.slice(before).filter((c) => c.method === 'CacheService/GetCacheEntryDownloadURL');
    expect(attempts.map((c) => c.status)).toEqual([500, 500, 500, 500, 500]);
    expect(logger.messages('warn').join('\n')).toMatch(/could not restore k-500: .*500/);
  });

  it('follows a read-only cache mode without calling the service or warning', async () => {
    const logger = new RecordingLogger();
    const remote = createActionsCache({ ...runnerEnv(), ACTIONS_CACHE_MODE: 'read' }, logger)!;
    const dir = await makeOut('read-only', 'x');
    const before = standIn.calls.length;
    expect(await remote.save('k-read-only', dir)).toBe(false);
    expect(standIn.calls.length).toBe(before);
    expect(await remote.restore('k-read-only', dir)).toBe(false);
    expect(standIn.calls.slice(before).map((c) => c.method)).toEqual(['CacheService/GetCacheEntryDownloadURL']);
    expect(logger.messages('warn')).toEqual([]);
    expect(logger.messages('info').join('\n')).toMatch(/k-read-only not saved: this job's cache is read-only/);
  });

  it('treats a failed blob upload as not saved', async () => {
    const logger = new RecordingLogger();
    const remote = createActionsCache(runnerEnv(), logger)!;
    const dir = await makeOut('blob-403', 'x');
    // 403 is not retried by the storage SDK, so no clock to drive.
    standIn.fail({ target: 'blob', method: 'PUT', status: 403 });
    expect(await remote.save('k-blob', dir)).toBe(false);
    expect(logger.messages('warn').join('\n')).toMatch(/k-blob was not saved/);
    expect(standIn.cacheEntries().find((e) => e.key === 'k-blob')?.finalized).toBe(false);
  });
});
