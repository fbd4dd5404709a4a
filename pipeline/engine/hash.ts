// Content hashing for deps, outs and code: streamed sha256 per file with a stat cache
// (path, size, mtime, inode → sha256) so unchanged trees are never re-read.

import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { stat as fsStat, type Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join, sep } from 'node:path';
import { Worker } from 'node:worker_threads';
import { sha256File, writeFileAtomic } from '../core/fs.ts';

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
const STAT_CONCURRENCY = 64;

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
 * Hash one file synchronously with a caller-owned buffer: open, one read per buffer-full, close.
 * Self-contained (its source also runs inside the hashing worker), so it takes its modules as
 * arguments. A read shorter than requested means end of file, so a small file costs one read.
 */
function hashFileSync(fsModule: typeof import('node:fs'), cryptoModule: typeof import('node:crypto'), buffer: Buffer, path: string): string {
  const hash = cryptoModule.createHash('sha256');
  const fd = fsModule.openSync(path, 'r');
  try {
    for (;;) {
      const n = fsModule.readSync(fd, buffer, 0, buffer.length, null);
      if (n > 0) hash.update(n === buffer.length ? buffer : buffer.subarray(0, n));
      if (n < buffer.length) break;
    }
  } finally {
    fsModule.closeSync(fd);
  }
  return hash.digest('hex');
}

const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const buffer = Buffer.allocUnsafe(${READ_BUFFER_BYTES});
const hashFileSync = ${hashFileSync.toString()};
parentPort.on('message', ({ id, paths }) => {
  const out = paths.map((p) => {
    try { return hashFileSync(fs, crypto, buffer, p); } catch (e) { return { error: String((e && e.message) || e) }; }
  });
  parentPort.postMessage({ id, out });
});
`;

/**
 * One helper thread per process, started on the first large hashing job: on 2 cores the main
 * thread and the helper each read and hash half the files, which brings first-time hashing close
 * to plain read throughput (sha256 alone is slower than the disk on small machines).
 */
class HashWorker {
  private static instance: HashWorker | undefined;
  private readonly worker: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: (string | { error: string })[]) => void; reject: (e: Error) => void }>();

  private constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', ({ id, out }: { id: number; out: (string | { error: string })[] }) => {
      this.pending.get(id)?.resolve(out);
      this.pending.delete(id);
      // Idle, the helper must not keep the process alive; busy, it must (it is all we wait for).
      if (!this.pending.size) this.worker.unref();
    });
    this.worker.on('error', (error) => this.failAll(error));
    this.worker.on('exit', () => this.failAll(new Error('hashing worker exited')));
  }

  private failAll(error: Error): void {
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    HashWorker.instance = undefined;
  }

  static get(): HashWorker {
    return (HashWorker.instance ??= new HashWorker());
  }

  hash(paths: string[]): Promise<(string | { error: string })[]> {
    return new Promise((resolvePromise, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve: resolvePromise, reject });
      this.worker.ref();
      this.worker.postMessage({ id, paths });
    });
  }
}

/** Files per batch: small enough to share work evenly and keep the event loop responsive. */
const BATCH = 64;
/** Below this many files to read, starting the helper thread costs more than it saves. */
const WORKER_MIN_FILES = 2000;
const mainBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/** Stat with the callback API: on small machines it is several times cheaper than fs/promises. */
function statCb(path: string): Promise<Stats> {
  return new Promise((resolvePromise, reject) => fsStat(path, (error, st) => (error ? reject(error) : resolvePromise(st))));
}

/** Hash files (absolute paths) in batches shared between this thread and, for large jobs, the helper. */
async function hashFiles(paths: readonly string[], sizes: readonly number[], options: HashOptions): Promise<string[]> {
  const hashes = new Array<string>(paths.length);
  let next = 0;
  const take = (): [number, number] | undefined => {
    if (next >= paths.length) return undefined;
    const start = next;
    next = Math.min(paths.length, next + BATCH);
    return [start, next];
  };
  const check = (): void => {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
  };
  const mainLoop = async (): Promise<void> => {
    for (let range = take(); range; range = take()) {
      check();
      for (let i = range[0]; i < range[1]; i++) {
        // Large files are read asynchronously so a single big file never blocks the event loop.
        hashes[i] = sizes[i]! > READ_BUFFER_BYTES ? await sha256File(paths[i]!) : hashFileSync(fs, crypto, mainBuffer, paths[i]!);
        options.onFile?.(sizes[i]!);
      }
      await new Promise<void>((r) => setImmediate(r)); // let helper results and signals in
    }
  };
  const helperLoop = async (): Promise<void> => {
    const worker = HashWorker.get();
    for (let range = take(); range; range = take()) {
      check();
      const out = await worker.hash(paths.slice(range[0], range[1]) as string[]);
      out.forEach((h, k) => {
        if (typeof h !== 'string') throw new Error(`cannot hash ${paths[range[0] + k]}: ${h.error}`);
        hashes[range[0] + k] = h;
        options.onFile?.(sizes[range[0] + k]!);
      });
    }
  };
  const loops = [mainLoop()];
  if (paths.length >= WORKER_MIN_FILES && availableParallelism() > 1) loops.push(helperLoop());
  await Promise.all(loops);
  return hashes;
}

/**
 * Hash a file or a directory tree. Returns undefined when `path` does not exist.
 * Files whose (size, mtime, inode) match the stat cache are not read. A file changed while it is
 * read is cached under the stat taken before reading, so the change is seen next time.
 */
export async function hashTree(path: string, options: HashOptions = {}): Promise<TreeHash | undefined> {
  const top = await statCb(path).catch(() => undefined);
  if (!top) return undefined;
  if (top.isFile()) {
    let hash = options.statCache?.get(path, top);
    if (!hash) {
      [hash] = await hashFiles([path], [top.size], options);
      options.statCache?.set(path, top, hash!);
    } else options.onFile?.(top.size);
    return { type: 'file', hash: hash!, files: [{ path: '', hash: hash!, size: top.size }], bytes: top.size };
  }
  const rels = await listFiles(path);
  const abs = rels.map((rel) => join(path, rel));
  const stats = await mapLimit(abs, STAT_CONCURRENCY, (p) => statCb(p));
  const hashes = new Array<string>(rels.length);
  const toRead: number[] = [];
  for (let i = 0; i < rels.length; i++) {
    const cached = options.statCache?.get(abs[i]!, stats[i]!);
    if (cached) {
      hashes[i] = cached;
      options.onFile?.(stats[i]!.size);
    } else toRead.push(i);
  }
  if (toRead.length) {
    const read = await hashFiles(
      toRead.map((i) => abs[i]!),
      toRead.map((i) => stats[i]!.size),
      options,
    );
    toRead.forEach((i, k) => {
      hashes[i] = read[k]!;
      options.statCache?.set(abs[i]!, stats[i]!, read[k]!);
    });
  }
  let bytes = 0;
  const files = rels.map((rel, i) => {
    bytes += stats[i]!.size;
    return { path: rel, hash: hashes[i]!, size: stats[i]!.size };
  });
  return { type: 'dir', hash: dirHash(files), files, bytes };
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
