// The engine: decides which stages are stale, restores what the cache holds, runs the rest
// in dependency order (independent stages concurrently), swaps outs in atomically and writes
// pipeline.lock last. A failing or interrupted stage leaves previous outs and lock untouched.

import { mkdirSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ConfigurationError, errorMessage, InterruptedError, NotImplementedError } from '../core/errors.ts';
import { exists, move } from '../core/fs.ts';
import type { Logger, Progress } from '../core/logger.ts';
import type { StageContext, StageResult } from '../core/stage.ts';
import { suggestion } from '../core/suggest.ts';
import { exportToRemote, importFromRemote, LocalCache, runKey, toCachedOut, toTree, type RunEntry } from './cache.ts';
import { CodeVersions, findCodeRoot } from './code-version.ts';
import { hashTree, StatCache, subtreeHash, type TreeHash } from './hash.ts';
import { normalisePath, overlaps, within } from './load.ts';
import { canonicalJson, lockPathFor, paramsHash, readLock, writeLock, type LockEntry, type LockFile } from './lock.ts';
import { acquireProcessLock, PROCESS_LOCK_FILE } from './process-lock.ts';
import type {
  EngineOptions,
  Pipeline,
  ReproReport,
  RunOptions,
  StageDefinition,
  StageRun,
  StageStatus,
  StaleReason,
} from './types.ts';

/** What a downstream stage may assume about an upstream stage's outs. */
type Prediction = { type: 'disk' } | { type: 'cache'; entry: RunEntry } | { type: 'unknown' };

interface Evaluation {
  reasons: StaleReason[];
  code: string;
  paramsHash: string;
  depHashes: Record<string, string>;
  missingDeps: string[];
  /** Known only when every dep's content is known. */
  inputHash?: string;
  /** A complete local run-cache entry for `inputHash`. */
  entry?: RunEntry;
}

const STAT_CACHE_FILE = 'stat-cache.json';
/** Trees this large get a hashing progress bar (smaller ones hash too fast to need one). */
const PROGRESS_AFTER_FILES = 5000;

class Engine {
  readonly codeVersions: CodeVersions;
  private lockWrites: Promise<void> = Promise.resolve();
  private readonly hashes = new Map<string, Promise<TreeHash | undefined>>();

  private constructor(
    readonly p: Pipeline,
    readonly opts: EngineOptions,
    readonly cache: LocalCache,
    readonly statCache: StatCache,
    readonly lockAbs: string,
    readonly lock: LockFile,
  ) {
    this.codeVersions = new CodeVersions(opts.codeRoot ?? findCodeRoot(), statCache);
  }

  static async open(p: Pipeline, opts: EngineOptions): Promise<Engine> {
    const cacheDir = resolve(p.root, p.settings.cacheDir);
    const statCache = await StatCache.load(join(cacheDir, STAT_CACHE_FILE));
    const lockDisplay = lockPathFor(p.file);
    const lockAbs = resolve(p.root, lockDisplay);
    const lock = await readLock(lockAbs, lockDisplay);
    return new Engine(p, opts, new LocalCache(cacheDir), statCache, lockAbs, lock);
  }

  abs(rel: string): string {
    return join(this.p.root, rel);
  }

  /** The upstream stage whose out overlaps `dep`, with that out. */
  producerOf(def: StageDefinition, dep: string): { stage: string; out: string } | undefined {
    for (const up of def.upstream) {
      const out = this.p.stages.get(up)!.outs.find((o) => overlaps(dep, o));
      if (out) return { stage: up, out };
    }
    return undefined;
  }

  async evaluate(def: StageDefinition, predictions: ReadonlyMap<string, Prediction>): Promise<Evaluation> {
    const reasons: StaleReason[] = [];
    const locked: LockEntry | undefined = this.lock.stages[def.name];
    const code = await this.codeVersions.of(def.kind.codePaths);
    const ph = paramsHash(def.params);
    const depHashes: Record<string, string> = {};
    const missingDeps: string[] = [];
    let known = true;

    for (const dep of def.deps) {
      const producer = this.producerOf(def, dep);
      const prediction = producer ? predictions.get(producer.stage) : undefined;
      let hash: string | undefined;
      if (producer && prediction?.type === 'unknown') {
        if (!reasons.some((r) => r.type === 'upstream-stale' && r.stage === producer.stage)) {
          reasons.push({ type: 'upstream-stale', stage: producer.stage });
        }
        known = false;
        continue;
      }
      if (producer && prediction?.type === 'cache') {
        const cached = prediction.entry.outs[producer.out];
        // A dep inside the cached out is predictable; a dep that contains it is not.
        if (cached && within(dep, producer.out)) hash = subtreeHash(toTree(cached), dep === producer.out ? '' : dep.slice(producer.out.length + 1));
        if (hash === undefined) {
          reasons.push({ type: 'upstream-stale', stage: producer.stage });
          known = false;
          continue;
        }
      } else {
        hash = (await this.hash(dep))?.hash;
      }
      if (hash === undefined) {
        missingDeps.push(dep);
        known = false;
        reasons.push({ type: 'dep-changed', path: dep });
        continue;
      }
      depHashes[dep] = hash;
      if (locked && locked.deps[dep] !== hash) reasons.push({ type: 'dep-changed', path: dep });
    }

    if (!locked) reasons.unshift({ type: 'never-run' });
    else {
      for (const dep of Object.keys(locked.deps)) if (!def.deps.includes(dep)) reasons.push({ type: 'dep-changed', path: dep });
      if (locked.kind !== def.kind.kind || locked.code !== code) reasons.push({ type: 'code-changed' });
      if (locked.params.hash !== ph) {
        const keys = [...new Set([...Object.keys(locked.params.values ?? {}), ...Object.keys(def.params)])].sort();
        const changed = keys.filter((k) => canonicalJson(locked.params.values?.[k]) !== canonicalJson(def.params[k]));
        for (const param of changed.length ? changed : ['*']) reasons.push({ type: 'param-changed', param });
      }
      for (const out of def.outs) {
        const tree = await this.hash(out);
        if (!tree) reasons.push({ type: 'out-missing', path: out });
        else if (locked.outs[out]?.hash !== tree.hash) reasons.push({ type: 'out-changed', path: out });
      }
    }

    const evaluation: Evaluation = { reasons, code, paramsHash: ph, depHashes, missingDeps };
    if (known) {
      evaluation.inputHash = runKey({ kind: def.kind.kind, code, paramsHash: ph, deps: depHashes, outs: def.outs });
      if (reasons.length) {
        const entry = await this.cache.readRun(evaluation.inputHash);
        if (entry && def.outs.every((o) => entry.outs[o]) && (await this.cache.complete(entry))) evaluation.entry = entry;
      }
    }
    return evaluation;
  }

  /**
   * Hash a dep or out once per run: an upstream out is also a downstream dep, and a no-op run
   * should walk each tree once. Paths overlapping a stage's outs are forgotten when it swaps them.
   */
  hash(rel: string): Promise<TreeHash | undefined> {
    let hashed = this.hashes.get(rel);
    if (!hashed) {
      hashed = this.hashNow(rel);
      this.hashes.set(rel, hashed);
      hashed.catch(() => this.hashes.delete(rel));
    }
    return hashed;
  }

  /** Forget the hashes of every path that overlaps one of `outs` (they are about to change). */
  forgetHashes(outs: readonly string[]): void {
    for (const rel of [...this.hashes.keys()]) if (outs.some((o) => overlaps(rel, o))) this.hashes.delete(rel);
  }

  /** A progress bar appears once a tree turns out to be large and unread. */
  private async hashNow(rel: string): Promise<TreeHash | undefined> {
    let files = 0;
    let progress: Progress | undefined;
    const onFile = (): void => {
      files++;
      if (progress) progress.tick();
      else if (files === PROGRESS_AFTER_FILES) {
        progress = this.opts.logger.progress(`hashing ${rel}`, undefined, 'files');
        progress.set(files);
      }
    };
    try {
      return await hashTree(this.abs(rel), { statCache: this.statCache, onFile, ...(this.opts.signal ? { signal: this.opts.signal } : {}) });
    } finally {
      progress?.done();
    }
  }

  lockEntry(def: StageDefinition, ev: Evaluation, trees: Record<string, TreeHash | RunEntry['outs'][string]>): LockEntry {
    const outs: LockEntry['outs'] = {};
    for (const out of def.outs) {
      const t = trees[out]!;
      outs[out] = { hash: t.hash, files: t.files.length, bytes: t.bytes };
    }
    return {
      kind: def.kind.kind,
      code: ev.code,
      params: { hash: ev.paramsHash, values: JSON.parse(canonicalJson(def.params)) as Record<string, unknown> },
      deps: ev.depHashes,
      outs,
    };
  }

  /** Record a stage's entry and write the lock (serialised: concurrent stages finish in any order). */
  commitLock(stage: string, entry: LockEntry): Promise<void> {
    this.lock.stages[stage] = entry;
    this.lockWrites = this.lockWrites.then(async () => {
      const stages: Record<string, LockEntry> = {};
      for (const [name, e] of Object.entries(this.lock.stages)) if (this.p.stages.has(name)) stages[name] = e;
      await writeLock(this.lockAbs, { schema: 1, stages });
    });
    return this.lockWrites;
  }

  /** Swap staged outs into place: old aside, new in, old removed; rolled back on any error. */
  async swapIn(def: StageDefinition, staging: string): Promise<void> {
    this.forgetHashes(def.outs);
    const aside = join(staging, 'old');
    const movedAside: string[] = [];
    const installed: string[] = [];
    try {
      for (const out of def.outs) {
        if (await exists(this.abs(out))) {
          await mkdir(dirname(join(aside, out)), { recursive: true });
          await move(this.abs(out), join(aside, out));
          movedAside.push(out);
        }
      }
      for (const out of def.outs) {
        await mkdir(dirname(this.abs(out)), { recursive: true });
        await move(join(staging, 'outs', out), this.abs(out));
        installed.push(out);
      }
    } catch (error) {
      for (const out of installed) await move(this.abs(out), join(staging, 'outs', out)).catch(() => undefined);
      for (const out of movedAside) await move(join(aside, out), this.abs(out)).catch(() => undefined);
      throw error;
    }
    await rm(aside, { recursive: true, force: true });
  }

  async restore(def: StageDefinition, ev: Evaluation, entry: RunEntry): Promise<void> {
    const staging = await this.cache.makeTemp(def.name);
    try {
      const restored = [];
      for (const out of def.outs) {
        const files = await this.cache.materialize(entry.outs[out]!, join(staging, 'outs', out), this.opts.signal);
        restored.push({ out, files });
      }
      await this.swapIn(def, staging);
      for (const { out, files } of restored) {
        for (const f of files) this.statCache.set(join(this.abs(out), f.abs.slice(join(staging, 'outs', out).length)), f, f.hash);
      }
      await this.commitLock(def.name, this.lockEntry(def, ev, entry.outs));
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }

  /** On a local miss: fetch the entry from the remote cache and import it. */
  async fromRemote(key: string): Promise<RunEntry | undefined> {
    const remote = this.opts.remoteCache;
    if (!remote) return undefined;
    const imported = await importFromRemote(this.cache, remote, key, this.opts.logger);
    return imported.status === 'restored' ? imported.entry : undefined;
  }

  async toRemote(key: string, entry: RunEntry): Promise<void> {
    const remote = this.opts.remoteCache;
    if (remote) await exportToRemote(this.cache, remote, key, entry, this.opts.logger);
  }

  async execute(def: StageDefinition, ev: Evaluation, logger: Logger): Promise<StageResult> {
    const kind = def.kind;
    if (!kind.run) throw new NotImplementedError(`stage \`${def.name}\`: kind \`${kind.kind}\` is not implemented yet`);
    const staging = await this.cache.makeTemp(def.name);
    try {
      const tmpDir = join(staging, 'tmp');
      await mkdir(tmpDir, { recursive: true });
      const signal = this.opts.signal ?? new AbortController().signal;
      const ctx: StageContext<Record<string, unknown>> = {
        name: def.name,
        kind: kind.kind,
        params: def.params,
        settings: this.p.settings,
        root: this.p.root,
        deps: def.deps,
        outs: def.outs,
        path: (rel) => resolve(this.p.root, rel),
        out: (rel) => {
          const norm = normalisePath(rel);
          if (!norm || !def.outs.some((o) => within(norm, o))) {
            throw new ConfigurationError(`stage \`${def.name}\`: \`${rel}\` is not a declared out`, { hint: suggestion(rel, def.outs) });
          }
          const staged = join(staging, 'outs', norm);
          mkdirSync(dirname(staged), { recursive: true });
          return staged;
        },
        tmpDir,
        logger,
        now: this.opts.now ?? (() => new Date()),
        signal,
        env: this.opts.env ?? process.env,
        ...(this.opts.remoteCache ? { remoteCache: this.opts.remoteCache } : {}),
      };
      const result = await kind.run(ctx as never);
      if (signal.aborted) throw new InterruptedError();
      for (const out of def.outs) {
        if (!(await exists(join(staging, 'outs', out)))) throw new Error(`stage \`${def.name}\` did not produce declared out \`${out}\``);
      }
      // Hash the staged outs with a throw-away stat cache, then re-key it to the final paths.
      const stagedStats = new StatCache();
      const trees: Record<string, TreeHash> = {};
      for (const out of def.outs) {
        trees[out] = (await hashTree(join(staging, 'outs', out), { statCache: stagedStats, signal }))!;
        await this.cache.storeTree(join(staging, 'outs', out), trees[out]!);
      }
      const entry: RunEntry = {
        version: 1,
        stage: def.name,
        kind: kind.kind,
        outs: Object.fromEntries(Object.entries(trees).map(([o, t]) => [o, toCachedOut(t)])),
        result: { outputs: result.outputs, summary: result.summary, reports: result.reports ?? [] },
      };
      if (ev.inputHash) await this.cache.writeRun(ev.inputHash, entry);
      if (signal.aborted) throw new InterruptedError();
      await this.swapIn(def, staging);
      this.statCache.adopt(stagedStats, join(staging, 'outs'), this.p.root);
      await this.commitLock(def.name, this.lockEntry(def, ev, trees));
      if (ev.inputHash) await this.toRemote(ev.inputHash, entry);
      return result;
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  }
}

/** Stage names on the command line must exist. */
function checkTargets(p: Pipeline, targets: readonly string[] | undefined): void {
  const errors = (targets ?? [])
    .filter((t) => !p.stages.has(t))
    .map((t) => new ConfigurationError(`unknown stage \`${t}\``, { file: p.file, hint: suggestion(t, [...p.stages.keys()]) }));
  if (errors.length) throw ConfigurationError.all(errors);
}

/** Targets (default all) plus, when `upstream`, every stage they transitively depend on. */
function selection(p: Pipeline, targets: readonly string[] | undefined, upstream: boolean): Set<string> {
  const selected = new Set<string>(targets?.length ? targets : p.order);
  if (upstream) {
    const queue = [...selected];
    while (queue.length) {
      for (const up of p.stages.get(queue.pop()!)!.upstream) {
        if (!selected.has(up)) {
          selected.add(up);
          queue.push(up);
        }
      }
    }
  }
  return selected;
}

/** Per-stage logger: lines prefixed with the stage name so concurrent stages stay readable. */
function stageLogger(base: Logger, name: string, prefix: boolean): Logger {
  const tag = (m: string): string => (prefix ? `[${name}] ${m}` : m);
  return {
    debug: (m) => base.debug(tag(m)),
    info: (m) => base.info(tag(m)),
    warn: (m) => base.warn(tag(m)),
    error: (m) => base.error(tag(m)),
    group: (title, fn) => base.group(tag(title), fn),
    progress: (label, total, unit): Progress => base.progress(tag(label), total, unit),
    secret: (v) => base.secret(v),
  };
}

function predictionOf(ev: Evaluation, runsAnyway: boolean): Prediction {
  if (!runsAnyway && !ev.reasons.length) return { type: 'disk' };
  if (!runsAnyway && ev.entry) return { type: 'cache', entry: ev.entry };
  return { type: 'unknown' };
}

/** Each selected stage up to date, stale (with reasons) or restorable from the cache. Changes nothing but the stat cache. */
export async function status(p: Pipeline, opts: EngineOptions & { targets?: readonly string[] }): Promise<StageStatus[]> {
  checkTargets(p, opts.targets);
  const engine = await Engine.open(p, opts);
  const selected = selection(p, opts.targets, true);
  const wanted = new Set(opts.targets?.length ? opts.targets : p.order);
  const predictions = new Map<string, Prediction>();
  const result: StageStatus[] = [];
  for (const name of p.order) {
    if (!selected.has(name)) continue;
    const def = p.stages.get(name)!;
    const ev = await engine.evaluate(def, predictions);
    predictions.set(name, predictionOf(ev, false));
    if (wanted.has(name)) {
      result.push({ stage: name, kind: def.kind.kind, state: !ev.reasons.length ? 'up-to-date' : ev.entry ? 'restorable' : 'stale', reasons: ev.reasons });
    }
  }
  await engine.statCache.save().catch(() => undefined);
  return result;
}

/** A forced stage's reasons lead with `forced`. */
function withForced(reasons: StaleReason[], force: boolean): StaleReason[] {
  return force ? [{ type: 'forced' }, ...reasons] : reasons;
}

function emptyRun(def: StageDefinition, action: StageRun['action'], reasons: StaleReason[]): StageRun {
  return { stage: def.name, kind: def.kind.kind, action, reasons, durationMs: 0, outputs: {}, summary: '', reports: [], outs: [...def.outs] };
}

/** Bring the targets (default: all stages) up to date. Stage failures are reported, not thrown. */
export async function repro(p: Pipeline, opts: RunOptions): Promise<ReproReport> {
  checkTargets(p, opts.targets);
  const engine = await Engine.open(p, opts);
  const selected = selection(p, opts.targets, opts.upstream ?? true);
  const order = p.order.filter((n) => selected.has(n));
  // --force applies to every selected stage, upstream ones included (as `dvc repro --force`).
  const force = opts.force === true;
  const results = new Map<string, StageRun>();

  if (opts.dryRun) {
    const predictions = new Map<string, Prediction>();
    for (const name of order) {
      const def = p.stages.get(name)!;
      const ev = await engine.evaluate(def, predictions);
      const reasons = withForced(ev.reasons, force);
      const action = !force && !ev.reasons.length ? 'skipped' : !force && ev.entry ? 'would-restore' : 'would-run';
      predictions.set(name, predictionOf(ev, force));
      results.set(name, emptyRun(def, action, reasons));
    }
    return { ok: true, dryRun: true, stages: order.map((n) => results.get(n)!) };
  }

  const lockFile = join(resolve(p.root, p.settings.cacheDir), PROCESS_LOCK_FILE);
  const release = await acquireProcessLock(lockFile, relative(p.root, lockFile));
  try {
    return await reproLocked(p, opts, engine, order, selected, force);
  } finally {
    await release();
  }
}

async function reproLocked(
  p: Pipeline,
  opts: RunOptions,
  engine: Engine,
  order: readonly string[],
  selected: ReadonlySet<string>,
  force: boolean,
): Promise<ReproReport> {
  const results = new Map<string, StageRun>();
  await engine.cache.sweepTemp();
  const jobs = Math.max(1, opts.jobs ?? p.settings.jobs);
  const prefix = jobs > 1 && order.length > 1;
  const signal = opts.signal;

  const runOne = async (def: StageDefinition): Promise<StageRun> => {
    const started = performance.now();
    const logger = stageLogger(opts.logger, def.name, prefix);
    let ev: Evaluation | undefined;
    try {
      ev = await engine.evaluate(def, new Map());
      const reasons = withForced(ev.reasons, force);
      const done = (action: StageRun['action'], extra: Partial<StageRun> = {}): StageRun => ({
        ...emptyRun(def, action, reasons),
        durationMs: performance.now() - started,
        ...extra,
      });
      if (!force && !ev.reasons.length) {
        const previous = ev.inputHash ? await engine.cache.readRun(ev.inputHash) : undefined;
        return done('skipped', previous?.result ? { ...previous.result } : {});
      }
      if (ev.missingDeps.length) {
        const dep = ev.missingDeps[0]!;
        const producer = engine.producerOf(def, dep);
        throw new Error(
          `stage \`${def.name}\`: dep \`${dep}\` does not exist` +
            (producer ? ` (it is an out of stage \`${producer.stage}\`: run \`skintwin repro ${producer.stage}\`)` : ''),
        );
      }
      if (!force && ev.inputHash) {
        const entry = ev.entry ?? (await engine.fromRemote(ev.inputHash));
        if (entry) {
          try {
            await engine.restore(def, ev, entry);
            logger.info(`restored from the cache (${describeReasons(reasons)})`);
            return done('restored', entry.result ? { ...entry.result } : {});
          } catch (error) {
            if (signal?.aborted) throw error;
            logger.warn(`could not restore from the cache, running instead: ${errorMessage(error)}`);
          }
        }
      }
      const evaluated = ev;
      const exec = (): Promise<StageResult> => {
        logger.info(`running (${describeReasons(reasons)})`);
        return engine.execute(def, evaluated, logger);
      };
      // Concurrent stages cannot share one collapsible section: their lines are prefixed instead.
      const result = await (prefix ? exec() : opts.logger.group(`${def.name} (${def.kind.kind})`, exec));
      return done('ran', { outputs: result.outputs, summary: result.summary, reports: result.reports ?? [] });
    } catch (error) {
      const message = signal?.aborted && !(error instanceof NotImplementedError) ? `stage \`${def.name}\` was interrupted` : errorMessage(error);
      logger.error(message);
      return {
        ...emptyRun(def, 'failed', ev ? withForced(ev.reasons, force) : []),
        durationMs: performance.now() - started,
        error: message,
      };
    }
  };

  const pending = [...order];
  const running = new Map<string, Promise<void>>();
  let stop = false;
  while (pending.length || running.size) {
    for (const name of [...pending]) {
      if (running.size >= jobs) break;
      const def = p.stages.get(name)!;
      const ups = def.upstream.filter((u) => selected.has(u));
      const blocked = ups.some((u) => ['failed', 'not-run'].includes(results.get(u)?.action ?? ''));
      if (stop || blocked) {
        const why: StaleReason[] = ups.filter((u) => results.get(u)?.action === 'failed').map((u) => ({ type: 'upstream-stale', stage: u }));
        results.set(name, emptyRun(def, 'not-run', why));
        pending.splice(pending.indexOf(name), 1);
        continue;
      }
      if (!ups.every((u) => results.has(u))) continue;
      pending.splice(pending.indexOf(name), 1);
      running.set(
        name,
        runOne(def).then((r) => {
          results.set(name, r);
          running.delete(name);
          if (r.action === 'failed') stop = true;
        }),
      );
    }
    if (signal?.aborted) stop = true;
    if (running.size) await Promise.race(running.values());
    else if (pending.length && !stop) stop = true; // nothing can start: cannot happen with a valid graph
  }

  await engine.statCache.save().catch((error) => opts.logger.debug(`stat cache not saved: ${errorMessage(error)}`));
  if (signal?.aborted) throw new InterruptedError('interrupted: stopped running stages; previous outs and pipeline.lock are unchanged for them');
  const stages = order.map((n) => results.get(n)!);
  return { ok: stages.every((s) => s.action !== 'failed'), dryRun: false, stages };
}

export function describeReason(r: StaleReason): string {
  switch (r.type) {
    case 'never-run':
      return 'never run';
    case 'forced':
      return 'forced';
    case 'dep-changed':
      return `dep \`${r.path}\` changed`;
    case 'param-changed':
      return r.param === '*' ? 'params changed' : `param \`${r.param}\` changed`;
    case 'code-changed':
      return 'code changed';
    case 'out-missing':
      return `out \`${r.path}\` missing`;
    case 'out-changed':
      return `out \`${r.path}\` changed`;
    case 'upstream-stale':
      return `upstream stage \`${r.stage}\` is stale`;
  }
}

export function describeReasons(reasons: readonly StaleReason[]): string {
  return reasons.length ? reasons.map(describeReason).join(', ') : 'up to date';
}
