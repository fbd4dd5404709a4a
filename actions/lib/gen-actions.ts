// `npm run gen:actions`: rewrites every actions/<kind>/action.yml from the stage kinds' specs and
// creates the thin main.ts of a new kind. `--check` changes nothing and exits 1 when a file is stale.

import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileAtomic } from '../../pipeline/core/fs.ts';
import { stageKinds } from '../../pipeline/stages.ts';
import { renderActionMain, renderActionYaml } from './action-yaml.ts';

/** Folders under actions/ that are not stage actions. */
export const NON_STAGE_ACTIONS: ReadonlySet<string> = new Set(['lib', 'setup', 'publish-evaluation', 'repro']);

export interface GenResult {
  /** Files (relative to root) whose content differs from what the generator produces. */
  changed: string[];
  /** actions/<dir> folders that match no stage kind. */
  orphans: string[];
}

export async function generateActions(root: string, { check = false } = {}): Promise<GenResult> {
  const changed: string[] = [];
  for (const kind of stageKinds.values()) {
    const files: [string, string, boolean][] = [
      [`actions/${kind.kind}/action.yml`, renderActionYaml(kind), true],
      // main.ts is only created, never overwritten: it is source a person may extend.
      [`actions/${kind.kind}/main.ts`, renderActionMain(kind), false],
    ];
    for (const [path, text, overwrite] of files) {
      const abs = join(root, path);
      const current = existsSync(abs) ? await readFile(abs, 'utf8') : undefined;
      if (current === text || (current !== undefined && !overwrite)) continue;
      changed.push(path);
      if (!check) await writeFileAtomic(abs, text);
    }
  }
  const dirs = (await readdir(join(root, 'actions'), { withFileTypes: true }))
    .filter((d) => d.isDirectory() && !NON_STAGE_ACTIONS.has(d.name))
    .map((d) => d.name);
  const orphans = dirs.filter((d) => !stageKinds.has(d)).map((d) => `actions/${d}`);
  return { changed, orphans };
}

async function main(): Promise<void> {
  // Two levels below the repository root both as source (actions/lib) and bundled (dist/tools).
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
  const check = process.argv.includes('--check');
  const { changed, orphans } = await generateActions(root, { check });
  for (const path of changed) console.log(check ? `stale: ${path}` : `wrote ${path}`);
  for (const dir of orphans) console.error(`${dir}: no stage kind of that name in pipeline/stages.ts; remove the folder`);
  if (!changed.length && !orphans.length) console.log(`actions: ${stageKinds.size} stage actions up to date`);
  if (orphans.length || (check && changed.length)) {
    if (check && changed.length) console.error('run `npm run gen:actions` and commit the result');
    process.exitCode = 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
