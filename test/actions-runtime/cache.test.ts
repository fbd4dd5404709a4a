// The real @actions/cache saves and restores through the results-service stand-in.

import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as cache from '@actions/cache';
import { startResultsStandIn, withProcessEnv, type ResultsStandIn } from '../support/actions-runtime/index.ts';

let standIn: ResultsStandIn;
let work: string;

beforeAll(async () => {
  standIn = await startResultsStandIn();
  work = await mkdtemp(join(tmpdir(), 'results-cache-'));
});
afterAll(async () => {
  await standIn.close();
  await rm(work, { recursive: true, force: true });
});

function runnerEnv(): Record<string, string> {
  return { ...standIn.env, GITHUB_WORKSPACE: join(work, 'ws'), RUNNER_TEMP: join(work, 'tmp') };
}

describe('@actions/cache through the results stand-in', () => {
  it('saves, then restores by exact key, by restore key, and misses cleanly', async () => {
    const dir = join(work, 'ws', 'out');
    await mkdir(join(dir, 'sub'), { recursive: true });
    await mkdir(join(work, 'tmp'), { recursive: true });
    await writeFile(join(dir, 'a.txt'), 'alpha');
    await writeFile(join(dir, 'sub', 'b.bin'), Buffer.from([1, 2, 3, 4]));

    await withProcessEnv(runnerEnv(), async () => {
      const id = await cache.saveCache([dir], 'stage-fetch-abc123');
      expect(id).toBeGreaterThan(0);

      await rm(dir, { recursive: true });
      expect(await cache.restoreCache([dir], 'stage-fetch-abc123')).toBe('stage-fetch-abc123');
      expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('alpha');
      expect([...(await readFile(join(dir, 'sub', 'b.bin')))]).toEqual([1, 2, 3, 4]);

      await rm(dir, { recursive: true });
      expect(await cache.restoreCache([dir], 'stage-fetch-zzz', ['stage-fetch-'])).toBe('stage-fetch-abc123');
      expect(await readFile(join(dir, 'a.txt'), 'utf8')).toBe('alpha');

      expect(await cache.restoreCache([dir], 'other-key', ['nothing-'])).toBeUndefined();
      // Same key, different paths: a different cache version, so a miss.
      expect(await cache.restoreCache([join(work, 'ws', 'elsewhere')], 'stage-fetch-abc123')).toBeUndefined();
    });

    const [entry] = standIn.cacheEntries();
    expect(entry).toMatchObject({ key: 'stage-fetch-abc123', finalized: true });
    expect(entry!.sizeBytes).toBeGreaterThan(0);
    const methods = standIn.calls.map((c) => `${c.method} ${c.status}`);
    expect(methods).toContain('CacheService/CreateCacheEntry 200');
    expect(methods).toContain('PUT blob 201');
    expect(methods).toContain('CacheService/FinalizeCacheEntryUpload 200');
    expect(methods).toContain('GET blob 200');
  });

  it('refuses a second entry with the same key and version, and the library reports it as a reservation failure', async () => {
    const dir = join(work, 'ws', 'dup');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'x'), 'x');
    await withProcessEnv(runnerEnv(), async () => {
      expect(await cache.saveCache([dir], 'dup-key')).toBeGreaterThan(0);
      expect(await cache.saveCache([dir], 'dup-key')).toBe(-1);
    });
    expect(standIn.calls.filter((c) => c.method === 'CacheService/CreateCacheEntry').map((c) => c.status)).toContain(409);
    expect(standIn.cacheEntries().filter((e) => e.key === 'dup-key')).toHaveLength(1);
  });
});
