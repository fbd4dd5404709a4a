// A throwaway "checkout" of the repository for driving workflows end to end: the tracked sources
// a job reads (workflows, action.yml files, pipeline/, data/ definitions, package.json), the
// built dist/ (what ./actions/setup would build) and node_modules linked, not copied.

import { execFileSync } from 'node:child_process';
import { copyFile, cp, mkdir, mkdtemp, readdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');

/** Folders copied from the working tree as they are (tracked and untracked sources). */
const copiedDirs = ['actions', 'pipeline'];
/** The built bundles the actions run (what ./actions/setup builds on a runner). */
const builtDirs = ['dist'];

/**
 * Copy a folder file by file, skipping files that vanish meanwhile: another test may be
 * rebuilding dist/ (the build removes stale outputs), or an atomic write's temp file may come
 * and go, while this one copies it.
 */
async function copyTolerant(from: string, to: string): Promise<void> {
  let entries;
  try {
    entries = await readdir(from, { withFileTypes: true });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  await mkdir(to, { recursive: true });
  for (const entry of entries) {
    const [src, dest] = [join(from, entry.name), join(to, entry.name)];
    if (entry.isDirectory()) await copyTolerant(src, dest);
    else if (entry.isFile()) {
      await copyFile(src, dest).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'ENOENT') throw error;
      });
    }
  }
}

/**
 * A temp directory laid out like a fresh checkout with dependencies installed and bundles built.
 * Ignored outputs (data/raw, data/processed, .skintwin) are left out, as in a clean checkout.
 */
export async function prepareCheckout(prefix = 'checkout-'): Promise<string> {
  const dest = await mkdtemp(join(tmpdir(), prefix));
  for (const dir of [...copiedDirs, ...builtDirs]) await copyTolerant(join(repoRoot, dir), join(dest, dir));
  const tracked = execFileSync('git', ['ls-files', '-z', '--', 'data', 'models', 'package.json', '.node-version'], {
    cwd: repoRoot,
    encoding: 'utf8',
  })
    .split('\0')
    .filter(Boolean);
  for (const file of tracked) {
    await mkdir(dirname(join(dest, file)), { recursive: true });
    await cp(join(repoRoot, file), join(dest, file));
  }
  // Workflows are taken from the working tree, so uncommitted edits are what gets tested.
  await copyTolerant(join(repoRoot, '.github'), join(dest, '.github'));
  await symlink(join(repoRoot, 'node_modules'), join(dest, 'node_modules'), 'dir');
  return dest;
}
