// Listing a dataset tree: every regular file with its size, relative POSIX paths, sorted, so
// layouts and manifests come out the same on every machine. Links are never followed.

import { lstat, readdir } from 'node:fs/promises';
import { extname, join } from 'node:path';

export interface ListedFile {
  path: string;
  size: number;
}

/** Files the dataset manifest itself adds at the dataset root; never part of the data. */
export const MANIFEST_FILES = new Set(['manifest.json', 'files.jsonl']);

/** OS clutter archives carry along; ignored everywhere. */
export function isClutter(name: string): boolean {
  return name === '__MACOSX' || name === '.DS_Store' || name === 'Thumbs.db' || name.startsWith('._');
}

export const IMAGE_EXTENSIONS = new Set(['.jpg', '.jpeg', '.png', '.bmp', '.webp', '.tif', '.tiff', '.gif']);

export function isImage(path: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(path).toLowerCase());
}

const byPath = (a: { path: string }, b: { path: string }): number => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0);

/**
 * Every regular file under `dir` (relative, `/`-separated, sorted by code point), without the
 * manifest's own files at the root and without OS clutter. Symlinks and special files are skipped.
 */
export async function listFiles(dir: string, signal?: AbortSignal): Promise<ListedFile[]> {
  const out: ListedFile[] = [];
  const pending: string[] = [''];
  while (pending.length) {
    signal?.throwIfAborted();
    const rel = pending.pop()!;
    const entries = await readdir(join(dir, rel), { withFileTypes: true });
    for (const entry of entries) {
      if (isClutter(entry.name)) continue;
      const path = rel ? `${rel}/${entry.name}` : entry.name;
      if (entry.isDirectory()) pending.push(path);
      else if (entry.isFile()) {
        if (!rel && MANIFEST_FILES.has(entry.name)) continue;
        out.push({ path, size: (await lstat(join(dir, path))).size });
      }
    }
  }
  return out.sort(byPath);
}
