import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256 } from '../../pipeline/core/fs.ts';
import { LocalCache, toCachedOut } from '../../pipeline/engine/cache.ts';
import { hashTree } from '../../pipeline/engine/hash.ts';
import { canonicalJson, renderLock, type LockFile } from '../../pipeline/engine/lock.ts';
import { baseBranchChampion, defaultBaseRef, registryChampion } from '../../pipeline/evaluate/champion.ts';

const exec = promisify(execFile);
const MODEL = 'models/skin-type';

let root: string;
let cacheDir: string;
let baseHash: string;
let n = 0;

async function git(...args: string[]): Promise<void> {
  await exec('git', ['-c', 'user.email=t@example.com', '-c', 'user.name=t', '-c', 'commit.gpgsign=false', ...args], { cwd: root });
}

function dest(): string {
  return join(root, 'tmp', `champion-${n++}`);
}

/** The lock entry of the stage that produced MODEL, and the run key the engine derives from it. */
function lockFor(hash: string): { lock: LockFile; key: string } {
  const entry = {
    kind: 'train',
    code: 'c'.repeat(64),
    params: { hash: 'p'.repeat(64), values: {} },
    deps: { 'data/processed/skin-type': 'd'.repeat(64) },
    outs: { [MODEL]: { hash, files: 2, bytes: 10 } },
  };
  const key = sha256(canonicalJson({ kind: entry.kind, code: entry.code, params: entry.params.hash, deps: entry.deps, outs: [MODEL] }));
  return { lock: { schema: 1, stages: { 'train-skin-type': entry } }, key };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'skintwin-champion-'));
  cacheDir = join(root, '.skintwin/cache');
  await mkdir(join(root, MODEL), { recursive: true });
  await writeFile(join(root, MODEL, 'model.onnx'), 'champion weights');
  await writeFile(join(root, MODEL, 'model-card.json'), '{"champion":true}');
  const tree = (await hashTree(join(root, MODEL)))!;
  baseHash = tree.hash;
  const cache = new LocalCache(cacheDir);
  await cache.storeTree(join(root, MODEL), tree);
  const { lock, key } = lockFor(tree.hash);
  await cache.writeRun(key, { version: 1, stage: 'train-skin-type', kind: 'train', outs: { [MODEL]: toCachedOut(tree) } });
  await mkdir(join(root, 'pipeline'), { recursive: true });
  await writeFile(join(root, 'pipeline/pipeline.lock'), renderLock(lock));
  await writeFile(join(root, '.gitignore'), 'models/\n.skintwin/\ntmp/\n');
  await git('init', '-q', '-b', 'main');
  await git('add', '.gitignore', 'pipeline/pipeline.lock');
  await git('commit', '-q', '-m', 'base');
  // The challenger: the working tree's model differs from what main produced.
  await writeFile(join(root, MODEL, 'model.onnx'), 'challenger weights');
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('champion from the base branch', () => {
  it('restores the model the base branch locked from the local cache, byte for byte', async () => {
    const to = dest();
    const r = await baseBranchChampion({ root, baseRef: 'main', modelDir: MODEL, cacheDir, dest: to, challengerTreeHash: 'other' });
    expect(r.found).toBe(true);
    if (!r.found) return;
    expect(r.source).toBe('base-branch');
    expect(r.dir).toBe(to);
    expect(await readFile(join(to, 'model.onnx'), 'utf8')).toBe('champion weights');
    expect(await readFile(join(to, 'model-card.json'), 'utf8')).toBe('{"champion":true}');
    expect(r.reason).toContain('train-skin-type');
    expect(r.version).toBe(`main@${baseHash.slice(0, 12)}`);
  });

  it('says so when the champion is the challenger itself', async () => {
    const r = await baseBranchChampion({ root, baseRef: 'main', modelDir: MODEL, cacheDir, dest: dest(), challengerTreeHash: baseHash });
    expect(r).toMatchObject({ found: false });
    expect(r.reason).toContain('identical to the challenger');
  });

  it('finds the tree by scanning the run cache when the locked run key is not there', async () => {
    const other = join(root, 'cache-scan');
    const cache = new LocalCache(other);
    const tree = (await hashTree(join(cacheDir, '..', '..', MODEL)))!;
    // Store the champion's objects (restored copy) under a key the lock does not derive.
    const restored = dest();
    await baseBranchChampion({ root, baseRef: 'main', modelDir: MODEL, cacheDir, dest: restored });
    const champTree = (await hashTree(restored))!;
    expect(champTree.hash).toBe(baseHash);
    expect(tree.hash).not.toBe(baseHash);
    await cache.storeTree(restored, champTree);
    await cache.writeRun('ab' + 'e'.repeat(62), { version: 1, stage: 'renamed', kind: 'train', outs: { [MODEL]: toCachedOut(champTree) } });
    const r = await baseBranchChampion({ root, baseRef: 'main', modelDir: MODEL, cacheDir: other, dest: dest() });
    expect(r.found).toBe(true);
  });

  it('reports a cache miss, an unknown ref, a lock without the model and a corrupt object as reasons, never throws', async () => {
    const empty = await baseBranchChampion({ root, baseRef: 'main', modelDir: MODEL, cacheDir: join(root, 'no-cache'), dest: dest() });
    expect(empty.found).toBe(false);
    expect(empty.reason).toContain('is not in the local cache');

    const ref = await baseBranchChampion({ root, baseRef: 'origin/nope', modelDir: MODEL, cacheDir, dest: dest() });
    expect(ref.found).toBe(false);
    expect(ref.reason).toMatch(/cannot read pipeline\/pipeline\.lock at `origin\/nope`/);
    expect(ref.reason).toContain('fetch-depth: 0');

    const other = await baseBranchChampion({ root, baseRef: 'main', modelDir: 'models/skin-detection', cacheDir, dest: dest() });
    expect(other.reason).toContain('no stage in pipeline/pipeline.lock at `main` produces `models/skin-detection`');

    const noLock = await baseBranchChampion({ root, baseRef: 'main', lockFile: 'pipeline/other.lock', modelDir: MODEL, cacheDir, dest: dest() });
    expect(noLock.reason).toContain('has no pipeline/other.lock');

    const noGit = await baseBranchChampion({
      root,
      baseRef: 'main',
      modelDir: MODEL,
      cacheDir,
      dest: dest(),
      git: () => Promise.reject(new Error('git is not installed')),
    });
    expect(noGit.reason).toContain('git is not available');

    // Corrupt one cached object: restoring verifies every file against its hash.
    const corrupt = join(root, 'cache-corrupt');
    const cache = new LocalCache(corrupt);
    const restored = dest();
    await baseBranchChampion({ root, baseRef: 'main', modelDir: MODEL, cacheDir, dest: restored });
    const tree = (await hashTree(restored))!;
    await cache.storeTree(restored, tree);
    const { key } = lockFor(baseHash);
    await cache.writeRun(key, { version: 1, stage: 'train-skin-type', kind: 'train', outs: { [MODEL]: toCachedOut(tree) } });
    const victim = cache.objectPath(tree.files[0]!.hash);
    await chmod(victim, 0o644);
    await writeFile(victim, 'tampered');
    const bad = await baseBranchChampion({ root, baseRef: 'main', modelDir: MODEL, cacheDir: corrupt, dest: dest() });
    expect(bad.found).toBe(false);
    expect(bad.reason).toContain('is corrupt');
  });
});

describe('champion from the registry', () => {
  it('has no manifest yet, and says so', async () => {
    const r = await registryChampion(join(root, 'models/registry.yaml'), 'skin-type');
    expect(r).toEqual({ found: false, reason: 'no registry manifest yet (models/registry.yaml)' });
  });
});

describe('default base ref', () => {
  it('is the pull request base on GitHub, else main', () => {
    expect(defaultBaseRef({ GITHUB_BASE_REF: 'develop' })).toBe('origin/develop');
    expect(defaultBaseRef({ GITHUB_BASE_REF: '' })).toBe('main');
    expect(defaultBaseRef({})).toBe('main');
  });
});
