// Benchmark: milliseconds per image of resizeRgb (Pillow-exact reduce + BILINEAR) for the sizes
// prepare-data meets, and of Pillow itself doing the same in the same rounds when a Python with
// Pillow is installed, since on a shared machine the ratio is steadier than either figure.

import { spawnSync } from 'node:child_process';
import { cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { writeJsonAtomic } from '../pipeline/core/fs.ts';
import { resizeRgb } from '../pipeline/data/images/resample.ts';

const SIZES: Array<[number, number, number, number]> = [
  [640, 480, 224, 224],
  [640, 640, 224, 224],
  [1200, 900, 224, 224],
  [300, 250, 224, 224],
  [1000, 750, 640, 480],
];
const TURNS = 3;
const ROUNDS = 5;
const CALLS = 40;

const PILLOW = `
import sys, time
from PIL import Image
w, h, tw, th, rounds, calls = map(int, sys.argv[1:7])
im = Image.frombytes('RGB', (w, h), bytes((i * 7 + (i >> 9)) & 255 for i in range(w * h * 3)))
fx, fy = max(1, w // tw), max(1, h // th)
for _ in range(calls): im.reduce((fx, fy)).resize((tw, th), Image.BILINEAR)
for _ in range(rounds):
    t = time.perf_counter()
    for _ in range(calls): im.reduce((fx, fy)).resize((tw, th), Image.BILINEAR)
    print((time.perf_counter() - t) * 1000 / calls)
`;

function noise(w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  let s = 1;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

function pillowMs(w: number, h: number, tw: number, th: number): number | undefined {
  const r = spawnSync('/usr/bin/python3', ['-c', PILLOW, ...[w, h, tw, th, ROUNDS, CALLS].map(String)], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const rounds = r.stdout.trim().split('\n').map(Number);
  return Math.min(...rounds);
}

const results = [];
for (const [w, h, tw, th] of SIZES) {
  const src = noise(w, h);
  const out = new Uint8Array(tw * th * 3);
  for (let i = 0; i < 3 * CALLS; i++) resizeRgb(src, w, h, tw, th, out);
  // Ours and Pillow take turns, a few times each, and each keeps its best round: the machine is
  // shared, and a quiet moment should count for both.
  let best = Infinity;
  let pillow: number | undefined;
  for (let turn = 0; turn < TURNS; turn++) {
    for (let r = 0; r < ROUNDS; r++) {
      const t = performance.now();
      for (let i = 0; i < CALLS; i++) resizeRgb(src, w, h, tw, th, out);
      best = Math.min(best, (performance.now() - t) / CALLS);
    }
    const p = pillowMs(w, h, tw, th);
    if (p !== undefined) pillow = Math.min(pillow ?? Infinity, p);
  }
  const row = {
    size: `${w}x${h} -> ${tw}x${th}`,
    msPerImage: Number(best.toFixed(3)),
    pillowMsPerImage: pillow === undefined ? null : Number(pillow.toFixed(3)),
    versusPillow: pillow === undefined ? null : Number((pillow / best).toFixed(2)),
  };
  results.push(row);
  console.log(
    `${row.size}: ${row.msPerImage} ms/image` +
      (pillow === undefined ? '' : `, Pillow ${row.pillowMsPerImage} ms (${row.versusPillow}× Pillow's speed)`),
  );
}

await writeJsonAtomic(join('reports', 'bench', 'resample.json'), {
  node: process.version,
  cpu: cpus()[0]?.model ?? 'unknown',
  loadAverage: loadavg()[0],
  turns: TURNS,
  roundsBestOf: ROUNDS,
  callsPerRound: CALLS,
  results,
});
