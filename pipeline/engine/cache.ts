// The local content-addressed cache: file objects stored by sha256, plus run-cache entries
// keyed by a stage's input hash (code + params + deps) that list the trees of its outs.
// A clean checkout restores outs from here instead of recomputing them.

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { chmod, copyFile, link, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, constants } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { DataError, errorMessage } from '../core/errors.ts';
import { exists, sha256, sha256File, writeJsonAtomic } from '../core/fs.ts';
import type { Logger } from '../core/logger.ts';
import type { RemoteCache } from '../core/ports.ts';
import { mapLimit, type TreeHash } from './hash.ts';
import { canonicalJson } from './lock.ts';

export interface CachedOut {
  type: 'file' | 'dir';
  hash: string;
  bytes: number;
  /** [relative path, sha256, size]; the path is '' for a file out. */
  files: [string, string, number][];
}

export interface RunEntry {
  version: 1;
  stage: string;
  kind: string;
  outs: Record<string, CachedOut>;
  /** What the stage returned, so a restored or skipped stage reports the same outputs. */
  result?: { outputs: Record<string, string>; summary: string; reports: string[] };
}

/** What a restored file looks like on disk, so the stat cache can learn it without re-reading. */
export interface RestoredFile {
  abs: string;
  hash: string;
  size: number;
  mtimeMs: number;
  ino: number;
}

const COPY_CONCURRENCY = 4;

export function toCachedOut(tree: TreeHash): CachedOut {
  return { type: tree.type, hash: tree.hash, bytes: tree.bytes, files: tree.files.map((f) => [f.path, f.hash, f.size]) };
}

export function toTree(out: CachedOut): TreeHash {
  return { type: out.type, hash: out.hash, bytes: out.bytes, files: out.files.map(([path, hash, size]) => ({ path, hash, size })) };
}

export class LocalCache {
  constructor(readonly dir: string) {}

  get tmpRoot(): string {
    return join(this.dir, 'tmp');
  }

  objectPath(hash: string): string {
    return join(this.dir, 'objects', hash.slice(0, 2), hash.slice(2));
  }

  runPath(key: string): string {
    return join(this.dir, 'runs', key.slice(0, 2), `${key.slice(2)}.json`);
  }

  /** A fresh directory under the cache's tmp (same filesystem as the cache, normally as the repo). */
  async makeTemp(prefix: string): Promise<string> {
    await mkdir(this.tmpRoot, { recursive: true });
    // The pid in the name lets a later run remove what a killed process left behind.
    return mkdtemp(join(this.tmpRoot, `${prefix.replace(/[^A-Za-z0-9_.-]/g, '_')}.${process.pid}-`));
  }

  /** Remove staging folders of processes that no longer exist (killed with SIGKILL, power loss). */
  async sweepTemp(): Promise<void> {
    const names = await readdir(this.tmpRoot).catch(() => [] as string[]);
    for (const name of names) {
      const pid = /\.(\d+)-[A-Za-z0-9]{6}$/.exec(name)?.[1];
      if (pid && Number(pid) !== process.pid && !alive(Number(pid))) {
        await rm(join(this.tmpRoot, name), { recursive: true, force: true }).catch(() => undefined);
      }
    }
  }

  async hasObject(hash: string): Promise<boolean> {
    return exists(this.objectPath(hash));
  }

  /** Copy a file in under its hash (temp + rename, so a half-copied object is never visible). */
  async storeFile(src: string, hash: string): Promise<void> {
    const dest = this.objectPath(hash);
    if (await exists(dest)) return;
    await mkdir(dirname(dest), { recursive: true });
    const tmp = `${dest}.${randomBytes(4).toString('hex')}.tmp`;
    await copyFile(src, tmp, constants.COPYFILE_FICLONE);
    // Read-only: a hard link made from an object later can never be edited in place.
    await chmod(tmp, 0o444);
    await rename(tmp, dest);
  }

  /** Store every file of a hashed tree rooted at `abs`. */
  async storeTree(abs: string, tree: TreeHash): Promise<void> {
    await mapLimit(tree.files, COPY_CONCURRENCY, (f) => this.storeFile(tree.type === 'file' ? abs : join(abs, f.path), f.hash));
  }

  async readRun(key: string): Promise<RunEntry | undefined> {
    try {
      const entry = JSON.parse(await readFile(this.runPath(key), 'utf8')) as RunEntry;
      return entry.version === 1 && entry.outs ? entry : undefined;
    } catch {
      return undefined;
    }
  }

  async writeRun(key: string, entry: RunEntry): Promise<void> {
    await writeJsonAtomic(this.runPath(key), entry);
  }

  /** True when the entry's objects are all present (checked before promising a restore). */
  async complete(entry: RunEntry): Promise<boolean> {
    for (const hash of objectHashes(entry)) if (!(await this.hasObject(hash))) return false;
    return true;
  }

  /**
   * Write a cached out at `dest` (which must not exist). Files are copied, never linked, so
   * editing a restored file cannot corrupt the cache; each copy is verified against its hash.
   */
  async materialize(out: CachedOut, dest: string, signal?: AbortSignal): Promise<RestoredFile[]> {
    if (out.type === 'dir') await mkdir(dest, { recursive: true });
    return mapLimit(out.files, COPY_CONCURRENCY, async ([rel, hash, size]) => {
      if (signal?.aborted) throw signal.reason ?? new Error('aborted');
      const abs = out.type === 'file' ? dest : join(dest, rel);
      await mkdir(dirname(abs), { recursive: true });
      const actual = await copyVerified(this.objectPath(hash), abs);
      if (actual !== hash) throw new DataError(`cache object ${hash} is corrupt (content hashes to ${actual})`, { file: this.objectPath(hash) });
      const st = await stat(abs);
      return { abs, hash, size, mtimeMs: st.mtimeMs, ino: st.ino };
    });
  }

  /** Lay out an entry for a remote cache: `entry.json` and `objects/<sha256>` (hard links when possible). */
  async exportRun(entry: RunEntry, dir: string): Promise<void> {
    await rm(dir, { recursive: true, force: true });
    await mkdir(join(dir, 'objects'), { recursive: true });
    await mapLimit(objectHashes(entry), COPY_CONCURRENCY, async (hash) => {
      const dest = join(dir, 'objects', hash);
      await link(this.objectPath(hash), dest).catch(() => copyFile(this.objectPath(hash), dest));
    });
    await writeJsonAtomic(join(dir, 'entry.json'), entry);
  }

  /** Import an entry laid out by `exportRun` (from a remote cache), verifying every object. */
  async importRun(key: string, dir: string): Promise<RunEntry> {
    const entry = JSON.parse(await readFile(join(dir, 'entry.json'), 'utf8')) as RunEntry;
    if (entry.version !== 1 || !entry.outs) throw new DataError('remote cache entry has an unknown format', { file: join(dir, 'entry.json') });
    await mapLimit(objectHashes(entry), COPY_CONCURRENCY, async (hash) => {
      const src = join(dir, 'objects', hash);
      const actual = await sha256File(src);
      if (actual !== hash) throw new DataError(`remote cache object ${hash} is corrupt`, { file: src });
      await this.storeFile(src, hash);
    });
    await this.writeRun(key, entry);
    return entry;
  }
}

/** What a stage's run key is made of: exactly what pipeline.lock records about its inputs. */
export interface RunInputs {
  kind: string;
  code: string;
  paramsHash: string;
  deps: Readonly<Record<string, string>>;
  outs: readonly string[];
}

/**
 * A stage's input hash: the key of its run-cache entry, locally and (through `remoteKey`) in the
 * remote cache. Computable from a lock entry, so another branch's outs can be found by its lock.
 */
export function runKey(i: RunInputs): string {
  return sha256(canonicalJson({ kind: i.kind, code: i.code, params: i.paramsHash, deps: i.deps, outs: [...i.outs].sort() }));
}

/** The remote cache key of a run entry. */
export function remoteKey(inputHash: string): string {
  return `skintwin-${inputHash}`;
}

/** The folder a run entry is laid out in for the remote cache: saves and restores must use the same path. */
function remoteStaging(cache: LocalCache, inputHash: string): string {
  return join(cache.tmpRoot, 'remote', inputHash);
}

export type RemoteImport = { status: 'restored'; entry: RunEntry } | { status: 'miss' } | { status: 'failed'; error: string };

/**
 * Fetch run entry `inputHash` from `remote` and import it into `cache`, every object verified.
 * Never throws: a failure (service, corrupt or foreign entry) is warned about and returned.
 */
export async function importFromRemote(cache: LocalCache, remote: RemoteCache, inputHash: string, logger: Logger): Promise<RemoteImport> {
  const dir = remoteStaging(cache, inputHash);
  try {
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    if (!(await remote.restore(remoteKey(inputHash), dir))) return { status: 'miss' };
    return { status: 'restored', entry: await cache.importRun(inputHash, dir) };
  } catch (error) {
    logger.warn(`remote cache ${remote.name}: restore failed, continuing without it: ${errorMessage(error)}`);
    return { status: 'failed', error: errorMessage(error) };
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Save run entry `inputHash` to `remote`. Never throws: a failure is a warning. */
export async function exportToRemote(cache: LocalCache, remote: RemoteCache, inputHash: string, entry: RunEntry, logger: Logger): Promise<void> {
  const dir = remoteStaging(cache, inputHash);
  try {
    await cache.exportRun(entry, dir);
    if (!(await remote.save(remoteKey(inputHash), dir))) logger.debug(`remote cache ${remote.name}: nothing saved for ${inputHash}`);
  } catch (error) {
    logger.warn(`remote cache ${remote.name}: save failed, continuing without it: ${errorMessage(error)}`);
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Every object an entry needs, each once (outs may share files). */
function objectHashes(entry: RunEntry): string[] {
  const hashes = new Set<string>();
  for (const out of Object.values(entry.outs)) for (const [, hash] of out.files) hashes.add(hash);
  return [...hashes];
}

/** Copy `src` to `dest` while hashing what is read: one pass, constant memory. */
async function copyVerified(src: string, dest: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(
    createReadStream(src, { highWaterMark: 1 << 20 }),
    async function* (source: AsyncIterable<Buffer>) {
      for await (const chunk of source) {
        hash.update(chunk);
        yield chunk;
      }
    },
    createWriteStream(dest, { mode: 0o644 }),
  );
  return hash.digest('hex');
}
