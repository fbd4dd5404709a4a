// The `path` source: a local directory (copied, links never followed) or a local file
// (an archive, extracted safely, or a single data file such as a CSV, copied).

import { copyFile, lstat, mkdir, readdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ConfigurationError, DataError, InterruptedError } from '../../core/errors.ts';
import { defaultExtractLimits, type ExtractLimits, type SkippedEntry } from './extract.ts';

export interface CopyReport {
  files: number;
  directories: number;
  bytes: number;
  skipped: SkippedEntry[];
}

/** Check that the `path` param exists; returns whether it is a directory. */
export async function statSource(abs: string, shown: string): Promise<'directory' | 'file'> {
  let st;
  try {
    st = await lstat(abs);
  } catch {
    throw new ConfigurationError(`\`path\`: \`${shown}\` does not exist`, { field: 'path' });
  }
  if (st.isSymbolicLink()) throw new ConfigurationError(`\`path\`: \`${shown}\` is a symlink; give the real path`, { field: 'path' });
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'file';
  throw new ConfigurationError(`\`path\`: \`${shown}\` is neither a file nor a directory`, { field: 'path' });
}

/**
 * Copy the tree `from` into `to` (created). Regular files and folders only: symlinks and special
 * files are skipped and reported, never followed. The extraction limits apply here too.
 */
export async function copyTree(
  from: string,
  to: string,
  options: { limits?: Partial<ExtractLimits>; signal?: AbortSignal } = {},
): Promise<CopyReport> {
  const limits = { ...defaultExtractLimits, ...options.limits };
  const report: CopyReport = { files: 0, directories: 0, bytes: 0, skipped: [] };
  let entries = 0;
  const pending: string[] = [''];
  await mkdir(to, { recursive: true });
  while (pending.length) {
    const rel = pending.pop()!;
    for (const entry of await readdir(join(from, rel), { withFileTypes: true })) {
      if (options.signal?.aborted) throw new InterruptedError();
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (++entries > limits.maxEntries) {
        throw new DataError(`more than ${limits.maxEntries} entries (max-entries)`, { file: from, hint: 'raise `max-entries`' });
      }
      if (entry.isDirectory()) {
        await mkdir(join(to, path));
        report.directories++;
        pending.push(path);
      } else if (entry.isFile()) {
        const { size } = await lstat(join(from, path));
        report.bytes += size;
        if (report.bytes > limits.maxBytes) {
          throw new DataError(`more than ${limits.maxBytes} bytes (max-bytes); stopped at \`${path}\``, { file: from, hint: 'raise `max-bytes`' });
        }
        await copyFile(join(from, path), join(to, path));
        report.files++;
      } else {
        const type = entry.isSymbolicLink() ? 'symlink' : entry.isFIFO() ? 'fifo' : entry.isSocket() ? 'socket' : 'device';
        report.skipped.push({ path, type, reason: type === 'symlink' ? 'links are never followed' : 'unsupported entry type' });
      }
    }
  }
  return report;
}

/** A single non-archive file becomes a one-file dataset under its own name. */
export async function copySingleFile(file: string, to: string, name = basename(file)): Promise<void> {
  await mkdir(to, { recursive: true });
  await copyFile(file, join(to, name));
}
