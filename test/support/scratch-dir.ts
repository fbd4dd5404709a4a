// A temporary directory for one test file: created before its tests, removed after them, with a
// helper that writes a file into it and returns the path.

import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';

export interface ScratchDir {
  /** The directory (set once the file's tests start). */
  readonly path: string;
  /** Write `bytes` to `name` inside it; the file's path. */
  save(name: string, bytes: Uint8Array): Promise<string>;
}

export function scratchDir(prefix: string): ScratchDir {
  let path = '';
  beforeAll(async () => {
    path = await mkdtemp(join(tmpdir(), `${prefix}-`));
  });
  afterAll(async () => {
    if (path) await rm(path, { recursive: true, force: true });
  });
  return {
    get path() {
      return path;
    },
    async save(name, bytes) {
      const file = join(path, name);
      await writeFile(file, bytes);
      return file;
    },
  };
}
