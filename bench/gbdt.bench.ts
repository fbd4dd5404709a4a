// Benchmark of the gbdt trainer against XGBoost `hist` (when python3 with xgboost is installed):
// the same generated 100,000 × 42, 6-class table, 80/20 split, 200 rounds, depth 6, learning rate
// 0.1, 2 threads, from one run. Prints train time, predict time and test log loss side by side and
// writes reports/bench/gbdt.json.

import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeJsonAtomic } from '../pipeline/core/fs.ts';
import { quietLogger } from './quiet-logger.ts';
import { logLoss, predictProba, trainGbdt } from '../pipeline/train/gbdt/index.ts';
import { sliceTable, syntheticTable } from '../pipeline/train/gbdt/synthetic.ts';

const ROWS = 100_000;
const FEATURES = 42;
const CLASSES = 6;
const SEED = 20_240_601;
const PARAMS = {
  'n-estimators': 200,
  'max-depth': 6,
  'learning-rate': 0.1,
  subsample: 0.8,
  'colsample-bytree': 0.8,
  'min-child-weight': 1,
  'reg-lambda': 1,
  'reg-alpha': 0,
  'max-bin': 256,
  seed: 42,
  threads: 2,
};

interface Result {
  trainer: string;
  trainSeconds: number;
  /** CPU seconds of the whole process (all threads) while training: steadier than wall time on a busy machine. */
  trainCpuSeconds: number;
  predictSeconds: number;
  testLogLoss: number;
  testAccuracy: number;
}


function accuracy(p: Float64Array, y: Int32Array, C: number): number {
  let ok = 0;
  for (let r = 0; r < y.length; r++) {
    let best = 0;
    for (let k = 1; k < C; k++) if (p[r * C + k]! > p[r * C + best]!) best = k;
    if (best === y[r]) ok++;
  }
  return ok / y.length;
}

/** A python3 that can import xgboost, or undefined. */
function findPython(): string | undefined {
  for (const python of ['python3', '/usr/bin/python3']) {
    const probe = spawnSync(python, ['-c', 'import xgboost, numpy; print(xgboost.__version__)'], { encoding: 'utf8' });
    if (probe.status === 0) return python;
  }
  return undefined;
}

const XGB_SCRIPT = `
import json, sys, time
import numpy as np, xgboost as xgb
d, F, C, p = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), json.loads(sys.argv[4])
def load(name, dtype): return np.fromfile(f"{d}/{name}", dtype=dtype)
xtr = load("xtr.f32", np.float32).reshape(-1, F); ytr = load("ytr.i32", np.int32)
xte = load("xte.f32", np.float32).reshape(-1, F); yte = load("yte.i32", np.int32)
params = {"objective": "multi:softprob", "num_class": C, "tree_method": "hist", "max_depth": p["max-depth"],
  "eta": p["learning-rate"], "subsample": p["subsample"], "colsample_bytree": p["colsample-bytree"],
  "min_child_weight": p["min-child-weight"], "lambda": p["reg-lambda"], "alpha": p["reg-alpha"],
  "max_bin": p["max-bin"], "nthread": p["threads"], "seed": p["seed"], "eval_metric": "mlogloss"}
t0 = time.perf_counter(); c0 = time.process_time()
dtrain = xgb.DMatrix(xtr, label=ytr, missing=np.nan, nthread=p["threads"])
booster = xgb.train(params, dtrain, num_boost_round=p["n-estimators"])
t1 = time.perf_counter(); c1 = time.process_time()
dtest = xgb.DMatrix(xte, missing=np.nan, nthread=p["threads"])
prob = booster.predict(dtest)
t2 = time.perf_counter()
ll = float(-np.mean(np.log(np.clip(prob[np.arange(len(yte)), yte], 1e-15, 1))))
acc = float(np.mean(prob.argmax(axis=1) == yte))
print(json.dumps({"version": xgb.__version__, "train": t1 - t0, "cpu": c1 - c0, "predict": t2 - t1, "logloss": ll, "accuracy": acc}))
`;

async function runXgboost(python: string, train: ReturnType<typeof sliceTable>, test: ReturnType<typeof sliceTable>): Promise<Result & { version: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'gbdt-bench-'));
  try {
    const bytes = (a: Float32Array | Int32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
    await writeFile(join(dir, 'xtr.f32'), bytes(train.x));
    await writeFile(join(dir, 'ytr.i32'), bytes(train.y));
    await writeFile(join(dir, 'xte.f32'), bytes(test.x));
    await writeFile(join(dir, 'yte.i32'), bytes(test.y));
    const run = spawnSync(python, ['-c', XGB_SCRIPT, dir, String(FEATURES), String(CLASSES), JSON.stringify(PARAMS)], {
      encoding: 'utf8',
      env: { ...process.env, OMP_NUM_THREADS: String(PARAMS.threads) },
      maxBuffer: 1 << 24,
    });
    if (run.status !== 0) throw new Error(`xgboost run failed: ${run.stderr}`);
    const r = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { version: string; train: number; cpu: number; predict: number; logloss: number; accuracy: number };
    return { trainer: `xgboost ${r.version} hist`, version: r.version, trainSeconds: r.train, trainCpuSeconds: r.cpu, predictSeconds: r.predict, testLogLoss: r.logloss, testAccuracy: r.accuracy };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const table = syntheticTable({ nRows: ROWS, nFeatures: FEATURES, nClasses: CLASSES, seed: SEED, missing: 0.01 });
const nTrain = Math.floor(ROWS * 0.8);
const train = sliceTable(table, 0, nTrain);
const test = sliceTable(table, nTrain, ROWS);
const classLabels = Array.from({ length: CLASSES }, (_, k) => k);
console.log(`gbdt bench (load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs): ${ROWS} rows × ${FEATURES} features, ${CLASSES} classes, 80/20 split; ${PARAMS['n-estimators']} rounds, depth ${PARAMS['max-depth']}, lr ${PARAMS['learning-rate']}, ${PARAMS.threads} threads`);

const results: Result[] = [];
{
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const model = await trainGbdt({ ...train, classLabels }, undefined, PARAMS, { logger: quietLogger });
  const t1 = performance.now();
  const cpu = process.cpuUsage(cpu0);
  const p = predictProba(model, test);
  const t2 = performance.now();
  results.push({
    trainer: 'skintwin gbdt',
    trainSeconds: (t1 - t0) / 1000,
    trainCpuSeconds: (cpu.user + cpu.system) / 1e6,
    predictSeconds: (t2 - t1) / 1000,
    testLogLoss: logLoss(p, test.y, CLASSES),
    testAccuracy: accuracy(p, test.y, CLASSES),
  });
}

const python = findPython();
let skipped: string | undefined;
if (python) results.push(await runXgboost(python, train, test));
else skipped = 'python3 with xgboost not found (apt-get install python3-xgboost); XGBoost column skipped';

console.log('');
console.log('| trainer | train s | train CPU s | predict s | test log loss | test accuracy |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const r of results)
  console.log(`| ${r.trainer} | ${r.trainSeconds.toFixed(2)} | ${r.trainCpuSeconds.toFixed(2)} | ${r.predictSeconds.toFixed(3)} | ${r.testLogLoss.toFixed(4)} | ${r.testAccuracy.toFixed(4)} |`);
if (skipped) console.log(`\n${skipped}`);

const ours = results[0]!;
const xgb = results[1];
const comparison = xgb
  ? {
      trainTimeRatio: ours.trainSeconds / xgb.trainSeconds,
      trainCpuRatio: ours.trainCpuSeconds / xgb.trainCpuSeconds,
      logLossRelativeDiff: (ours.testLogLoss - xgb.testLogLoss) / xgb.testLogLoss,
      trainTimeGoalMet: ours.trainSeconds <= xgb.trainSeconds,
      logLossGoalMet: ours.testLogLoss <= xgb.testLogLoss * 1.01,
    }
  : undefined;
if (comparison)
  console.log(
    `\ntrain time ratio (ours / xgboost): ${comparison.trainTimeRatio.toFixed(2)} wall, ${comparison.trainCpuRatio.toFixed(2)} CPU; log loss difference: ${(100 * comparison.logLossRelativeDiff).toFixed(2)}%`,
  );

await writeJsonAtomic(join('reports', 'bench', 'gbdt.json'), {
  benchmark: 'gbdt',
  date: new Date().toISOString(),
  node: process.version,
  cpus: cpus().length,
  loadAverage: loadavg(),
  data: { rows: ROWS, features: FEATURES, classes: CLASSES, seed: SEED, missingShare: 0.01, split: '80/20' },
  params: PARAMS,
  results,
  comparison,
  skipped,
});
