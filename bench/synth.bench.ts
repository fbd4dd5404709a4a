// Benchmark: time to generate the synthetic dataset's `small` preset (the default of `npm start`),
// with CPU use (both cores?) and peak memory, plus a 10⁶-row fusion table streamed on its own.

import { mkdtemp, rm, stat } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeJsonAtomic } from '../pipeline/core/fs.ts';
import { quietLogger } from './quiet-logger.ts';
import { parseParams } from '../pipeline/core/params.ts';
import { writeFusionCsv } from '../pipeline/data/synthetic/fusion.ts';
import { synthesize, synthParams } from '../pipeline/data/synthetic/index.ts';

const SIZE = process.env.BENCH_SYNTH_SIZE ?? 'small';
const FUSION_ROWS = Number(process.env.BENCH_SYNTH_FUSION_ROWS ?? 1_000_000);


function cpuSeconds(since: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}

const base = await mkdtemp(join(tmpdir(), 'skintwin-bench-synth-'));
try {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const summary = await synthesize(join(base, 'dataset'), parseParams(synthParams, { size: SIZE }, { what: 'bench' }), { logger: quietLogger });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(cpu0);
  const fusionBytes = (await stat(join(base, 'dataset', 'fusion.csv'))).size;

  const rss0 = process.resourceUsage().maxRSS;
  const cpu1 = process.cpuUsage();
  const t1 = performance.now();
  await writeFusionCsv(join(base, 'big.csv'), FUSION_ROWS, 42, {}, {});
  const fusionSeconds = (performance.now() - t1) / 1000;
  const fusionCpu = cpuSeconds(cpu1);
  const bigBytes = (await stat(join(base, 'big.csv'))).size;
  const peakRssMB = Math.round(process.resourceUsage().maxRSS / 1024);

  const report = {
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', node: process.version },
    preset: SIZE,
    images: summary.images,
    imageSize: `${summary.width}x${summary.height}`,
    fusionRows: summary.fusionRows,
    seconds: Math.round(seconds * 100) / 100,
    imagesPerSecond: Math.round((summary.images / seconds) * 10) / 10,
    cpuSeconds: Math.round(cpu * 100) / 100,
    coresUsed: Math.round((cpu / seconds) * 100) / 100,
    fusionCsvMB: Math.round(fusionBytes / 1e5) / 10,
    bigFusion: {
      rows: FUSION_ROWS,
      seconds: Math.round(fusionSeconds * 100) / 100,
      rowsPerSecond: Math.round(FUSION_ROWS / fusionSeconds),
      cpuSeconds: Math.round(fusionCpu * 100) / 100,
      csvMB: Math.round(bigBytes / 1e5) / 10,
      rssBeforeMB: Math.round(rss0 / 1024),
    },
    peakRssMB,
    goals: { seconds: '< 60 on 2 cores' },
  };
  await writeJsonAtomic(join(process.cwd(), 'reports', 'bench', 'synth.json'), report);

  const rows: [string, string][] = [
    ['preset', `${SIZE}: ${summary.images} images ${summary.width}×${summary.height}, ${summary.fusionRows} fusion rows`],
    ['wall time', `${report.seconds} s (goal < 60 s)`],
    ['images/s', String(report.imagesPerSecond)],
    ['CPU time', `${report.cpuSeconds} s (${report.coresUsed} cores busy on average)`],
    [`fusion ${FUSION_ROWS.toLocaleString('en')} rows`, `${report.bigFusion.seconds} s, ${report.bigFusion.rowsPerSecond} rows/s, ${report.bigFusion.csvMB} MB`],
    ['peak RSS', `${peakRssMB} MB`],
  ];
  const width = Math.max(...rows.map(([k]) => k.length));
  console.log('synthetic dataset generation');
  for (const [k, v] of rows) console.log(`  ${k.padEnd(width)}  ${v}`);
} finally {
  await rm(base, { recursive: true, force: true });
}
