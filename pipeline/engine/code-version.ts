// The code version of a stage kind: a hash of the source files in its `codePaths` folders
// under pipeline/ plus pipeline/core. Changing that code makes the kind's stages stale.

import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { hashTree, type StatCache } from './hash.ts';

const PACKAGE_NAME = 'skin-twin-mlops';

/**
 * The project's pipeline/ folder, found by walking up from this module (source or bundle) to the
 * package.json named `skin-twin-mlops`. Undefined when the sources are not shipped alongside.
 */
export function findCodeRoot(from: string = import.meta.url): string | undefined {
  let dir = dirname(from.startsWith('file:') ? fileURLToPath(from) : from);
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === PACKAGE_NAME) return join(dir, 'pipeline');
    } catch {
      // No package.json here: keep walking up.
    }
    const parent = dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}

/** Hashes code folders once per run; folders are shared by kinds (pipeline/core by all). */
export class CodeVersions {
  private folders = new Map<string, Promise<string>>();

  constructor(
    readonly codeRoot: string | undefined,
    private readonly statCache?: StatCache,
  ) {}

  private folder(name: string): Promise<string> {
    let hash = this.folders.get(name);
    if (!hash) {
      const root = this.codeRoot;
      hash = root
        ? hashTree(join(root, name), this.statCache ? { statCache: this.statCache } : {}).then((t) => t?.hash ?? 'absent')
        : Promise.resolve('unknown');
      this.folders.set(name, hash);
    }
    return hash;
  }

  /** sha256 over `folder\thash` lines of pipeline/core and the kind's code folders, sorted. */
  async of(codePaths: readonly string[]): Promise<string> {
    const names = [...new Set(['core', ...codePaths])].sort();
    const h = createHash('sha256');
    for (const name of names) h.update(`${name}\t${await this.folder(name)}\n`);
    return h.digest('hex');
  }
}
