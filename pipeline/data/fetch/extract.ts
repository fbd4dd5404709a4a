// Safe archive extraction (zip streamed with yauzl, tar / tar.gz with tar's parser) into a
// directory this stage owns. Entry paths are checked before anything is written, links and
// special files are never created, and the limits (bytes, entries, compression ratio) are
// enforced on the bytes actually written, not on what the headers claim.

import { createReadStream, createWriteStream, mkdirSync } from 'node:fs';
import { mkdir, open, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Transform, type TransformCallback, type Writable } from 'node:stream';
import { finished, pipeline } from 'node:stream/promises';
import { Parser, type ReadEntry } from 'tar';
import yauzl from 'yauzl';
import { DataError, InterruptedError } from '../../core/errors.ts';

export type ArchiveFormat = 'zip' | 'tar' | 'tar.gz';

export interface ExtractLimits {
  /** Total uncompressed bytes written, all entries together. */
  maxBytes: number;
  /** Number of entries (files, folders, links, anything) in the archive. */
  maxEntries: number;
  /** Uncompressed / compressed, per entry (zip) and for the whole archive. */
  maxRatio: number;
}

export const defaultExtractLimits: ExtractLimits = {
  maxBytes: 16 * 1024 ** 3,
  maxEntries: 1_000_000,
  maxRatio: 100,
};

/**
 * Below this many bytes the ratio is not checked: small, very compressible files (label text,
 * CSV headers, tar padding) legitimately exceed any sane ratio, and cannot hurt anyone.
 */
export const RATIO_FLOOR_BYTES = 1024 * 1024;

export interface SkippedEntry {
  path: string;
  /** `symlink`, `hardlink`, `character-device`, `block-device`, `fifo`, `socket`, … */
  type: string;
  reason: string;
}

export interface ExtractionReport {
  format: ArchiveFormat;
  entries: number;
  files: number;
  directories: number;
  /** Uncompressed bytes written. */
  bytes: number;
  /** Entries not extracted (links, devices, fifos), each with the reason. */
  skipped: SkippedEntry[];
}

export interface ExtractOptions {
  limits?: Partial<ExtractLimits>;
  signal?: AbortSignal;
}

/** Recognise an archive by its first bytes (names lie, and URLs often have none). */
export async function sniffArchive(file: string): Promise<ArchiveFormat | null> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, 512, 0);
    if (bytesRead >= 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5) && (head[3] === 4 || head[3] === 6)) {
      return 'zip';
    }
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'tar.gz';
    if (bytesRead >= 262 && head.toString('latin1', 257, 262) === 'ustar') return 'tar';
    return null;
  } finally {
    await handle.close();
  }
}

/**
 * Normalise an archive entry name to a safe relative POSIX path, or throw a DataError when the
 * entry would land outside the target (`../`, absolute paths, drive letters, NUL bytes).
 * Returns `''` for the archive root itself (`./`).
 */
export function safeEntryPath(name: string, archive: string): string {
  const reject = (why: string): never => {
    throw new DataError(`unsafe archive entry \`${name}\`: ${why}; nothing was extracted`, { file: archive, field: name });
  };
  if (name.includes('\0')) reject('contains a NUL byte');
  if (name.startsWith('/') || name.startsWith('\\')) reject('absolute path');
  if (/^[a-zA-Z]:/.test(name)) reject('Windows drive letter');
  if (name.includes('\\')) reject('backslash in path (Windows separators are not accepted)');
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.includes('..')) reject('`..` escapes the target folder');
  return parts.join('/');
}

/** Resolve `rel` under `root` and prove it stays inside (defence in depth after safeEntryPath). */
function inside(root: string, rel: string, archive: string): string {
  const full = resolve(root, rel);
  const back = relative(root, full);
  if (back === '' || back.startsWith('..') || isAbsolute(back) || back.split(sep).includes('..')) {
    throw new DataError(`unsafe archive entry \`${rel}\`: resolves outside the target folder`, { file: archive, field: rel });
  }
  return full;
}

/** Shared counters: every byte written passes through `count`, which enforces the limits. */
class Budget {
  bytes = 0;
  entries = 0;
  constructor(
    readonly limits: ExtractLimits,
    readonly archive: string,
    readonly archiveSize: number,
  ) {}

  entry(name: string): void {
    this.entries++;
    if (this.entries > this.limits.maxEntries) {
      throw new DataError(`archive has more than ${this.limits.maxEntries} entries (max-entries); stopped at \`${name}\``, {
        file: this.archive,
        hint: 'raise `max-entries` if this archive is trusted',
      });
    }
  }

  /** Checks before writing, from the (untrusted) header: fails early on an obvious bomb. */
  declared(name: string, uncompressed: number, compressed: number | undefined): void {
    if (this.bytes + uncompressed > this.limits.maxBytes) this.tooBig(name);
    if (compressed !== undefined && uncompressed > RATIO_FLOOR_BYTES && uncompressed / Math.max(compressed, 1) > this.limits.maxRatio) {
      this.ratio(name, uncompressed / Math.max(compressed, 1), 'entry');
    }
  }

  /** A limiter for one entry: counts what is really written. */
  counter(name: string, compressed: number | undefined): Transform {
    let written = 0;
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        written += chunk.length;
        this.bytes += chunk.length;
        try {
          if (this.bytes > this.limits.maxBytes) this.tooBig(name);
          if (compressed !== undefined && written > RATIO_FLOOR_BYTES && written / Math.max(compressed, 1) > this.limits.maxRatio) {
            this.ratio(name, written / Math.max(compressed, 1), 'entry');
          }
          if (this.bytes > RATIO_FLOOR_BYTES && this.bytes / Math.max(this.archiveSize, 1) > this.limits.maxRatio) {
            this.ratio(name, this.bytes / Math.max(this.archiveSize, 1), 'archive');
          }
        } catch (error) {
          cb(error as Error);
          return;
        }
        cb(null, chunk);
      },
    });
  }

  private tooBig(name: string): never {
    throw new DataError(
      `archive expands to more than ${this.limits.maxBytes} bytes (max-bytes); stopped at \`${name}\``,
      { file: this.archive, hint: 'raise `max-bytes` if this archive is trusted' },
    );
  }

  private ratio(name: string, ratio: number, scope: 'entry' | 'archive'): never {
    throw new DataError(
      `compression ratio ${ratio.toFixed(0)}:1 ${scope === 'entry' ? `of entry \`${name}\`` : `of the archive (at \`${name}\`)`} exceeds max-ratio ${this.limits.maxRatio}:1 — possible zip bomb`,
      { file: this.archive, hint: 'raise `max-ratio` if this archive is trusted' },
    );
  }
}

/**
 * Extract `archive` into the directory `target` (created; should be empty and owned by the
 * caller). On error the target is left partially written: extract into a temp folder and
 * place it only after success.
 */
export async function extractArchive(archive: string, target: string, options: ExtractOptions = {}): Promise<ExtractionReport> {
  const format = await sniffArchive(archive);
  if (!format) throw new DataError('not a zip, tar or tar.gz archive (unrecognised first bytes)', { file: archive });
  const limits = { ...defaultExtractLimits, ...options.limits };
  const { size } = await stat(archive);
  const budget = new Budget(limits, archive, size);
  await mkdir(target, { recursive: true });
  const root = resolve(target);
  const report: ExtractionReport = { format, entries: 0, files: 0, directories: 0, bytes: 0, skipped: [] };
  if (format === 'zip') await extractZip(archive, root, budget, report, options.signal);
  else await extractTar(archive, root, budget, report, options.signal);
  report.entries = budget.entries;
  report.bytes = budget.bytes;
  return report;
}

const S_IFMT = 0o170000;
const unixTypes: Record<number, string> = {
  0o120000: 'symlink',
  0o020000: 'character-device',
  0o060000: 'block-device',
  0o010000: 'fifo',
  0o140000: 'socket',
};

async function extractZip(archive: string, root: string, budget: Budget, report: ExtractionReport, signal?: AbortSignal): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    // validateEntrySizes (default on) also makes yauzl fail when an entry yields more bytes than declared.
    zip = await yauzl.openPromise(archive, { lazyEntries: true, autoClose: true, strictFileNames: false });
  } catch (error) {
    throw new DataError(`cannot read zip archive: ${(error as Error).message}`, { file: archive });
  }
  try {
    if (zip.entryCount > budget.limits.maxEntries) {
      throw new DataError(`archive has ${zip.entryCount} entries, more than max-entries ${budget.limits.maxEntries}`, {
        file: archive,
        hint: 'raise `max-entries` if this archive is trusted',
      });
    }
    const entries = zip.eachEntry();
    for (;;) {
      if (signal?.aborted) throw new InterruptedError();
      let next: IteratorResult<yauzl.Entry>;
      try {
        next = await entries.next();
      } catch (error) {
        throw zipError(error, archive);
      }
      if (next.done) break;
      const entry = next.value;
      budget.entry(entry.fileName);
      const rel = safeEntryPath(entry.fileName, archive);
      const isUnix = entry.versionMadeBy >> 8 === 3;
      const mode = isUnix ? (entry.externalFileAttributes >>> 16) & S_IFMT : 0;
      const special = unixTypes[mode];
      if (special) {
        report.skipped.push({ path: rel, type: special, reason: special === 'symlink' ? 'links are never extracted' : 'unsupported entry type' });
        continue;
      }
      if (entry.fileName.endsWith('/') || mode === 0o040000) {
        if (rel) await mkdir(inside(root, rel, archive), { recursive: true });
        report.directories++;
        continue;
      }
      if (!rel) continue;
      if (entry.isEncrypted()) throw new DataError(`entry \`${rel}\` is encrypted; encrypted archives are not supported`, { file: archive });
      if (!entry.canDecodeFileData()) {
        throw new DataError(`entry \`${rel}\` uses unsupported compression method ${entry.compressionMethod}`, { file: archive });
      }
      budget.declared(rel, entry.uncompressedSize, entry.compressedSize);
      const dest = inside(root, rel, archive);
      await mkdir(join(dest, '..'), { recursive: true });
      try {
        const stream = await zip.openReadStreamPromise(entry);
        await pipeline(stream, budget.counter(rel, entry.compressedSize), createWriteStream(dest, { flags: 'wx' }), signal ? { signal } : {});
      } catch (error) {
        throw zipError(error, archive, rel);
      }
      report.files++;
    }
  } finally {
    if (zip.isOpen) zip.close();
  }
}

function zipError(error: unknown, archive: string, entry?: string): Error {
  const e = error as NodeJS.ErrnoException;
  if (e.name === 'DataError' || e.name === 'AbortError' || e.name === 'InterruptedError') return e;
  if (e.code === 'EEXIST') return new DataError(`duplicate entry \`${entry}\` in archive`, { file: archive, field: entry });
  // yauzl's own path checks (absolute, `..`, backslash) and corrupt-data errors land here.
  const what = /absolute path|invalid relative path|invalid characters/.test(e.message) ? 'unsafe archive entry' : 'corrupt zip archive';
  return new DataError(`${what}${entry ? ` at \`${entry}\`` : ''}: ${e.message}; nothing was extracted`, { file: archive, field: entry });
}

const tarSkips: Record<string, string> = {
  SymbolicLink: 'symlink',
  Link: 'hardlink',
  CharacterDevice: 'character-device',
  BlockDevice: 'block-device',
  FIFO: 'fifo',
};

async function extractTar(archive: string, root: string, budget: Budget, report: ExtractionReport, signal?: AbortSignal): Promise<void> {
  const writes: Promise<void>[] = [];
  let failure: Error | undefined;
  const parser = new Parser({
    // Our own ratio check (with a floor for small archives) replaces tar's.
    maxDecompressionRatio: Number.MAX_VALUE,
    onReadEntry: (entry: ReadEntry) => {
      try {
        if (failure) throw failure;
        if (signal?.aborted) throw new InterruptedError();
        budget.entry(entry.path);
        const rel = safeEntryPath(entry.path, archive);
        const skip = tarSkips[entry.type];
        if (skip) {
          report.skipped.push({ path: rel, type: skip, reason: skip.endsWith('link') ? 'links are never extracted' : 'unsupported entry type' });
          entry.resume();
          return;
        }
        if (entry.type === 'Directory') {
          if (rel) mkdirSync(inside(root, rel, archive), { recursive: true });
          report.directories++;
          entry.resume();
          return;
        }
        if (entry.type !== 'File' && entry.type !== 'OldFile' && entry.type !== 'ContiguousFile') {
          report.skipped.push({ path: rel, type: entry.type, reason: 'unsupported entry type' });
          entry.resume();
          return;
        }
        if (!rel) {
          entry.resume();
          return;
        }
        budget.declared(rel, entry.size, undefined);
        const dest = inside(root, rel, archive);
        mkdirSync(join(dest, '..'), { recursive: true });
        const counter = budget.counter(rel, undefined);
        const out = createWriteStream(dest, { flags: 'wx' });
        const onError = (error: Error): void => {
          out.destroy();
          fail(tarError(error, archive, rel));
        };
        counter.on('error', onError);
        out.on('error', onError);
        entry.pipe(counter).pipe(out as Writable);
        writes.push(finished(out).then(
          () => void report.files++,
          (error: unknown) => fail(tarError(error, archive, rel)),
        ));
      } catch (error) {
        fail(error as Error);
        entry.resume();
      }
    },
  });
  const input = createReadStream(archive, { highWaterMark: 1 << 20 });
  function fail(error: Error): void {
    if (failure) return;
    failure = error;
    parser.abort(error);
    input.unpipe();
    input.destroy();
  }
  const done = new Promise<void>((resolvePromise) => {
    parser.on('end', () => resolvePromise());
    parser.on('close', () => resolvePromise());
    parser.on('abort', () => resolvePromise());
    parser.on('error', (error: Error) => {
      fail(tarError(error, archive));
      resolvePromise();
    });
  });
  parser.on('warn', (code: string, message: string) => {
    if (code === 'TAR_BAD_ARCHIVE' || code === 'TAR_ABORT' || code === 'TAR_ENTRY_INVALID') fail(new DataError(`corrupt tar archive: ${message}`, { file: archive }));
  });
  input.on('error', (error) => fail(error));
  input.pipe(parser as unknown as NodeJS.WritableStream);
  await done;
  await Promise.allSettled(writes);
  if (failure) throw failure;
}

function tarError(error: unknown, archive: string, entry?: string): Error {
  const e = error as NodeJS.ErrnoException;
  if (e.name === 'DataError' || e.name === 'AbortError' || e.name === 'InterruptedError') return e;
  if (e.code === 'EEXIST') return new DataError(`duplicate entry \`${entry}\` in archive`, { file: archive, field: entry });
  return new DataError(`corrupt tar archive${entry ? ` at \`${entry}\`` : ''}: ${e.message}`, { file: archive, field: entry });
}
