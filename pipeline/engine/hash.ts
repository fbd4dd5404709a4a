// Content hashing for deps, outs and code: streamed sha256 per file with a stat cache
// (path, size, mtime, inode → sha256) so unchanged trees are never re-read.

import { createHash } from 'node:crypto';
import { type Stats } from 'node:fs';
import { open, readdir, readFile, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { writeFileAtomic } from '../core/fs.ts';

/** One file of a hashed tree. `path` is relative to the tree root, with `/` separators. */
export interface TreeFile {
  path: string;
  hash: string;
  size: number;
}

export interface TreeHash {
  type: 'file' | 'dir';
  /** For a file: its sha256. For a directory: sha256 of the sorted (relative path, file hash) list. */
  hash: string;
  files: TreeFile[];
  bytes: number;
}

type StatEntry = [size: number, mtimeMs: number, ino: number, hash: string];

const STAT_CACHE_VERSION = 1;
/** Large enough that typical files are read in one call; bounded so memory stays constant. */
const READ_BUFFER_BYTES = 1 << 20;
/** Parallel file reads: enough to keep the disk and libuv's 4 threads busy on 2 cores. */
const HASH_CONCURRENCY = 4;
const STAT_CONCURRENCY = 32;

/**
 * Remembers the sha256 of files by (absolute path, size, mtime, inode). Loaded once per run and
 * saved at the end; a missing or unreadable cache file only costs re-hashing.
 */
export class StatCache {
  private entries = new Map<string, StatEntry>();
  private dirty = false;

  constructor(readonly file?: string) {}

  static async load(file: string): Promise<StatCache> {
    const cache = new StatCache(file);
    try {
      const parsed = JSON.parse(await readFile(file, 'utf8')) as { version?: number; entries?: Record<string, StatEntry> };
      if (parsed.version === STAT_CACHE_VERSION && parsed.entries) {
        for (const [path, entry] of Object.entries(parsed.entries)) {
          if (Array.isArray(entry) && entry.length === 4) cache.entries.set(path, entry);
        }
      }
    } catch {
      // No cache yet, or a corrupt one: start empty.
    }
    return cache;
  }

  get(path: string, st: Stats): string | undefined {
    const entry = this.entries.get(path);
    if (!entry) return undefined;
    return entry[0] === st.size && entry[1] === st.mtimeMs && entry[2] === st.ino ? entry[3] : undefined;
  }

  set(path: string, st: Pick<Stats, 'size' | 'mtimeMs' | 'ino'>, hash: string): void {
    const prev = this.entries.get(path);
    if (prev && prev[0] === st.size && prev[1] === st.mtimeMs && prev[2] === st.ino && prev[3] === hash) return;
    this.entries.set(path, [st.size, st.mtimeMs, st.ino, hash]);
    this.dirty = true;
  }

  /** Take over `other`'s entries under `from`, re-keyed under `to` (outs renamed into place keep size, mtime, inode). */
  adopt(other: StatCache, from: string, to: string): void {
    for (const [path, entry] of other.entries) {
      if (path.startsWith(from + sep)) {
        this.entries.set(to + path.slice(from.length), entry);
        this.dirty = true;
      }
    }
  }

  async save(): Promise<void> {
    if (!this.dirty || !this.file) return;
    const entries: Record<string, StatEntry> = {};
    for (const [k, v] of this.entries) entries[k] = v;
    await writeFileAtomic(this.file, JSON.stringify({ version: STAT_CACHE_VERSION, entries }));
    this.dirty = false;
  }
}

/** A reusable read buffer per worker: constant memory whatever the file sizes. */
async function hashFileWith(path: string, buffer: Buffer): Promise<string> {
  const hash = createHash('sha256');
  const handle = await open(path, 'r');
  try {
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) break;
      hash.update(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
    }
  } finally {
    await handle.close();
  }
  return hash.digest('hex');
}

/** Run `fn` over `items` with at most `limit` in flight; results keep the input order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, worker: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async (_, worker) => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i]!, worker);
    }
  });
  await Promise.all(workers);
  return results;
}

/** Every regular file under `dir` (following symlinks), relative paths with `/`, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  async function walk(abs: string, rel: string): Promise<void> {
    const entries = await readdir(abs, { withFileTypes: true });
    const subdirs: Promise<void>[] = [];
    for (const entry of entries) {
      const childAbs = join(abs, entry.name);
      const childRel = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isFile()) out.push(childRel);
      else if (entry.isDirectory()) subdirs.push(walk(childAbs, childRel));
      else if (entry.isSymbolicLink()) {
        const st = await stat(childAbs).catch(() => undefined);
        if (st?.isFile()) out.push(childRel);
        else if (st?.isDirectory()) subdirs.push(walk(childAbs, childRel));
      }
    }
    await Promise.all(subdirs);
  }
  await walk(dir, '');
  return out.sort(compareStrings);
}

export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Directory hash: sha256 over `path\thash\n` lines of the sorted file list. */
export function dirHash(files: readonly { path: string; hash: string }[]): string {
  const h = createHash('sha256');
  for (const f of files) h.update(`${f.path}\t${f.hash}\n`);
  return h.digest('hex');
}

export interface HashOptions {
  statCache?: StatCache;
  signal?: AbortSignal;
  /** Called after each file is hashed (progress). */
  onFile?: (bytes: number) => void;
}

/**
 * Hash a file or a directory tree. Returns undefined when `path` does not exist.
 * Files whose (size, mtime, inode) match the stat cache are not read.
 */
export async function hashTree(path: string, options: HashOptions = {}): Promise<TreeHash | undefined> {
  const top = await stat(path).catch(() => undefined);
  if (!top) return undefined;
  const buffers: Buffer[] = [];
  const bufferFor = (worker: number): Buffer => (buffers[worker] ??= Buffer.allocUnsafe(READ_BUFFER_BYTES));

  if (top.isFile()) {
    const hash = await hashOne(path, top, options, bufferFor(0));
    return { type: 'file', hash, files: [{ path: '', hash, size: top.size }], bytes: top.size };
  }
  const rels = await listFiles(path);
  const stats = await mapLimit(rels, STAT_CONCURRENCY, (rel) => stat(join(path, rel)));
  // Cached files first (no I/O), then the rest with bounded parallel reads.
  const hashes = new Array<string>(rels.length);
  const toRead: number[] = [];
  for (let i = 0; i < rels.length; i++) {
    const cached = options.statCache?.get(join(path, rels[i]!), stats[i]!);
    if (cached) {
      hashes[i] = cached;
      options.onFile?.(stats[i]!.size);
    } else toRead.push(i);
  }
  await mapLimit(toRead, HASH_CONCURRENCY, async (i, worker) => {
    hashes[i] = await hashOne(join(path, rels[i]!), stats[i]!, options, bufferFor(worker));
  });
  let bytes = 0;
  const files = rels.map((rel, i) => {
    bytes += stats[i]!.size;
    return { path: rel, hash: hashes[i]!, size: stats[i]!.size };
  });
  return { type: 'dir', hash: dirHash(files), files, bytes };
}

async function hashOne(abs: string, st: Stats, options: HashOptions, buffer: Buffer): Promise<string> {
  if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
  const cached = options.statCache?.get(abs, st);
  if (cached) {
    options.onFile?.(st.size);
    return cached;
  }
  const hash = await hashFileWith(abs, buffer);
  // Re-check: a file changed while it was read must not be cached under the old stat.
  const after = await stat(abs);
  if (after.size === st.size && after.mtimeMs === st.mtimeMs && after.ino === st.ino) options.statCache?.set(abs, st, hash);
  options.onFile?.(st.size);
  return hash;
}

/** The hash of the part of a tree under `sub` (relative, `/`): used to predict a dep inside a cached out. */
export function subtreeHash(tree: TreeHash, sub: string): string | undefined {
  if (sub === '') return tree.hash;
  if (tree.type === 'file') return undefined;
  const exact = tree.files.find((f) => f.path === sub);
  if (exact) return exact.hash;
  const prefix = sub + '/';
  const files = tree.files.filter((f) => f.path.startsWith(prefix)).map((f) => ({ path: f.path.slice(prefix.length), hash: f.hash }));
  return files.length ? dirHash(files) : undefined;
}

/** Convert an OS path relative to a root into the `/`-separated form used in locks. */
export function toPosix(rel: string): string {
  return sep === '/' ? rel : rel.split(sep).join('/');
}
