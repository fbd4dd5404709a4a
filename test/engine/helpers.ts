// Temp workspaces and small test-only stage kinds for the engine and CLI tests.

import { mkdir, mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { InterruptedError } from '../../pipeline/core/errors.ts';
import { commandStage } from '../../pipeline/command/stage.ts';
import { defineStage, type AnyStageKind } from '../../pipeline/core/stage.ts';

/** How often each test kind's `run` was called, per stage name. */
export const runs = new Map<string, number>();
/** Called when a `wait` stage has started (its partial output is staged). */
export const hooks: { started?: (stage: string) => void } = {};

function count(stage: string): void {
  runs.set(stage, (runs.get(stage) ?? 0) + 1);
}

async function readDep(path: string): Promise<string> {
  const st = await stat(path);
  if (st.isFile()) return readFile(path, 'utf8');
  const names = (await readdir(path, { recursive: true, withFileTypes: true })).filter((e) => e.isFile());
  const parts = await Promise.all(names.map(async (e) => `${e.name}:${await readFile(join(e.parentPath, e.name), 'utf8')}`));
  return parts.sort().join('|');
}

const concat = defineStage({
  kind: 'concat',
  title: 'Concatenate deps into each out (test kind)',
  params: {
    prefix: { type: 'string', default: '', description: 'Text before the content' },
    epochs: { type: 'integer', default: 1, description: 'Unused: a param with a typo-able name' },
    fail: { type: 'boolean', default: false, description: 'Write part of the out, then fail' },
    'skip-out': { type: 'boolean', default: false, description: 'Return without writing the outs' },
  },
  outputs: { length: 'Characters written' },
  codePaths: ['testkind'],
  async run(ctx) {
    count(ctx.name);
    const content = ctx.params.prefix + (await Promise.all(ctx.deps.map((d) => readDep(ctx.path(d))))).join('+');
    if (ctx.params['skip-out']) return { outputs: { length: '0' }, summary: '' };
    for (const out of ctx.outs) {
      await mkdir(dirname(ctx.out(out)), { recursive: true });
      await writeFile(ctx.out(out), ctx.params.fail ? 'PARTIAL' : content);
    }
    if (ctx.params.fail) throw new Error('boom after a partial write');
    return { outputs: { length: String(content.length) }, summary: `wrote ${content.length} chars`, reports: [...ctx.outs] };
  },
});

const gen = defineStage({
  kind: 'gen',
  title: 'Write a directory of files (test kind)',
  params: { files: { type: 'integer', default: 3, description: 'How many files' }, text: { type: 'string', default: 'x', description: 'Content' } },
  outputs: {},
  codePaths: ['testkind'],
  async run(ctx) {
    count(ctx.name);
    for (const out of ctx.outs) {
      await mkdir(join(ctx.out(out), 'sub'), { recursive: true });
      for (let i = 0; i < ctx.params.files; i++) await writeFile(join(ctx.out(out), i % 2 ? 'sub' : '', `f${i}.txt`), `${ctx.params.text}${i}`);
    }
    return { outputs: {}, summary: '' };
  },
});

const wait = defineStage({
  kind: 'wait',
  title: 'Stage a partial out, then wait for the abort signal (test kind)',
  params: {},
  outputs: {},
  codePaths: ['testkind'],
  async run(ctx) {
    count(ctx.name);
    for (const out of ctx.outs) await writeFile(ctx.out(out), 'PARTIAL');
    await new Promise<void>((_, reject) => {
      ctx.signal.addEventListener('abort', () => reject(new InterruptedError()), { once: true });
      hooks.started?.(ctx.name);
    });
    return { outputs: {}, summary: '' };
  },
});

/** Stages running `latch` at this moment, and the most seen at once. */
export const latch = { active: 0, max: 0 };

const latchKind = defineStage({
  kind: 'latch',
  title: 'Wait until another latch stage runs too, or give up after many event-loop turns (test kind)',
  params: {},
  outputs: {},
  codePaths: ['testkind'],
  async run(ctx) {
    count(ctx.name);
    latch.active++;
    latch.max = Math.max(latch.max, latch.active);
    // No timers: yield to the event loop until a second stage has joined, or enough turns passed.
    for (let turn = 0; turn < 20_000 && latch.active < 2; turn++) await new Promise((r) => setImmediate(r));
    latch.max = Math.max(latch.max, latch.active);
    await new Promise((r) => setImmediate(r));
    latch.active--;
    for (const out of ctx.outs) await writeFile(ctx.out(out), ctx.name);
    return { outputs: {}, summary: '' };
  },
});

const stub = defineStage({ kind: 'stub', title: 'Not built yet (test kind)', params: {}, outputs: {}, codePaths: ['stub'] });

export const testKinds: ReadonlyMap<string, AnyStageKind> = new Map(
  ([concat, gen, wait, latchKind, stub, commandStage] as AnyStageKind[]).map((k) => [k.kind, k]),
);

export interface Workspace {
  root: string;
  codeRoot: string;
  write(rel: string, text: string): Promise<void>;
  read(rel: string): Promise<string>;
  has(rel: string): Promise<boolean>;
  cleanup(): Promise<void>;
}

/** A temp repository with pipeline/pipeline.yaml and a code root for code versions. */
export async function workspace(yaml: string, files: Record<string, string> = {}): Promise<Workspace> {
  const base = await mkdtemp(join(tmpdir(), 'skintwin-engine-'));
  const root = join(base, 'repo');
  const codeRoot = join(base, 'code');
  const write = async (rel: string, text: string): Promise<void> => {
    await mkdir(dirname(join(root, rel)), { recursive: true });
    await writeFile(join(root, rel), text);
  };
  await mkdir(join(codeRoot, 'core'), { recursive: true });
  await mkdir(join(codeRoot, 'testkind'), { recursive: true });
  await writeFile(join(codeRoot, 'core', 'core.ts'), 'export const core = 1;\n');
  await writeFile(join(codeRoot, 'testkind', 'kind.ts'), 'export const kind = 1;\n');
  await write('pipeline/pipeline.yaml', yaml);
  for (const [rel, text] of Object.entries(files)) await write(rel, text);
  return {
    root,
    codeRoot,
    write,
    read: (rel) => readFile(join(root, rel), 'utf8'),
    has: (rel) => stat(join(root, rel)).then(() => true, () => false),
    cleanup: () => rm(base, { recursive: true, force: true }),
  };
}

/** Every file under `dir` with its content, for byte-identical comparisons. */
export async function snapshot(dir: string, skip: (rel: string) => boolean = () => false): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  for (const e of entries) {
    if (!e.isFile()) continue;
    const rel = join(e.parentPath, e.name).slice(dir.length + 1);
    if (!skip(rel)) out[rel] = await readFile(join(e.parentPath, e.name), 'utf8');
  }
  return out;
}
