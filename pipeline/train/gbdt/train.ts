// Training loop of the gbdt trainer: input checks, quantisation, gradients, row/column sampling,
// early stopping, and the worker pool that grows the trees of one round in parallel. Results do
// not depend on the thread count: each tree is grown by the same kernel from the same inputs, and
// trees of one round write disjoint margin columns.

import { Worker } from 'node:worker_threads';
import { ConfigurationError, DataError, InterruptedError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { gbdtKernel, type GbdtKernel, type KernelShared, type KernelTree, type TreeTask } from './kernel.ts';
import {
  featureImportance,
  GBDT_FORMAT,
  GBDT_FORMAT_VERSION,
  type GbdtModel,
  type GbdtTree,
} from './model.ts';
import { parseGbdtParams, type GbdtParams } from './params.ts';
import { fitQuantizer, quantize, realBinCounts, type Quantizer } from './quantize.ts';

export interface GbdtData {
  /** Row-major features, nRows × nFeatures; NaN means missing. */
  x: Float32Array;
  nRows: number;
  nFeatures: number;
  /** Class index per row (0 … classLabels.length − 1). */
  y: Int32Array | ArrayLike<number>;
  featureNames: string[];
  /** The caller's class ids (e.g. the original label ids), in class-index order. */
  classLabels: number[];
}

export interface GbdtIo {
  logger: Logger;
  signal?: AbortSignal;
}

const FLT_MAX = 3.4028234663852886e38;

/** Train gradient-boosted trees; `valid` drives early stopping and the per-round log. */
export async function trainGbdt(
  data: GbdtData,
  valid: GbdtData | undefined,
  rawParams: Partial<GbdtParams> | Readonly<Record<string, unknown>>,
  io: GbdtIo,
): Promise<GbdtModel> {
  const params = parseGbdtParams(rawParams as Record<string, unknown>);
  checkData(data, 'training');
  const C = data.classLabels.length;
  const counts = classCounts(data, 'training');
  const present = counts.filter((c) => c > 0).length;
  if (present < 2) {
    const only = counts.findIndex((c) => c > 0);
    throw new DataError(`training data has a single class (${data.classLabels[only]}): a classifier needs at least two`, { field: 'target' });
  }
  const absent = data.classLabels.filter((_, k) => counts[k] === 0);
  if (absent.length) io.logger.warn(`gbdt: class(es) ${absent.join(', ')} have no training rows; the model will rarely predict them`);
  if (valid) {
    checkData(valid, 'validation');
    if (valid.nFeatures !== data.nFeatures || valid.featureNames.some((n, i) => n !== data.featureNames[i]))
      throw new DataError('validation features differ from the training features (names and order must match)');
    if (valid.classLabels.length !== C || valid.classLabels.some((l, i) => l !== data.classLabels[i]))
      throw new DataError('validation class labels differ from the training class labels');
    const vCounts = classCounts(valid, 'validation');
    const unseen = data.classLabels.filter((_, k) => vCounts[k]! > 0 && counts[k] === 0);
    if (unseen.length)
      throw new DataError(`validation has class(es) ${unseen.join(', ')} that never occur in training: re-split the data so training covers every class`, {
        field: 'target',
      });
  }

  const binary = C === 2;
  const K = binary ? 1 : C;
  const n = data.nRows;
  const F = data.nFeatures;
  const nValid = valid?.nRows ?? 0;
  const started = performance.now();

  const quantizer = fitQuantizer(data.x, n, F, params['max-bin'], params.seed);
  const nBins = realBinCounts(quantizer);
  const featOffset = new Int32Array(F + 1);
  for (let f = 0; f < F; f++) featOffset[f + 1] = featOffset[f]! + nBins[f]! + 1;
  const bins = new Uint8Array(new SharedArrayBuffer(Math.max(1, n * F)));
  quantize(quantizer, data.x, n, F, bins);
  const validBins = new Uint8Array(new SharedArrayBuffer(Math.max(1, nValid * F)));
  if (valid) quantize(quantizer, valid.x, nValid, F, validBins);

  const baseMargin = priorMargins(counts, n, binary);
  const shared: KernelShared = {
    nRows: n,
    nValid,
    nFeatures: F,
    nClasses: C,
    nGroups: K,
    bins,
    validBins,
    nBins,
    featOffset,
    gh: new Float32Array(new SharedArrayBuffer(K * n * 2 * 4)),
    margins: new Float64Array(new SharedArrayBuffer(n * K * 8)),
    validMargins: new Float64Array(new SharedArrayBuffer(Math.max(1, nValid * K) * 8)),
    sampled: new Uint32Array(new SharedArrayBuffer(n * 4)),
    maxDepth: params['max-depth'],
    learningRate: params['learning-rate'],
    lambda: params['reg-lambda'],
    alpha: params['reg-alpha'],
    minChildWeight: params['min-child-weight'],
  };
  for (let r = 0; r < n; r++) for (let k = 0; k < K; k++) shared.margins[r * K + k] = baseMargin[k]!;
  for (let r = 0; r < nValid; r++) for (let k = 0; k < K; k++) shared.validMargins[r * K + k] = baseMargin[k]!;

  const threads = Math.min(params.threads, K);
  const pool = threads > 1 ? new KernelPool(threads, shared) : undefined;
  const local = pool ? undefined : gbdtKernel();
  local?.setup(shared);
  io.logger.info(
    `gbdt: ${n} rows × ${F} features, ${C} classes (${binary ? 'logistic' : 'softmax'}), ${params['n-estimators']} rounds, ` +
      `depth ${params['max-depth']}, ${threads} thread(s)${valid ? `, ${nValid} validation rows` : ''}`,
  );

  const rng = xorshift(params.seed);
  const nColumns = Math.max(1, Math.floor(params['colsample-bytree'] * F));
  const allColumns = Int32Array.from({ length: F }, (_, i) => i);
  const yTrain = Int32Array.from(data.y);
  const yValid = valid ? Int32Array.from(valid.y) : new Int32Array(0);
  const esr = params['early-stopping-rounds'];
  const rounds: KernelTree[][] = [];
  const trainLoss: number[] = [];
  const validLoss: number[] = [];
  let best = Infinity;
  let bestIteration = -1;
  const progress = io.logger.progress('gbdt: boosting rounds', params['n-estimators'], 'rounds');
  const every = Math.max(1, Math.floor(params['n-estimators'] / 10));

  try {
    for (let round = 0; round < params['n-estimators']; round++) {
      if (io.signal?.aborted) throw new InterruptedError('gbdt training interrupted');
      const loss = gradients(shared, yTrain, binary);
      if (round > 0) trainLoss.push(loss);

      let nSampled = 0;
      if (params.subsample >= 1) for (let r = 0; r < n; r++) shared.sampled[nSampled++] = r;
      else for (let r = 0; r < n; r++) if (rng() < params.subsample) shared.sampled[nSampled++] = r;
      const tasks: TreeTask[] = [];
      for (let k = 0; k < K; k++) tasks.push({ group: k, nSampled, features: sampleColumns(allColumns, nColumns, rng) });

      const trees = pool ? await pool.run(tasks) : tasks.map((t) => local!.buildTree(t));
      rounds.push(trees);

      let message = '';
      if (valid) {
        const v = logLossOfMargins(shared.validMargins, yValid, K, binary);
        validLoss.push(v);
        if (v < best) {
          best = v;
          bestIteration = round;
        }
        message = `valid log loss ${v.toFixed(5)}`;
      }
      progress.tick();
      io.logger.debug(`gbdt: round ${round + 1}: train log loss ${loss.toFixed(5)} (before the round)${message ? `, ${message}` : ''}`);
      if ((round + 1) % every === 0 || round === 0) io.logger.info(`gbdt: round ${round + 1}/${params['n-estimators']}${message ? `: ${message}` : ''}`);
      if (valid && esr !== undefined && round - bestIteration >= esr) {
        io.logger.info(`gbdt: early stopping at round ${round + 1}: best valid log loss ${best.toFixed(5)} at round ${bestIteration + 1}`);
        break;
      }
    }
    trainLoss.push(gradients(shared, yTrain, binary));
  } finally {
    progress.done();
    await pool?.close();
  }

  const keep = valid && esr !== undefined ? bestIteration + 1 : rounds.length;
  if (!valid || esr === undefined) bestIteration = rounds.length - 1;
  const trees = rounds.slice(0, keep).flat().map((t) => toModelTree(t, quantizer));
  io.logger.info(`gbdt: trained ${keep} rounds (${trees.length} trees) in ${((performance.now() - started) / 1000).toFixed(1)} s`);

  return {
    format: GBDT_FORMAT,
    version: GBDT_FORMAT_VERSION,
    objective: binary ? 'binary:logistic' : 'multi:softprob',
    featureNames: [...data.featureNames],
    classLabels: [...data.classLabels],
    baseMargin: [...baseMargin],
    params: { ...params, threads: undefined },
    rounds: keep,
    bestIteration,
    trees,
    history: { validLogLoss: validLoss, trainLogLoss: trainLoss },
    importance: featureImportance(trees, data.featureNames),
  };
}

function checkData(d: GbdtData, what: string): void {
  if (!Number.isInteger(d.nRows) || d.nRows <= 0) throw new DataError(`${what} data is empty: no rows`);
  if (!Number.isInteger(d.nFeatures) || d.nFeatures <= 0) throw new DataError(`${what} data has no feature columns`);
  if (d.x.length !== d.nRows * d.nFeatures)
    throw new DataError(`${what} data: expected ${d.nRows} × ${d.nFeatures} = ${d.nRows * d.nFeatures} feature values, got ${d.x.length}`);
  if (d.featureNames.length !== d.nFeatures)
    throw new ConfigurationError(`${what} data: ${d.featureNames.length} feature names for ${d.nFeatures} feature columns`);
  if (d.y.length !== d.nRows) throw new DataError(`${what} data: ${d.y.length} labels for ${d.nRows} rows`);
  const labels = d.classLabels;
  if (labels.length < 2) throw new ConfigurationError(`${what} data: ${labels.length} class label(s) declared; a classifier needs at least two`);
  if (labels.some((l) => !Number.isSafeInteger(l)) || new Set(labels).size !== labels.length)
    throw new ConfigurationError(`${what} data: class labels must be distinct integers, got ${JSON.stringify(labels)}`);
  for (let r = 0; r < d.nRows; r++) {
    const y = d.y[r]!;
    if (!Number.isInteger(y) || y < 0 || y >= labels.length)
      throw new DataError(`${what} data, row ${r + 1}: label ${y} is not a class index 0…${labels.length - 1}`, { line: r + 1, field: 'target' });
  }
  const x = d.x;
  for (let i = 0; i < x.length; i++) {
    const v = x[i]!;
    if (v === Infinity || v === -Infinity) {
      const r = Math.floor(i / d.nFeatures);
      const name = d.featureNames[i % d.nFeatures];
      throw new DataError(`${what} data, row ${r + 1}, feature \`${name}\`: value is ${v} (only finite numbers, or NaN for missing)`, {
        line: r + 1,
        field: name,
      });
    }
  }
}

function classCounts(d: GbdtData, _what: string): number[] {
  const counts = new Array<number>(d.classLabels.length).fill(0);
  for (let r = 0; r < d.nRows; r++) counts[d.y[r]!]!++;
  return counts;
}

/** Starting raw scores from the class priors (clipped so absent classes stay finite). */
function priorMargins(counts: number[], n: number, binary: boolean): number[] {
  const p = counts.map((c) => Math.min(Math.max(c / n, 1e-6), 1 - 1e-6));
  return binary ? [Math.log(p[1]! / p[0]!)] : p.map((q) => Math.log(q));
}

/** Fill gh from the current margins; returns the training log loss at those margins. */
function gradients(s: KernelShared, y: Int32Array, binary: boolean): number {
  const n = s.nRows;
  const K = s.nGroups;
  const gh = s.gh;
  const m = s.margins;
  let loss = 0;
  if (binary) {
    for (let r = 0; r < n; r++) {
      const p = 1 / (1 + Math.exp(-m[r]!));
      const t = y[r]!;
      gh[2 * r] = p - t;
      gh[2 * r + 1] = Math.max(p * (1 - p), 1e-16);
      loss -= Math.log(Math.max(t === 1 ? p : 1 - p, 1e-15));
    }
    return loss / n;
  }
  const p = new Float64Array(K);
  for (let r = 0; r < n; r++) {
    const o = r * K;
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, m[o + k]!);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += p[k] = Math.exp(m[o + k]! - max);
    const t = y[r]!;
    for (let k = 0; k < K; k++) {
      const q = p[k]! / sum;
      const at = (k * n + r) * 2;
      gh[at] = q - (k === t ? 1 : 0);
      // XGBoost's softmax hessian, factor 2 included, so the same params mean the same step sizes.
      gh[at + 1] = Math.max(2 * q * (1 - q), 1e-16);
    }
    loss -= Math.log(Math.max(p[t]! / sum, 1e-15));
  }
  return loss / n;
}

function logLossOfMargins(m: Float64Array, y: Int32Array, K: number, binary: boolean): number {
  let loss = 0;
  const n = y.length;
  for (let r = 0; r < n; r++) {
    if (binary) {
      const p = 1 / (1 + Math.exp(-m[r]!));
      loss -= Math.log(Math.max(y[r] === 1 ? p : 1 - p, 1e-15));
      continue;
    }
    const o = r * K;
    let max = -Infinity;
    for (let k = 0; k < K; k++) max = Math.max(max, m[o + k]!);
    let sum = 0;
    for (let k = 0; k < K; k++) sum += Math.exp(m[o + k]! - max);
    loss -= Math.max(m[o + y[r]!]! - max - Math.log(sum), Math.log(1e-15));
  }
  return n ? loss / n : 0;
}

/** Seeded xorshift32 in [0, 1): row and column sampling depend on the seed only. */
function xorshift(seed: number): () => number {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

function sampleColumns(all: Int32Array, count: number, rng: () => number): Int32Array {
  if (count >= all.length) return all.slice();
  const a = all.slice();
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rng() * (a.length - i));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a.subarray(0, count).sort();
}

function toModelTree(t: KernelTree, q: Quantizer): GbdtTree {
  return {
    group: t.group,
    feature: t.feature.map((f) => Math.max(f, 0)),
    threshold: t.feature.map((f, i) => {
      if (f < 0) return 0;
      const cuts = q.cuts[f]!;
      const b = t.splitBin[i]!;
      // The last real bin as split point means "every value left, missing right".
      return b < cuts.length ? cuts[b]! : FLT_MAX;
    }),
    defaultLeft: t.defaultLeft,
    left: t.left,
    right: t.right,
    value: t.value,
    gain: t.gain,
    cover: t.cover,
  };
}

// --- worker pool ----------------------------------------------------------------------------

function workerMain(kernel: GbdtKernel, threads: typeof import('node:worker_threads')): void {
  const port = threads.parentPort!;
  kernel.setup(threads.workerData as KernelShared);
  port.on('message', (task: TreeTask) => port.postMessage(kernel.buildTree(task)));
}

/**
 * A bundler that keeps function names (esbuild `keepNames`) wraps nested functions in a helper call,
 * `helper(fn, "name")`, whose name minification may change. This probe reveals that name so the
 * worker can define it; undefined when no helper is in use.
 */
function namingHelper(): string | undefined {
  function probe(): void {
    function inner(): void {}
    void inner;
  }
  return /([\w$]+)\([\w$]+,\s*["']inner["']\)/.exec(probe.toString())?.[1];
}

/** Worker source: the kernel and the message loop, from their own text (no module resolution). */
function workerSource(): string {
  const helper = namingHelper() ?? '__name';
  return (
    `"use strict";\nvar ${helper} = function (f) { return f; };\n` +
    `(${workerMain.toString()})((${gbdtKernel.toString()})(), require("node:worker_threads"));\n`
  );
}

/** Trees of one round handed out to workers as they become free (results kept in task order). */
class KernelPool {
  private readonly workers: Worker[];
  private failure: Error | undefined;

  constructor(size: number, shared: KernelShared) {
    const source = workerSource();
    // Kept referenced: a pending round must hold the process open; close() always terminates them.
    this.workers = Array.from({ length: size }, () => new Worker(source, { eval: true, workerData: shared }));
  }

  run(tasks: TreeTask[]): Promise<KernelTree[]> {
    return new Promise((resolve, reject) => {
      const results = new Array<KernelTree>(tasks.length);
      let next = 0;
      let finished = 0;
      let failed = false;
      const cleanups: (() => void)[] = [];
      const done = (error?: Error) => {
        for (const c of cleanups) c();
        if (error) reject(error);
        else resolve(results);
      };
      for (const w of this.workers) {
        let current = -1;
        const give = () => {
          if (next >= tasks.length) return;
          current = next++;
          w.postMessage(tasks[current]);
        };
        const onMessage = (tree: KernelTree) => {
          if (failed) return;
          results[current] = tree;
          if (++finished === tasks.length) return done();
          give();
        };
        const onError = (error: Error) => {
          if (failed) return;
          failed = true;
          this.failure = error;
          done(new Error(`gbdt worker failed: ${error.message}`));
        };
        const onExit = (code: number) => onError(new Error(`exited with code ${code}`));
        w.on('message', onMessage);
        w.on('error', onError);
        w.on('exit', onExit);
        cleanups.push(() => {
          w.off('message', onMessage);
          w.off('error', onError);
          w.off('exit', onExit);
        });
        give();
      }
      if (this.failure) done(this.failure);
    });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
