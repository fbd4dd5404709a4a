// Finding the champion a challenger is compared with: the production version in the registry
// (once the registry exists), else the model the base branch produced (named by the base
// branch's pipeline.lock, restored from the local content cache, or on a runner from the remote
// cache the base branch's runs saved to), else none. Every failure is a reason for a person,
// never an exception: the evaluation then reports without comparison.

import { execFile } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { errorMessage } from '../core/errors.ts';
import { exists } from '../core/fs.ts';
import type { Logger } from '../core/logger.ts';
import type { RemoteCache } from '../core/ports.ts';
import { importFromRemote, LocalCache, remoteKey, runKey, type CachedOut, type RunEntry } from '../engine/cache.ts';
import { compareStrings, dirHash } from '../engine/hash.ts';
import type { LockEntry } from '../engine/lock.ts';
import type { ChampionSource } from './types.ts';

/** A champion found: a model folder holding model.onnx and model-card.json. */
export interface ChampionFound {
  found: true;
  source: Exclude<ChampionSource, 'none'>;
  dir: string;
  /** Shown to people: where it came from. */
  reason: string;
  version?: string;
}

export interface ChampionMissing {
  found: false;
  reason: string;
}

export type ChampionLookup = ChampionFound | ChampionMissing;

/** Runs git with `args` in `cwd` and resolves stdout; rejects with git's message. A seam for tests. */
export type GitRunner = (args: readonly string[], cwd: string) => Promise<string>;

export const runGit: GitRunner = (args, cwd) =>
  new Promise((resolve, reject) => {
    execFile('git', [...args], { cwd, maxBuffer: 64 << 20, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (!error) return resolve(stdout);
      const code = (error as NodeJS.ErrnoException).code;
      reject(new Error(code === 'ENOENT' ? 'git is not installed' : (stderr || error.message).trim().split('\n')[0]!));
    });
  });

/**
 * The registry's production version of `model`. The registry manifest (models/registry.yaml) is
 * not written by any stage yet: until it is, this reports why there is no registry champion.
 */
export async function registryChampion(registryFile: string, model: string, display = 'models/registry.yaml'): Promise<ChampionLookup> {
  if (!(await exists(registryFile))) return { found: false, reason: `no registry manifest yet (${display})` };
  // The manifest's format and the download of release assets belong to the registry stages;
  // until they provide a lookup, a present manifest is read for nothing but this message.
  return { found: false, reason: `${display} exists, but reading the production version of \`${model}\` from it is not built yet` };
}

export interface BaseBranchOptions {
  /** Repository root (where git runs). */
  root: string;
  /** The git ref whose lock names the champion, e.g. `origin/main`. */
  baseRef: string;
  /** The lock file's path relative to the root. */
  lockFile?: string;
  /** The model folder relative to the root, e.g. `models/skin-type`. */
  modelDir: string;
  /** Absolute local content cache directory. */
  cacheDir: string;
  /** Absolute folder to restore the champion into (must not exist yet). */
  dest: string;
  /** Tree hash of the challenger's model folder: the same tree means there is nothing to compare. */
  challengerTreeHash?: string;
  /** Asked on a local miss, by the run key the base branch's lock entry derives (on runners). */
  remoteCache?: RemoteCache;
  /** Where remote cache trouble is warned about. */
  logger?: Logger;
  git?: GitRunner;
}

/**
 * The model the base branch produced: `git show <ref>:<lock>`, the stage whose outs include the
 * model folder, and that out's tree restored from the local content cache, or, on a local miss,
 * from `remoteCache` by the run key the lock entry derives (every file verified either way).
 */
export async function baseBranchChampion(o: BaseBranchOptions): Promise<ChampionLookup> {
  const lockFile = o.lockFile ?? 'pipeline/pipeline.lock';
  const git = o.git ?? runGit;
  let text: string;
  try {
    text = await git(['show', `${o.baseRef}:${lockFile}`], o.root);
  } catch (error) {
    const why = errorMessage(error);
    if (/not installed/.test(why)) return { found: false, reason: `git is not available, so the base branch's ${lockFile} cannot be read` };
    if (/does not exist in|exists on disk, but not in/.test(why)) return { found: false, reason: `\`${o.baseRef}\` has no ${lockFile} (the base branch never ran the pipeline)` };
    return {
      found: false,
      reason: `cannot read ${lockFile} at \`${o.baseRef}\`: ${why} (on GitHub Actions, fetch the base branch: actions/checkout with fetch-depth: 0)`,
    };
  }
  let stages: Record<string, LockEntry>;
  try {
    const doc = parseYaml(text) as { stages?: Record<string, LockEntry> } | null;
    stages = doc?.stages ?? {};
  } catch (error) {
    return { found: false, reason: `${lockFile} at \`${o.baseRef}\` is not valid YAML: ${errorMessage(error).split('\n')[0]}` };
  }
  const found = Object.entries(stages).find(([, e]) => e?.outs && typeof e.outs === 'object' && o.modelDir in e.outs);
  if (!found) return { found: false, reason: `no stage in ${lockFile} at \`${o.baseRef}\` produces \`${o.modelDir}\`` };
  const [stage, entry] = found;
  const hash = entry.outs[o.modelDir]?.hash;
  if (typeof hash !== 'string' || !/^[0-9a-f]{64}$/.test(hash)) {
    return { found: false, reason: `${lockFile} at \`${o.baseRef}\` records no valid tree hash for \`${o.modelDir}\` (stage \`${stage}\`)` };
  }
  const short = hash.slice(0, 12);
  if (o.challengerTreeHash && o.challengerTreeHash === hash) {
    return { found: false, reason: `the champion is identical to the challenger (\`${o.baseRef}\` produced the same \`${o.modelDir}\`, tree ${short})` };
  }
  const cache = new LocalCache(o.cacheDir);
  const what = `\`${o.modelDir}\` of \`${o.baseRef}\` (stage \`${stage}\`, tree ${short})`;
  let out = await cachedOut(cache, entry, o.modelDir, hash);
  let via = '';
  if (!out) {
    const remote = await fromRemote(cache, entry, o, hash, what);
    if ('reason' in remote) return { found: false, reason: remote.reason };
    out = remote.out;
    via = `, restored from the remote cache ${o.remoteCache!.name}`;
  }
  try {
    await cache.materialize(out, o.dest);
  } catch (error) {
    await rm(o.dest, { recursive: true, force: true }).catch(() => undefined);
    return { found: false, reason: `restoring \`${o.modelDir}\` of \`${o.baseRef}\` from the cache failed: ${errorMessage(error)}` };
  }
  return { found: true, source: 'base-branch', dir: o.dest, reason: `\`${o.modelDir}\` as produced on \`${o.baseRef}\` (stage \`${stage}\`, tree ${short}${via})`, version: `${o.baseRef}@${short}` };
}

/** The run key the engine used for a lock entry's inputs; undefined when the entry lacks a field. */
function lockedRunKey(entry: LockEntry): string | undefined {
  const str = (v: unknown): v is string => typeof v === 'string' && v !== '';
  if (!str(entry.kind) || !str(entry.code) || !str(entry.params?.hash)) return undefined;
  if (!entry.deps || typeof entry.deps !== 'object' || !Object.values(entry.deps).every(str)) return undefined;
  return runKey({ kind: entry.kind, code: entry.code, paramsHash: entry.params.hash, deps: entry.deps, outs: Object.keys(entry.outs) });
}

/** The cached out's file list hashes to its tree hash (the objects themselves are verified on copy). */
function consistent(out: CachedOut, hash: string): boolean {
  if (out.hash !== hash || !Array.isArray(out.files)) return false;
  if (out.type === 'file') return out.files.length === 1 && out.files[0]![1] === hash;
  const files = out.files.map(([path, h]) => ({ path, hash: h })).sort((a, b) => compareStrings(a.path, b.path));
  return dirHash(files) === hash;
}

/**
 * On a local miss: the base stage's run entry from the remote cache, imported into the local
 * cache (every object verified), by the run key the base branch's lock entry derives.
 */
async function fromRemote(
  cache: LocalCache,
  entry: LockEntry,
  o: BaseBranchOptions,
  hash: string,
  what: string,
): Promise<{ out: CachedOut } | { reason: string }> {
  if (!o.remoteCache) return { reason: `${what} is not in the local cache and there is no remote cache here; restore the cache or run the base branch's pipeline first` };
  const key = lockedRunKey(entry);
  if (!key) return { reason: `${what} is not in the local cache, and the lock entry lacks the inputs its remote cache key is made of` };
  const where = `remote cache ${o.remoteCache.name}, key ${remoteKey(key)}`;
  const imported = await importFromRemote(cache, o.remoteCache, key, o.logger ?? silent);
  if (imported.status === 'miss') {
    return { reason: `${what} is in neither the local cache nor the ${where} (the base branch's run did not save it there, or it expired)` };
  }
  if (imported.status === 'failed') return { reason: `${what} could not be restored from the ${where}: ${imported.error}` };
  const out = imported.entry.outs[o.modelDir];
  if (!out) return { reason: `the ${where} holds no \`${o.modelDir}\`` };
  if (!consistent(out, hash)) return { reason: `the ${where} holds another tree for \`${o.modelDir}\` (${String(out.hash).slice(0, 12)}), not ${hash.slice(0, 12)}: not used` };
  return { out };
}

const silent: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  group: (_title, fn) => fn(),
  progress: () => ({ tick: () => undefined, set: () => undefined, done: () => undefined }),
  secret: () => undefined,
};

/**
 * The run-cache entry holding tree `hash` for `modelDir`: first by the run key the engine would
 * have used for the locked inputs (one file read), then by scanning the entries.
 */
async function cachedOut(cache: LocalCache, entry: LockEntry, modelDir: string, hash: string): Promise<CachedOut | undefined> {
  const match = (e: RunEntry | undefined): CachedOut | undefined => {
    const out = e?.outs[modelDir];
    return out && consistent(out, hash) ? out : undefined;
  };
  const key = lockedRunKey(entry);
  if (key) {
    const direct = match(await cache.readRun(key));
    if (direct && (await allObjects(cache, direct))) return direct;
  }
  const runsDir = join(cache.dir, 'runs');
  for (const prefix of await readdir(runsDir).catch(() => [] as string[])) {
    for (const name of await readdir(join(runsDir, prefix)).catch(() => [] as string[])) {
      if (!name.endsWith('.json')) continue;
      let e: RunEntry | undefined;
      try {
        e = JSON.parse(await readFile(join(runsDir, prefix, name), 'utf8')) as RunEntry;
      } catch {
        continue;
      }
      const out = match(e);
      if (out && (await allObjects(cache, out))) return out;
    }
  }
  return undefined;
}

async function allObjects(cache: LocalCache, out: CachedOut): Promise<boolean> {
  for (const [, h] of out.files) if (!(await cache.hasObject(h))) return false;
  return true;
}

/** The default base ref: the pull request's base branch on GitHub (`origin/<base>`), else `main`. */
export function defaultBaseRef(env: Readonly<Record<string, string | undefined>>): string {
  const base = env.GITHUB_BASE_REF?.trim();
  return base ? `origin/${base}` : 'main';
}
