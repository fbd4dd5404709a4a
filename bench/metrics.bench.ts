// Benchmark of `skintwin metrics`'s code path: a 1,000,000-line classification predictions file
// (3 classes, a skin-tone and a source slice per row) scored by `metricsFromFile`, bootstrap off
// (goal: ≤ 3 s on a 2-core machine). Prints wall and CPU seconds per round with the load average
// (on a shared machine CPU time is the steadier figure). Writes reports/bench/metrics.json.

import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { once } from 'node:events';
import { writeJsonAtomic } from '../pipeline/core/fs.ts';
import { metricsFromFile } from '../pipeline/evaluate/metrics/predictions.ts';
import { seededRandom } from '../pipeline/evaluate/metrics/compare.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const CLASSES = ['Dry', 'Normal', 'Oily'];
const TONES = ['I', 'II', 'III', 'IV', 'V', 'VI'];
const SOURCES = ['kaggle', 'synthetic'];
const GOAL_SECONDS = 3;
const ROUNDS = 3;

/** Rows whose probabilities lean towards the true class, so the metrics are not degenerate. */
async function generate(path: string): Promise<void> {
  const random = seededRandom(7);
  const out = createWriteStream(path);
  let buffer = '';
  for (let i = 0; i < ROWS; i++) {
    const y = Math.floor(random() * 3);
    const raw = [random(), random(), random()];
    raw[y]! += random();
    const s = raw[0]! + raw[1]! + raw[2]!;
    const p = raw.map((v) => Math.round((v / s) * 1e6) / 1e6);
    p[2] = Math.round((1 - p[0]! - p[1]!) * 1e6) / 1e6;
    buffer +=
      `{"id":"r${i}","label":"${CLASSES[y]}","probs":{"Dry":${p[0]},"Normal":${p[1]},"Oily":${p[2]}},` +
      `"slice":{"skin_tone":"${TONES[i % 6]}","source":"${SOURCES[i % 2]}"}}\n`;
    if (buffer.length > 1 << 20) {
      if (!out.write(buffer)) await once(out, 'drain');
      buffer = '';
    }
  }
  out.end(buffer);
  await once(out, 'finish');
}

const dir = await mkdtemp(join(tmpdir(), 'skintwin-bench-metrics-'));
try {
  const file = join(dir, 'predictions.jsonl');
  const g0 = performance.now();
  await generate(file);
  const generateMs = performance.now() - g0;
  const bytes = (await stat(file)).size;
  console.log(`metrics bench (load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs): ${ROWS} rows, ${CLASSES.length} classes, ${(bytes / 1e6).toFixed(0)} MB`);
  const times: number[] = [];
  // CPU seconds of the process: steadier than wall time when other work shares the cores.
  const cpuTimes: number[] = [];
  const loads: number[] = [];
  let accuracy = 0;
  let heapMB = 0;
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const report = await metricsFromFile(file, 'predictions.jsonl', 'classification');
    times.push(performance.now() - t0);
    const c = process.cpuUsage(c0);
    cpuTimes.push((c.user + c.system) / 1e6);
    loads.push(loadavg()[0]!);
    heapMB = Math.max(heapMB, process.memoryUsage().rss / 1e6);
    if (report.metrics.task === 'classification') accuracy = report.metrics.accuracy;
  }
  const best = Math.min(...times) / 1000;
  console.log(`metricsFromFile: ${times.map((t) => (t / 1000).toFixed(2)).join(' s, ')} s (best ${best.toFixed(2)} s; goal ≤ ${GOAL_SECONDS} s); CPU ${cpuTimes.map((t) => t.toFixed(2)).join(' s, ')} s (best ${Math.min(...cpuTimes).toFixed(2)} s); load average ${loads.map((l) => l.toFixed(1)).join(', ')}; accuracy ${accuracy.toFixed(4)}; peak RSS ${heapMB.toFixed(0)} MB`);
  await writeJsonAtomic(join('reports', 'bench', 'metrics.json'), {
    benchmark: 'metrics',
    date: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    loadAverage: loadavg(),
    data: { rows: ROWS, classes: CLASSES.length, bytes, sliceKeys: ['skin_tone', 'source'], generateMs: Math.round(generateMs) },
    secondsPerRound: times.map((t) => t / 1000),
    bestSeconds: best,
    cpuSecondsPerRound: cpuTimes,
    bestCpuSeconds: Math.min(...cpuTimes),
    loadAveragePerRound: loads,
    goalSeconds: GOAL_SECONDS,
    goalMet: best <= GOAL_SECONDS,
    peakRssMB: Math.round(heapMB),
  });
} finally {
  await rm(dir, { recursive: true, force: true });
}
