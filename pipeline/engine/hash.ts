// Content hashing for deps, outs and code: streamed sha256 per file with a stat cache
// (path, size, mtime, inode → sha256) so unchanged trees are never re-read.

import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { stat as fsStat, type Stats } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { sep } from 'node:path';
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

  /** Forget entries under `prefix` that are not in `current` (files deleted since they were hashed). */
  prune(prefix: string, current: readonly string[]): void {
    let under = 0;
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) under++;
    if (under <= current.length) return;
    const keep = new Set(current);
    for (const key of [...this.entries.keys()]) {
      if (key.startsWith(prefix) && !keep.has(key)) {
        this.entries.delete(key);
        this.dirty = true;
      }
    }
  }

  /** Whether any entry lies under `prefix` (a folder path ending with the separator). */
  hasUnder(prefix: string): boolean {
    for (const key of this.entries.keys()) if (key.startsWith(prefix)) return true;
    return false;
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
      // Plain concatenation: names from readdir need none of path.join's normalisation.
      const childAbs = abs + sep + entry.name;
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
  // Chunks of lines: one update per line costs more than the hashing itself on big trees.
  for (let i = 0; i < files.length; i += 4096) {
    let chunk = '';
    for (const f of files.slice(i, i + 4096)) chunk += `${f.path}\t${f.hash}\n`;
    h.update(chunk);
  }
  return h.digest('hex');
}

export interface HashOptions {
  statCache?: StatCache;
  signal?: AbortSignal;
  /** Called after each file actually read (stat cache hits are not reported): progress. */
  onFile?: (bytes: number) => void;
}

/** A hashed file with the stat taken on its open descriptor (what the stat cache records). */
type HashedFile = [hash: string, size: number, mtimeMs: number, ino: number];
/** A file too large to read synchronously on the main thread: hashed asynchronously instead. */
type LargeFile = { large: true };

/**
 * Hash one file synchronously with a caller-owned buffer: open, fstat, one read per buffer-full,
 * close: as many system calls as a plain read. Self-contained (its source also runs in the
 * helper thread), so it takes its modules as arguments.
 */
function hashFileSync(
  fsModule: typeof import('node:fs'),
  cryptoModule: typeof import('node:crypto'),
  buffer: Buffer,
  path: string,
  maxBytes: number,
): HashedFile | LargeFile {
  const fd = fsModule.openSync(path, 'r');
  try {
    const st = fsModule.fstatSync(fd);
    if (st.size > maxBytes) return { large: true };
    let n = fsModule.readSync(fd, buffer, 0, buffer.length, null);
    let hex: string;
    if (n < buffer.length && typeof cryptoModule.hash === 'function') {
      // The whole file in one read (a short read is end of file): one-shot digest.
      hex = cryptoModule.hash('sha256', buffer.subarray(0, n), 'hex');
    } else {
      const h = cryptoModule.createHash('sha256');
      for (;;) {
        if (n > 0) h.update(n === buffer.length ? buffer : buffer.subarray(0, n));
        if (n < buffer.length) break;
        n = fsModule.readSync(fd, buffer, 0, buffer.length, null);
      }
      hex = h.digest('hex');
    }
    return [hex, st.size, st.mtimeMs, st.ino];
  } finally {
    fsModule.closeSync(fd);
  }
}

/**
 * The helper thread: it receives the whole list once and claims batches from a counter shared
 * with the main thread (work stealing without a message per batch), then answers once with
 * flattened `index, hash, size, mtimeMs, ino` entries.
 */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const crypto = require('node:crypto');
const buffer = Buffer.allocUnsafe(${READ_BUFFER_BYTES});
const hashFileSync = ${hashFileSync.toString()};
parentPort.on('message', ({ id, paths, shared, batch }) => {
  const counter = new Int32Array(shared);
  const out = [];
  try {
    for (;;) {
      const start = Atomics.add(counter, 0, batch);
      if (start >= paths.length) break;
      const end = Math.min(paths.length, start + batch);
      for (let i = start; i < end; i++) out.push(i, ...hashFileSync(fs, crypto, buffer, paths[i], Infinity));
    }
    parentPort.postMessage({ id, out });
  } catch (e) {
    Atomics.store(counter, 0, paths.length);
    parentPort.postMessage({ id, error: String((e && e.message) || e) });
  }
});
`;

interface WorkerAnswer {
  id: number;
  out?: (string | number)[];
  error?: string;
}

/**
 * One helper thread per process, started on the first large hashing job: on 2 cores the main
 * thread and the helper each read and hash part of the files, so first-time hashing keeps up
 * with plain sequential reads.
 */
class HashWorker {
  private static instance: HashWorker | undefined;
  private readonly worker: Worker;
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (v: WorkerAnswer) => void; reject: (e: Error) => void }>();

  private constructor() {
    this.worker = new Worker(WORKER_SOURCE, { eval: true });
    this.worker.unref();
    this.worker.on('message', (answer: WorkerAnswer) => {
      this.pending.get(answer.id)?.resolve(answer);
      this.pending.delete(answer.id);
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

  run(paths: readonly string[], shared: SharedArrayBuffer, batch: number): Promise<WorkerAnswer> {
    return new Promise((resolvePromise, reject) => {
      const id = this.nextId++;
      this.pending.set(id, { resolve: resolvePromise, reject });
      this.worker.ref();
      this.worker.postMessage({ id, paths, shared, batch });
    });
  }
}

/** Files per claimed batch: small enough to share work evenly and keep the event loop responsive. */
const BATCH = 128;
/** Below this many files to read, starting the helper thread costs more than it saves. */
const WORKER_MIN_FILES = 2000;
const mainBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);

/** Stat with the callback API: on small machines it is several times cheaper than fs/promises. */
function statCb(path: string): Promise<Stats> {
  return new Promise((resolvePromise, reject) => fsStat(path, (error, st) => (error ? reject(error) : resolvePromise(st))));
}

async function hashLarge(path: string): Promise<HashedFile> {
  const before = await statCb(path);
  return [await sha256File(path), before.size, before.mtimeMs, before.ino];
}

/** Hash files (absolute paths) in batches shared between this thread and, for large jobs, the helper. */
async function hashFiles(paths: readonly string[], options: HashOptions): Promise<HashedFile[]> {
  const results = new Array<HashedFile>(paths.length);
  const counter = new Int32Array(new SharedArrayBuffer(4));
  const useHelper = paths.length >= WORKER_MIN_FILES && availableParallelism() > 1;
  const helper = useHelper ? HashWorker.get().run(paths, counter.buffer as SharedArrayBuffer, BATCH) : undefined;
  try {
    for (;;) {
      if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
      const start = Atomics.add(counter, 0, BATCH);
      if (start >= paths.length) break;
      const end = Math.min(paths.length, start + BATCH);
      for (let i = start; i < end; i++) {
        const r = hashFileSync(fs, crypto, mainBuffer, paths[i]!, READ_BUFFER_BYTES);
        // A big file is read asynchronously so it never blocks the event loop for long.
        results[i] = Array.isArray(r) ? r : await hashLarge(paths[i]!);
        options.onFile?.(results[i]![1]);
      }
      if (useHelper) await new Promise<void>((r) => setImmediate(r)); // let signals in
    }
  } catch (error) {
    Atomics.store(counter, 0, paths.length); // the helper stops claiming
    await helper?.catch(() => undefined);
    throw error;
  }
  if (helper) {
    const answer = await helper;
    if (answer.error) throw new Error(`cannot hash: ${answer.error}`);
    const out = answer.out ?? [];
    for (let k = 0; k < out.length; k += 5) {
      const i = out[k] as number;
      results[i] = [out[k + 1] as string, out[k + 2] as number, out[k + 3] as number, out[k + 4] as number];
      options.onFile?.(out[k + 2] as number);
    }
  }
  return results;
}

/**
 * Hash a file or a directory tree. Returns undefined when `path` does not exist.
 * Files whose (size, mtime, inode) match the stat cache are not read. A tree the stat cache knows
 * nothing about is hashed without a separate stat pass (each file is stat'ed on its descriptor).
 * A file changed while it is read is cached under the stat taken before reading, so the change is
 * seen next time.
 */
export async function hashTree(path: string, options: HashOptions = {}): Promise<TreeHash | undefined> {
  const top = await statCb(path).catch(() => undefined);
  if (!top) return undefined;
  const cache = options.statCache;
  if (top.isFile()) {
    let hash = cache?.get(path, top);
    if (!hash) {
      const [r] = await hashFiles([path], options);
      hash = r![0];
      cache?.set(path, top, hash);
    }
    return { type: 'file', hash, files: [{ path: '', hash, size: top.size }], bytes: top.size };
  }
  const rels = await listFiles(path);
  const base = path.endsWith(sep) ? path : path + sep;
  const abs = rels.map((rel) => base + (sep === '/' ? rel : rel.split('/').join(sep)));
  const hashes = new Array<string>(rels.length);
  const sizes = new Array<number>(rels.length);
  if (!cache || !cache.hasUnder(base)) {
    const read = await hashFiles(abs, options);
    read.forEach(([hash, size, mtimeMs, ino], i) => {
      hashes[i] = hash;
      sizes[i] = size;
      cache?.set(abs[i]!, { size, mtimeMs, ino }, hash);
    });
  } else {
    const stats = await mapLimit(abs, STAT_CONCURRENCY, (p) => statCb(p));
    const toRead: number[] = [];
    for (let i = 0; i < rels.length; i++) {
      sizes[i] = stats[i]!.size;
      const cached = cache.get(abs[i]!, stats[i]!);
      if (cached) hashes[i] = cached;
      else toRead.push(i);
    }
    if (toRead.length) {
      const read = await hashFiles(toRead.map((i) => abs[i]!), options);
      toRead.forEach((i, k) => {
        hashes[i] = read[k]![0];
        sizes[i] = read[k]![1];
        // Cached under the stat taken before reading: a change during the read shows next time.
        cache.set(abs[i]!, stats[i]!, read[k]![0]);
      });
    }
  }
  cache?.prune(base, abs);
  let bytes = 0;
  const files = rels.map((rel, i) => {
    bytes += sizes[i]!;
    return { path: rel, hash: hashes[i]!, size: sizes[i]! };
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
