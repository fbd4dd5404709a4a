// The base branch's champion on a fresh runner: the base branch's run saved the model to the
// remote cache, the pull request's checkout has only the base branch's pipeline.lock, and the
// champion is restored by the run key that lock derives. Misses, corrupt and foreign entries and
// a failing service are reasons (and warnings), never exceptions or a wrong model.

import { execFile } from 'node:child_process';
import { chmod, cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { createActionsCache } from '../../actions/lib/remote-cache.ts';
import type { RemoteCache } from '../../pipeline/core/ports.ts';
import { defineStage, type AnyStageKind } from '../../pipeline/core/stage.ts';
import { LocalCache } from '../../pipeline/engine/cache.ts';
import { DEFAULT_SETTINGS, loadPipeline, repro } from '../../pipeline/engine/index.ts';
import type { LockFile } from '../../pipeline/engine/lock.ts';
import { baseBranchChampion } from '../../pipeline/evaluate/champion.ts';
import { startResultsStandIn } from '../support/actions-runtime/index.ts';
import { RecordingLogger } from '../support/logger.ts';
import { testKinds, workspace, type Workspace } from '../engine/helpers.ts';

const exec = promisify(execFile);
const MODEL = 'models/skin-type';

const PIPELINE = `stages:
  train-skin-type:
    kind: gen
    params: { files: 2, text: champion }
    deps: [input.txt]
    outs: [${MODEL}]
  probe:
    kind: probe
    deps: [${MODEL}]
    outs: [probe.txt]
`;

/** Writes which remote cache its context carried. */
const probe = defineStage({
  kind: 'probe',
  title: 'Record the remote cache the stage context carries (test kind)',
  params: {},
  outputs: {},
  codePaths: ['testkind'],
  async run(ctx) {
    await writeFile(ctx.out('probe.txt'), ctx.remoteCache?.name ?? 'none');
    return { outputs: {}, summary: '' };
  },
});
const kinds: ReadonlyMap<string, AnyStageKind> = new Map([...testKinds, ['probe', probe as AnyStageKind]]);

/** A remote cache in a folder: one copy of the saved directory per key. */
function folderRemote(store: string, name = 'folder'): RemoteCache & { restores: string[]; saves: string[] } {
  const restores: string[] = [];
  const saves: string[] = [];
  return {
    name,
    restores,
    saves,
    async save(key, dir) {
      saves.push(key);
      await cp(dir, join(store, key), { recursive: true });
      return true;
    },
    async restore(key, dir) {
      restores.push(key);
      try {
        await cp(join(store, key), dir, { recursive: true });
        return true;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
        throw error;
      }
    },
  };
}

let w: Workspace;
let store: string;
let savedKey: string;
let baseHash: string;
let n = 0;
const cacheDir = (): string => join(w.root, DEFAULT_SETTINGS.cacheDir);
const dest = (): string => join(w.root, 'tmp', `champion-${n++}`);

async function git(...args: string[]): Promise<void> {
  await exec('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', '-c', 'commit.gpgsign=false', ...args], { cwd: w.root });
}

/** A copy of the remote store whose entry for the saved key is changed by `edit`. */
async function alteredStore(name: string, edit: (entryDir: string) => Promise<void>): Promise<string> {
  const copy = join(w.root, '..', name);
  await cp(store, copy, { recursive: true });
  await edit(join(copy, savedKey));
  return copy;
}

beforeAll(async () => {
  w = await workspace(PIPELINE, { 'input.txt': 'hello' });
  store = join(w.root, '..', 'remote');
  await mkdir(store);
  // The base branch's run on one runner: trains, saves to the remote cache, records the lock.
  const remote = folderRemote(store);
  const report = await repro(await loadPipeline({ root: w.root, kinds }), { logger: new RecordingLogger(), codeRoot: w.codeRoot, remoteCache: remote });
  expect(report.ok).toBe(true);
  expect(await w.read('probe.txt')).toBe('folder');
  for (const key of remote.saves) {
    const entry = JSON.parse(await readFile(join(store, key, 'entry.json'), 'utf8')) as { stage: string };
    if (entry.stage === 'train-skin-type') savedKey = key;
  }
  const lock = parseYaml(await w.read('pipeline/pipeline.lock')) as LockFile;
  baseHash = lock.stages['train-skin-type']!.outs[MODEL]!.hash;
  await w.write('.gitignore', 'models/\n.skintwin/\ntmp/\nprobe.txt\n');
  await git('init', '-q', '-b', 'main');
  await git('add', '.gitignore', 'pipeline/pipeline.lock');
  await git('commit', '-q', '-m', 'base');
  // The pull request's fresh runner: nothing cached locally, and a model of its own.
  await rm(join(w.root, '.skintwin'), { recursive: true, force: true });
  await w.write(`${MODEL}/f0.txt`, 'challenger0');
});
afterAll(async () => {
  await w?.cleanup();
});

describe('the stage context', () => {
  it('carries the engine’s remote cache, and none without one', async () => {
    const local = await workspace(PIPELINE, { 'input.txt': 'hello' });
    try {
      const report = await repro(await loadPipeline({ root: local.root, kinds }), { logger: new RecordingLogger(), codeRoot: local.codeRoot });
      expect(report.ok).toBe(true);
      expect(await local.read('probe.txt')).toBe('none');
    } finally {
      await local.cleanup();
    }
  });
});

describe('champion from the base branch through the remote cache', () => {
  // Each case starts as a fresh runner: nothing in the local cache.
  beforeEach(() => rm(join(w.root, '.skintwin'), { recursive: true, force: true }));

  it('asks the remote cache under the key the engine saved the base run with, and restores the model byte for byte', async () => {
    const remote = folderRemote(store);
    const logger = new RecordingLogger();
    const to = dest();
    const r = await baseBranchChampion({ root: w.root, baseRef: 'main', modelDir: MODEL, cacheDir: cacheDir(), dest: to, challengerTreeHash: 'x', remoteCache: remote, logger });
    expect(r.found, r.reason).toBe(true);
    expect(remote.restores).toEqual([savedKey]);
    expect(savedKey).toMatch(/^skintwin-[0-9a-f]{64}$/);
    expect(await readFile(join(to, 'f0.txt'), 'utf8')).toBe('champion0');
    expect(await readFile(join(to, 'sub', 'f1.txt'), 'utf8')).toBe('champion1');
    expect(r.reason).toContain('restored from the remote cache folder');
    expect(r).toMatchObject({ source: 'base-branch', version: `main@${baseHash.slice(0, 12)}` });
    expect(logger.messages('warn')).toEqual([]);

    // Imported into the local cache: the next lookup needs no remote, and no staging is left behind.
    const again = await baseBranchChampion({ root: w.root, baseRef: 'main', modelDir: MODEL, cacheDir: cacheDir(), dest: dest(), challengerTreeHash: 'x' });
    expect(again.found, again.reason).toBe(true);
    expect(await readdir(join(cacheDir(), 'tmp', 'remote')).catch(() => [])).toEqual([]);
  });

  it('without a remote cache, or on a remote miss, says where it looked', async () => {
    const none = await baseBranchChampion({ root: w.root, baseRef: 'main', modelDir: MODEL, cacheDir: cacheDir(), dest: dest() });
    expect(none).toMatchObject({ found: false });
    expect(none.reason).toContain('is not in the local cache and there is no remote cache here');

    const empty = join(w.root, '..', 'empty-remote');
    await mkdir(empty, { recursive: true });
    const miss = await baseBranchChampion({ root: w.root, baseRef: 'main', modelDir: MODEL, cacheDir: cacheDir(), dest: dest(), remoteCache: folderRemote(empty, 'empty') });
    expect(miss.found).toBe(false);
    expect(miss.reason).toContain(`is in neither the local cache nor the remote cache empty, key ${savedKey}`);
  });

  it('refuses a corrupt remote object with a reason and a warning, and keeps nothing of it', async () => {
    const corrupt = await alteredStore('corrupt-remote', async (dir) => {
      const objects = join(dir, 'objects');
      const victim = join(objects, (await readdir(objects))[0]!);
      await chmod(victim, 0o644);
      await writeFile(victim, 'tampered');
    });
    const logger = new RecordingLogger();
    const to = dest();
    const r = await baseBranchChampion({ root: w.root, baseRef: 'main', modelDir: MODEL, cacheDir: cacheDir(), dest: to, remoteCache: folderRemote(corrupt), logger });
    expect(r.found).toBe(false);
    expect(r.reason).toMatch(/could not be restored from the remote cache folder, key skintwin-[0-9a-f]{64}: .*remote cache object [0-9a-f]{64} is corrupt/);
    expect(logger.messages('warn').join('\n')).toMatch(/remote cache folder: restore failed, continuing without it: .*is corrupt/);
    expect(await new LocalCache(cacheDir()).readRun(savedKey.slice('skintwin-'.length))).toBeUndefined();
    await expect(readdir(to)).rejects.toThrow();
  });

  it('refuses a remote entry that names another tree, or lists files that do not make the locked tree', async () => {
    const foreign = await alteredStore('foreign-remote', async (dir) => {
      const entry = JSON.parse(await readFile(join(dir, 'entry.json'), 'utf8'));
      entry.outs[MODEL].hash = 'f'.repeat(64);
      await writeFile(join(dir, 'entry.json'), JSON.stringify(entry));
    });
    const r = await baseBranchChampion({ root: w.root, baseRef: 'main', modelDir: MODEL, cacheDir: cacheDir(), dest: dest(), remoteCache: folderRemote(foreign) });
    expect(r.found).toBe(false);
    expect(r.reason).toContain(`holds another tree for \`${MODEL}\` (ffffffffffff), not ${baseHash.slice(0, 12)}`);
    await rm(join(w.root, '.skintwin'), { recursive: true, force: true });

    // Same tree hash claimed, one file dropped from the list: the listed files no longer make that tree.
    const partial = await alteredStore('partial-remote', async (dir) => {
      const entry = JSON.parse(await readFile(join(dir, 'entry.json'), 'utf8'));
      entry.outs[MODEL].files = entry.outs[MODEL].files.slice(1);
      await writeFile(join(dir, 'entry.json'), JSON.stringify(entry));
    });
    const p = await baseBranchChampion({ root: w.root, baseRef: 'main', modelDir: MODEL, cacheDir: cacheDir(), dest: dest(), remoteCache: folderRemote(partial) });
    expect(p.found).toBe(false);
    expect(p.reason).toContain('holds another tree');
  });

  it('turns a throwing remote cache into a reason and a warning', async () => {
    const logger = new RecordingLogger();
    const broken: RemoteCache = { name: 'broken', save: async () => false, restore: () => Promise.reject(new Error('service unavailable')) };
    const r = await baseBranchChampion({ root: w.root, baseRef: 'main', modelDir: MODEL, cacheDir: cacheDir(), dest: dest(), remoteCache: broken, logger });
    expect(r).toMatchObject({ found: false });
    expect(r.reason).toContain('could not be restored from the remote cache broken');
    expect(r.reason).toContain('service unavailable');
    expect(logger.messages('warn')).toHaveLength(1);
  });

  it('restores through the real @actions/cache saved by the base branch’s engine run', async () => {
    const standIn = await startResultsStandIn();
    try {
      const env = { ...standIn.env, GITHUB_WORKSPACE: w.root, RUNNER_TEMP: join(w.root, 'tmp') };
      // The base branch's job: its engine run saves through the Actions cache.
      const baseRemote = createActionsCache(env, new RecordingLogger())!;
      await rm(join(w.root, MODEL), { recursive: true, force: true });
      const report = await repro(await loadPipeline({ root: w.root, kinds }), { logger: new RecordingLogger(), codeRoot: w.codeRoot, remoteCache: baseRemote, targets: ['train-skin-type'] });
      expect(report.stages.map((s) => s.action)).toEqual(['ran']);
      // The pull request's job: fresh runner, a changed model, the same Actions cache.
      await rm(join(w.root, '.skintwin'), { recursive: true, force: true });
      await w.write(`${MODEL}/f0.txt`, 'challenger0');
      const logger = new RecordingLogger();
      const remote = createActionsCache(env, logger)!;
      const to = dest();
      const r = await baseBranchChampion({ root: w.root, baseRef: 'main', modelDir: MODEL, cacheDir: cacheDir(), dest: to, challengerTreeHash: 'x', remoteCache: remote, logger });
      expect(r.found, r.reason).toBe(true);
      expect(r.reason).toContain('restored from the remote cache github-actions-cache');
      expect(await readFile(join(to, 'f0.txt'), 'utf8')).toBe('champion0');
      expect(logger.messages('info')).toContain(`Remote cache: restored ${savedKey}.`);
    } finally {
      await standIn.close();
    }
  });
});

describe('the pull request evaluation workflow', () => {
  it('checks out the approved head with every branch, so the base branch’s lock can be read', async () => {
    const doc = parseYaml(await readFile(join(import.meta.dirname, '../../.github/workflows/pr-evaluate.yml'), 'utf8')) as {
      jobs: Record<string, { steps: { uses?: string; with?: Record<string, unknown> }[] }>;
    };
    const checkout = doc.jobs.evaluate!.steps.find((s) => s.uses?.startsWith('actions/checkout@'))!;
    expect(checkout.with).toMatchObject({ ref: '${{ github.event.pull_request.head.sha }}', 'fetch-depth': 0, 'persist-credentials': false });
  });
});
