import { createHash } from 'node:crypto';
import { chmod, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RemoteCache } from '../../pipeline/core/ports.ts';
import { loadPipeline, repro, status } from '../../pipeline/engine/index.ts';
import type { LoadOptions } from '../../pipeline/engine/types.ts';
import { RecordingLogger } from '../support/logger.ts';
import { hooks, latch, runs, snapshot, testKinds, workspace, type Workspace } from './helpers.ts';

const PIPELINE = `settings:
  jobs: 2
stages:
  make:
    kind: gen
    params: { files: 3 }
    outs: [data/gen]
  left:
    kind: concat
    params: { prefix: "L:" }
    deps: [data/gen, input.txt]
    outs: [data/left.txt]
  right:
    kind: concat
    deps: [data/gen/sub]
    outs: [data/right.txt]
`;

let ws: Workspace | undefined;
afterEach(async () => {
  await ws?.cleanup();
  ws = undefined;
  runs.clear();
  delete hooks.started;
});

async function setup(yaml = PIPELINE): Promise<Workspace> {
  ws = await workspace(yaml, { 'input.txt': 'hello' });
  return ws;
}

async function load(w: Workspace, extra: Partial<LoadOptions> = {}) {
  return loadPipeline({ root: w.root, kinds: testKinds, ...extra });
}

async function reproIn(w: Workspace, opts: Partial<Parameters<typeof repro>[1]> & { overrides?: LoadOptions['overrides'] } = {}) {
  const logger = new RecordingLogger();
  const { overrides, ...rest } = opts;
  const p = await load(w, overrides ? { overrides } : {});
  const report = await repro(p, { logger, codeRoot: w.codeRoot, ...rest });
  return { report, logger, actions: Object.fromEntries(report.stages.map((s) => [s.stage, s.action])) };
}

describe('repro', () => {
  it('runs every stage once, then skips them all', async () => {
    const w = await setup();
    const first = await reproIn(w);
    expect(first.report.ok).toBe(true);
    expect(first.actions).toEqual({ make: 'ran', left: 'ran', right: 'ran' });
    expect(await w.read('data/left.txt')).toBe('L:f0.txt:x0|f1.txt:x1|f2.txt:x2+hello');
    expect(await w.read('data/right.txt')).toBe('f1.txt:x1');
    const lock = await w.read('pipeline/pipeline.lock');
    expect(lock).toMatch(/left:\n\s+code: [0-9a-f]{64}/);
    expect(lock).toContain('input.txt:');

    const second = await reproIn(w);
    expect(second.actions).toEqual({ make: 'skipped', left: 'skipped', right: 'skipped' });
    expect(second.report.stages.find((s) => s.stage === 'left')?.outputs).toEqual({ length: String('L:f0.txt:x0|f1.txt:x1|f2.txt:x2+hello'.length) });
    expect(runs.get('left')).toBe(1);
    expect(await w.read('pipeline/pipeline.lock')).toBe(lock);
  });

  it('refuses a second repro in the same checkout while one runs, and runs once it is over', async () => {
    const w = await setup(`stages:\n  hold:\n    kind: wait\n    outs: [out.txt]\n`);
    const controller = new AbortController();
    const started = new Promise<void>((resolve) => {
      hooks.started = () => resolve();
    });
    const first = repro(await load(w), { logger: new RecordingLogger(), codeRoot: w.codeRoot, signal: controller.signal });
    await started;
    await expect(repro(await load(w), { logger: new RecordingLogger(), codeRoot: w.codeRoot })).rejects.toThrow(/already running/);
    controller.abort();
    await expect(first).rejects.toMatchObject({ name: 'InterruptedError' });
    // Released on the way out, even after an interruption.
    expect(await w.has('.skintwin/cache/repro.pid')).toBe(false);
  });

  it('re-runs only the stages whose dep changed', async () => {
    const w = await setup();
    await reproIn(w);
    await w.write('input.txt', 'changed');
    const st = await status(await load(w), { logger: new RecordingLogger(), codeRoot: w.codeRoot });
    expect(st.map((s) => [s.stage, s.state])).toEqual([['make', 'up-to-date'], ['left', 'stale'], ['right', 'up-to-date']]);
    expect(st[1]!.reasons).toEqual([{ type: 'dep-changed', path: 'input.txt' }]);
    const { actions } = await reproIn(w);
    expect(actions).toEqual({ make: 'skipped', left: 'ran', right: 'skipped' });
    expect(await w.read('data/left.txt')).toMatch(/\+changed$/);
  });

  it('re-runs on a param change, naming the param, and downstream only when the out changed', async () => {
    const w = await setup();
    await reproIn(w);
    const p = await load(w, { overrides: { make: { text: 'y' } } });
    const st = await status(p, { logger: new RecordingLogger(), codeRoot: w.codeRoot });
    expect(st[0]).toMatchObject({ stage: 'make', state: 'stale', reasons: [{ type: 'param-changed', param: 'text' }] });
    expect(st[1]!.reasons).toEqual([{ type: 'upstream-stale', stage: 'make' }]);
    const { actions } = await reproIn(w, { overrides: { make: { text: 'y' } } });
    expect(actions).toEqual({ make: 'ran', left: 'ran', right: 'ran' });
    expect(await w.read('data/right.txt')).toBe('f1.txt:y1');
  });

  it('re-runs when the code of the kind changes', async () => {
    const w = await setup();
    await reproIn(w);
    await writeFile(join(w.codeRoot, 'testkind', 'kind.ts'), 'export const kind = 2;\n');
    const st = await status(await load(w), { logger: new RecordingLogger(), codeRoot: w.codeRoot });
    expect(st.every((s) => s.reasons.some((r) => r.type === 'code-changed'))).toBe(true);
    const { actions } = await reproIn(w);
    expect(actions).toEqual({ make: 'ran', left: 'ran', right: 'ran' });
    // pipeline/core is part of every kind's code version too.
    await writeFile(join(w.codeRoot, 'core', 'core.ts'), 'export const core = 2;\n');
    expect((await reproIn(w)).actions.make).toBe('ran');
  });

  it('restores a clean checkout from the cache instead of re-running', async () => {
    const w = await setup();
    await reproIn(w);
    const before = await snapshot(join(w.root, 'data'));
    await rm(join(w.root, 'data'), { recursive: true });
    await rm(join(w.root, '.skintwin/cache/stat-cache.json'));
    const st = await status(await load(w), { logger: new RecordingLogger(), codeRoot: w.codeRoot });
    expect(st.map((s) => s.state)).toEqual(['restorable', 'restorable', 'restorable']);
    expect(st[0]!.reasons).toEqual([{ type: 'out-missing', path: 'data/gen' }]);
    const { actions, report } = await reproIn(w);
    expect(actions).toEqual({ make: 'restored', left: 'restored', right: 'restored' });
    expect(report.stages[1]!.summary).toMatch(/^wrote/);
    expect(runs.get('make')).toBe(1);
    expect(await snapshot(join(w.root, 'data'))).toEqual(before);
    expect((await reproIn(w)).actions).toEqual({ make: 'skipped', left: 'skipped', right: 'skipped' });
  });

  it('restores a previous param value from the run cache', async () => {
    const w = await setup();
    await reproIn(w);
    await reproIn(w, { overrides: { make: { text: 'y' } } });
    const { actions } = await reproIn(w);
    expect(actions.make).toBe('restored');
    expect(runs.get('make')).toBe(2);
  });

  it('restored files are copies: editing one does not corrupt the cache', async () => {
    const w = await setup();
    await reproIn(w);
    await rm(join(w.root, 'data'), { recursive: true });
    await reproIn(w);
    await writeFile(join(w.root, 'data/gen/f0.txt'), 'tampered');
    await rm(join(w.root, 'data'), { recursive: true });
    await reproIn(w);
    expect(await w.read('data/gen/f0.txt')).toBe('x0');
  });

  it('a corrupt cache object is caught on restore: the stage runs instead, with a warning naming the object', async () => {
    const w = await setup();
    await reproIn(w);
    const hash = createHash('sha256').update('x0').digest('hex');
    const object = join(w.root, '.skintwin/cache/objects', hash.slice(0, 2), hash.slice(2));
    await chmod(object, 0o644);
    await writeFile(object, 'rotten');
    await rm(join(w.root, 'data'), { recursive: true });
    const { actions, logger } = await reproIn(w);
    expect(actions.make).toBe('ran');
    expect(logger.messages('warn').join('\n')).toMatch(new RegExp(`could not restore from the cache, running instead: .*cache object ${hash} is corrupt`));
    expect(await w.read('data/gen/f0.txt')).toBe('x0');
  });

  it('a stage failing after a partial write leaves outs and lock byte-identical', async () => {
    const w = await setup();
    await reproIn(w);
    const before = await snapshot(w.root, (rel) => rel.startsWith('.skintwin'));
    const { report, actions } = await reproIn(w, { overrides: { left: { fail: 'true' } } });
    expect(report.ok).toBe(false);
    expect(actions.left).toBe('failed');
    expect(report.stages.find((s) => s.stage === 'left')?.error).toContain('boom');
    expect(await snapshot(w.root, (rel) => rel.startsWith('.skintwin'))).toEqual(before);
    expect(await snapshot(join(w.root, '.skintwin/cache/tmp'))).toEqual({});
  });

  it('fails when a declared out was not produced, swapping nothing', async () => {
    const w = await setup();
    await reproIn(w);
    const before = await snapshot(w.root, (rel) => rel.startsWith('.skintwin'));
    const { report } = await reproIn(w, { overrides: { right: { 'skip-out': 'true' } } });
    expect(report.stages.find((s) => s.stage === 'right')?.error).toBe('stage `right` did not produce declared out `data/right.txt`');
    expect(await snapshot(w.root, (rel) => rel.startsWith('.skintwin'))).toEqual(before);
  });

  it('an interrupted stage leaves outs and lock untouched and throws InterruptedError', async () => {
    const w = await setup(`stages:\n  hold:\n    kind: wait\n    outs: [out.txt]\n`);
    await w.write('out.txt', 'OLD');
    const controller = new AbortController();
    hooks.started = () => controller.abort();
    const p = await load(w);
    await expect(repro(p, { logger: new RecordingLogger(), codeRoot: w.codeRoot, signal: controller.signal })).rejects.toMatchObject({
      name: 'InterruptedError',
    });
    expect(await w.read('out.txt')).toBe('OLD');
    expect(await w.has('pipeline/pipeline.lock')).toBe(false);
    expect(await snapshot(join(w.root, '.skintwin/cache/tmp'))).toEqual({});
  });

  it('removes staging left behind by a killed process', async () => {
    const w = await setup();
    // pid 2^22 + 1 is above Linux's pid_max: no such process.
    const stale = join(w.root, '.skintwin/cache/tmp', 'make.4194305-abcdef');
    await w.write('.skintwin/cache/tmp/make.4194305-abcdef/outs/data/gen/f0.txt', 'half');
    await reproIn(w);
    expect(await w.has(stale.slice(w.root.length + 1))).toBe(false);
  });

  it('fails a kind without run as not implemented, and does not run its downstream', async () => {
    const w = await setup(`stages:\n  a:\n    kind: stub\n    outs: [a]\n  b:\n    kind: concat\n    deps: [a]\n    outs: [b]\n`);
    const { report, actions } = await reproIn(w);
    expect(actions).toEqual({ a: 'failed', b: 'not-run' });
    expect(report.stages[0]!.error).toBe('stage `a`: kind `stub` is not implemented yet');
  });

  it('dry-run predicts without changing anything', async () => {
    const w = await setup();
    await reproIn(w);
    await rm(join(w.root, 'data/gen'), { recursive: true });
    await w.write('input.txt', 'changed');
    const before = await snapshot(w.root);
    const { report, actions } = await reproIn(w, { dryRun: true });
    expect(report.dryRun).toBe(true);
    expect(actions).toEqual({ make: 'would-restore', left: 'would-run', right: 'skipped' });
    expect(await snapshot(w.root)).toEqual(before);
  });

  it('run semantics: force one stage without its upstream', async () => {
    const w = await setup();
    await reproIn(w);
    const { actions } = await reproIn(w, { targets: ['right'], force: true, upstream: false });
    expect(actions).toEqual({ right: 'ran' });
    expect(runs.get('make')).toBe(1);
    expect(runs.get('right')).toBe(2);
  });

  it('force reruns the targets and their upstream stages, and nothing outside the selection', async () => {
    const w = await setup();
    await reproIn(w);
    const { report, actions } = await reproIn(w, { targets: ['right'], force: true });
    expect(actions).toEqual({ make: 'ran', right: 'ran' });
    expect(report.stages.map((s) => s.reasons[0])).toEqual([{ type: 'forced' }, { type: 'forced' }]);
    expect(runs.get('left')).toBe(1);
  });

  it('runs independent stages concurrently up to `jobs`', async () => {
    const w = await setup(`stages:\n  a:\n    kind: latch\n    outs: [a]\n  b:\n    kind: latch\n    outs: [b]\n`);
    latch.max = 0;
    await reproIn(w, { jobs: 1 });
    expect(latch.max).toBe(1);
    latch.max = 0;
    const { actions } = await reproIn(w, { jobs: 2, force: true });
    expect(actions).toEqual({ a: 'ran', b: 'ran' });
    expect(latch.max).toBe(2);
  });

  it('a lock with merge-conflict markers is a clear error', async () => {
    const w = await setup();
    await reproIn(w);
    await w.write('pipeline/pipeline.lock', `${await w.read('pipeline/pipeline.lock')}<<<<<<< HEAD\n=======\n>>>>>>> other\n`);
    await expect(status(await load(w), { logger: new RecordingLogger(), codeRoot: w.codeRoot })).rejects.toThrow(
      /^pipeline\/pipeline\.lock: lock file is not valid YAML: .*\(resolve the merge conflict, or delete the file/,
    );
  });

  it('run of a stage whose upstream out is missing names the stage to run first', async () => {
    const w = await setup();
    const { report } = await reproIn(w, { targets: ['right'], force: true, upstream: false });
    expect(report.stages[0]!.error).toBe(
      'stage `right`: dep `data/gen/sub` does not exist (it is an out of stage `make`: run `skintwin repro make`)',
    );
  });

  it('rejects unknown target names with a suggestion', async () => {
    const w = await setup();
    const p = await load(w);
    await expect(repro(p, { logger: new RecordingLogger(), targets: ['rigth'] })).rejects.toThrow(/unknown stage `rigth` \(did you mean `right`\?\)/);
  });
});

describe('remote cache', () => {
  function memoryRemote(fail = false): RemoteCache & { saved: Map<string, Record<string, string>>; restores: string[] } {
    const saved = new Map<string, Record<string, string>>();
    const restores: string[] = [];
    return {
      name: 'memory',
      saved,
      restores,
      async save(key, dir) {
        if (fail) throw new Error('service unavailable');
        saved.set(key, await snapshot(dir));
        return true;
      },
      async restore(key, dir) {
        restores.push(key);
        if (fail) throw new Error('service unavailable');
        const files = saved.get(key);
        if (!files) return false;
        for (const [rel, text] of Object.entries(files)) {
          await import('node:fs/promises').then(async (fs) => {
            await fs.mkdir(join(dir, rel, '..'), { recursive: true });
            await fs.writeFile(join(dir, rel), text);
          });
        }
        return true;
      },
    };
  }

  it('saves after a run and restores on a local miss', async () => {
    const w = await setup();
    const remote = memoryRemote();
    await reproIn(w, { remoteCache: remote });
    // Never-run stages ask the remote first (three misses), then save what they produced.
    expect(remote.restores.length).toBe(3);
    expect(remote.saved.size).toBe(3);
    expect([...remote.saved.keys()][0]).toMatch(/^skintwin-[0-9a-f]{64}$/);
    await rm(join(w.root, 'data'), { recursive: true });
    await rm(join(w.root, '.skintwin'), { recursive: true });
    const { actions } = await reproIn(w, { remoteCache: remote });
    expect(actions).toEqual({ make: 'restored', left: 'restored', right: 'restored' });
    expect(remote.restores.length).toBe(6);
    expect(runs.get('make')).toBe(1);
    expect(await w.read('data/right.txt')).toBe('f1.txt:x1');
  });

  it('a corrupt remote object is refused: the stage runs, with a warning naming the object', async () => {
    const w = await setup();
    const remote = memoryRemote();
    await reproIn(w, { remoteCache: remote });
    const hash = createHash('sha256').update('x0').digest('hex');
    for (const files of remote.saved.values()) if (files[`objects/${hash}`] !== undefined) files[`objects/${hash}`] = 'rotten';
    await rm(join(w.root, 'data'), { recursive: true });
    await rm(join(w.root, '.skintwin'), { recursive: true });
    const { actions, logger } = await reproIn(w, { remoteCache: remote });
    expect(actions.make).toBe('ran');
    expect(logger.messages('warn').join('\n')).toMatch(new RegExp(`remote cache memory: restore failed, continuing without it: .*remote cache object ${hash} is corrupt`));
    expect(await w.read('data/gen/f0.txt')).toBe('x0');
  });

  it('a throwing remote cache only warns', async () => {
    const w = await setup();
    const { report, logger } = await reproIn(w, { remoteCache: memoryRemote(true) });
    expect(report.ok).toBe(true);
    expect(logger.messages('warn').some((m) => /remote cache memory: save failed.*service unavailable/.test(m))).toBe(true);
    await rm(join(w.root, 'data'), { recursive: true });
    await rm(join(w.root, '.skintwin'), { recursive: true });
    const second = await reproIn(w, { remoteCache: memoryRemote(true) });
    expect(second.report.ok).toBe(true);
    expect(second.actions.make).toBe('ran');
    expect(second.logger.messages('warn').some((m) => /restore failed/.test(m))).toBe(true);
  });
});

describe('command kind', () => {
  it('runs a shell command with atomic outs and fails on a non-zero exit', async () => {
    const w = await setup(`stages:\n  sh:\n    kind: command\n    params:\n      cmd: 'mkdir -p out && printf "$GREETING" > out/a.txt && echo done'\n      env: { GREETING: hi }\n    deps: [input.txt]\n    outs: [out]\n`);
    const { report, logger } = await reproIn(w, { env: { PATH: process.env.PATH } });
    expect(report.ok).toBe(true);
    expect(await w.read('out/a.txt')).toBe('hi');
    expect(logger.messages('info')).toContain('done');

    const failing = `stages:\n  sh:\n    kind: command\n    params:\n      cmd: 'mkdir -p out && echo NEW > out/a.txt && exit 3'\n    deps: [input.txt]\n    outs: [out]\n`;
    await writeFile(join(w.root, 'pipeline/pipeline.yaml'), failing);
    const lock = await w.read('pipeline/pipeline.lock');
    const second = await reproIn(w, { env: { PATH: process.env.PATH } });
    expect(second.report.stages[0]!.error).toBe('stage `sh`: command exited with code 3');
    expect(await w.read('out/a.txt')).toBe('hi');
    expect(await readFile(join(w.root, 'pipeline/pipeline.lock'), 'utf8')).toBe(lock);
  });

  it('kills the command when interrupted and keeps the previous outs', async () => {
    const w = await setup(`stages:\n  sh:\n    kind: command\n    params:\n      cmd: 'echo NEW > out.txt; echo started; exec sleep 30'\n    outs: [out.txt]\n`);
    await w.write('out.txt', 'OLD');
    const controller = new AbortController();
    const logger = new RecordingLogger();
    const origInfo = logger.info.bind(logger);
    logger.info = (m: string) => {
      origInfo(m);
      if (m.endsWith('started')) controller.abort();
    };
    const p = await load(w);
    const started = Date.now();
    await expect(repro(p, { logger, codeRoot: w.codeRoot, signal: controller.signal, env: { PATH: process.env.PATH } })).rejects.toMatchObject({
      name: 'InterruptedError',
    });
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await w.read('out.txt')).toBe('OLD');
  });
});
