// The forge on a laptop: the same records GitHub would hold, as JSON files under
// .skintwin/forge/, so `skintwin publish-evaluation` shows exactly the comment and check run a
// pull request would get, with no token and no network. Each record is written atomically.

import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from '../core/errors.ts';
import { writeFileAtomic, writeJsonAtomic } from '../core/fs.ts';
import type { CheckRunInput, Forge, ForgeCheckRun, ForgeComment } from './forge.ts';

/** Where the local forge keeps its records, relative to the repository root. */
export const LOCAL_FORGE_DIR = '.skintwin/forge';
/** The author of everything the local forge writes. */
export const LOCAL_AUTHOR = 'skintwin-local';

export interface LocalForgeOptions {
  /** Absolute repository root. */
  root: string;
  /** Folder of the records (default: <root>/.skintwin/forge). */
  dir?: string;
}

interface StoredComment extends ForgeComment {
  issue: number;
}

async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch (error) {
    throw new DataError(`not valid JSON: ${(error as Error).message}`, { file: path, hint: 'remove the file to start the local forge afresh' });
  }
}

/** Numbered JSON records in `dir`, by ascending id. */
async function records<T>(dir: string): Promise<T[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const ids = names.map((n) => /^(\d+)\.json$/.exec(n)?.[1]).filter((x): x is string => x !== undefined).map(Number).sort((a, b) => a - b);
  const out: T[] = [];
  for (const id of ids) {
    const r = await readJson<T>(join(dir, `${id}.json`));
    if (r) out.push(r);
  }
  return out;
}

export function createLocalForge(options: LocalForgeOptions): Forge {
  const dir = options.dir ?? join(options.root, LOCAL_FORGE_DIR);
  const commentsDir = join(dir, 'comments');
  const checksDir = join(dir, 'check-runs');
  const issueDir = (n: number) => join(dir, 'issues', String(n));

  async function nextId(): Promise<number> {
    const path = join(dir, 'next-id.json');
    const current = (await readJson<{ next: number }>(path))?.next ?? 1;
    await writeJsonAtomic(path, { next: current + 1 });
    return current;
  }

  async function saveComment(c: StoredComment): Promise<ForgeComment> {
    await writeJsonAtomic(join(commentsDir, `${c.id}.json`), c);
    // The body as a file a person opens: what the pull request comment would show.
    await writeFileAtomic(join(issueDir(c.issue), `comment-${c.id}.md`), c.body);
    const { issue: _issue, ...rest } = c;
    return rest;
  }

  async function saveCheck(run: ForgeCheckRun): Promise<ForgeCheckRun> {
    await writeJsonAtomic(join(checksDir, `${run.id}.json`), run);
    return run;
  }

  const toCheck = (id: number, run: CheckRunInput): ForgeCheckRun => ({
    id,
    name: run.name,
    headSha: run.headSha,
    status: 'completed',
    conclusion: run.conclusion,
    title: run.title,
    summary: run.summary,
    text: run.text ?? null,
  });

  return {
    name: 'local',
    author: LOCAL_AUTHOR,
    async *comments(issue) {
      for (const c of await records<StoredComment>(commentsDir)) {
        if (c.issue !== issue) continue;
        const { issue: _issue, ...rest } = c;
        yield rest;
      }
    },
    async createComment(issue, body) {
      await mkdir(issueDir(issue), { recursive: true });
      return saveComment({ id: await nextId(), issue, body, author: LOCAL_AUTHOR });
    },
    async updateComment(id, body) {
      const c = await readJson<StoredComment>(join(commentsDir, `${id}.json`));
      if (!c) throw new DataError(`comment ${id} does not exist`, { file: join(commentsDir, `${id}.json`) });
      return saveComment({ ...c, body });
    },
    async findCheckRun(headSha, name) {
      const all = await records<ForgeCheckRun>(checksDir);
      return all.filter((r) => r.headSha === headSha && r.name === name).at(-1) ?? null;
    },
    async createCheckRun(run) {
      return saveCheck(toCheck(await nextId(), run));
    },
    async updateCheckRun(id, run) {
      const existing = await readJson<ForgeCheckRun>(join(checksDir, `${id}.json`));
      if (!existing) throw new DataError(`check run ${id} does not exist`, { file: join(checksDir, `${id}.json`) });
      return saveCheck(toCheck(id, run));
    },
    async removeLabel(issue, name) {
      const path = join(issueDir(issue), 'labels.json');
      const labels = (await readJson<string[]>(path)) ?? [];
      const kept = labels.filter((l) => l.toLowerCase() !== name.toLowerCase());
      if (kept.length === labels.length) return false;
      await writeJsonAtomic(path, kept);
      return true;
    },
    async pullRequestHead(pr) {
      return (await readJson<{ headSha: string }>(join(issueDir(pr), 'pull-request.json')))?.headSha ?? null;
    },
  };
}
