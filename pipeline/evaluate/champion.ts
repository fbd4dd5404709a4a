// Finding the champion a challenger is compared with: the production version in the registry
// (once the registry exists), else the model the base branch produced (named by the base
// branch's pipeline.lock, restored from the local content cache), else none. Every failure is a
// reason for a person, never an exception: the evaluation then reports without comparison.

import { execFile } from 'node:child_process';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { errorMessage } from '../core/errors.ts';
import { exists, sha256 } from '../core/fs.ts';
import { LocalCache, type CachedOut, type RunEntry } from '../engine/cache.ts';
import { canonicalJson, type LockEntry } from '../engine/lock.ts';
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
  git?: GitRunner;
}

/**
 * The model the base branch produced: `git show <ref>:<lock>`, the stage whose outs include the
 * model folder, and that out's tree restored from the local content cache (every file verified).
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
  const hash = entry.outs[o.modelDir]!.hash;
  const short = hash.slice(0, 12);
  if (o.challengerTreeHash && o.challengerTreeHash === hash) {
    return { found: false, reason: `the champion is identical to the challenger (\`${o.baseRef}\` produced the same \`${o.modelDir}\`, tree ${short})` };
  }
  const cache = new LocalCache(o.cacheDir);
  const out = await cachedOut(cache, entry, o.modelDir, hash);
  if (!out) {
    return {
      found: false,
      reason: `\`${o.modelDir}\` of \`${o.baseRef}\` (stage \`${stage}\`, tree ${short}) is not in the local cache; restore the cache or run the base branch's pipeline first`,
    };
  }
  try {
    await cache.materialize(out, o.dest);
  } catch (error) {
    await rm(o.dest, { recursive: true, force: true }).catch(() => undefined);
    return { found: false, reason: `restoring \`${o.modelDir}\` of \`${o.baseRef}\` from the cache failed: ${errorMessage(error)}` };
  }
  return { found: true, source: 'base-branch', dir: o.dest, reason: `\`${o.modelDir}\` as produced on \`${o.baseRef}\` (stage \`${stage}\`, tree ${short})`, version: `${o.baseRef}@${short}` };
}

/**
 * The run-cache entry holding tree `hash` for `modelDir`: first by the run key the engine would
 * have used for the locked inputs (one file read), then by scanning the entries.
 */
async function cachedOut(cache: LocalCache, entry: LockEntry, modelDir: string, hash: string): Promise<CachedOut | undefined> {
  const match = (e: RunEntry | undefined): CachedOut | undefined => {
    const out = e?.outs[modelDir];
    return out && out.hash === hash ? out : undefined;
  };
  if (entry.kind && entry.code && entry.params?.hash && entry.deps) {
    const key = sha256(canonicalJson({ kind: entry.kind, code: entry.code, params: entry.params.hash, deps: entry.deps, outs: Object.keys(entry.outs).sort() }));
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
