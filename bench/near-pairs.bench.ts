// Benchmark: peak RSS and time of prepare-data's near-duplicate search alone (grouping, then the
// leakage check, as prepare-data runs it) over random 256-bit pHashes, each variant in its own
// child process: the packed search (NearPairIndex, built once, traversed twice) and the
// string-keyed search it replaced. Knob: BENCH_HASHES (default 100,000). See
// docs/data-performance.md (Peak RSS).

import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { crossSplitNearPairs, nearDuplicateGroups, NearPairIndex, splitOf, UnionFind, type SplitName } from '../pipeline/data/prepare/split.ts';
import { referenceForEachNearPair } from '../test/data/split-reference.ts';

const N = Number(process.env.BENCH_HASHES ?? 100_000);
const DISTANCE = 12;
const VARIANTS = ['baseline', 'packed', 'string-keyed'] as const;
type Variant = (typeof VARIANTS)[number];

/** n random 64-digit hex hashes, deterministic; every 50th repeats its predecessor a few bits off. */
function hashes(n: number): string[] {
  let s = 12345;
  const rnd = (): number => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 28;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const digits = i % 50 === 1 ? [...out[i - 1]!].map((c) => parseInt(c, 16)) : Array.from({ length: 64 }, rnd);
    if (i % 50 === 1) for (let k = 0; k < 3; k++) digits[(rnd() * 4 + k * 20) % 64]! ^= 1;
    out.push(digits.map((d) => d.toString(16)).join(''));
  }
  return out;
}

function child(variant: Variant): void {
  const hs = hashes(N);
  // The splits the leakage check compares (every variant computes them, the baseline included).
  const splits: SplitName[] = hs.map((_, i) => splitOf(1, `key${i}`, { train: 0.7, val: 0.15 }));
  const t0 = performance.now();
  let links = 0;
  let cross = 0;
  if (variant === 'packed') {
    const index = new NearPairIndex(hs, DISTANCE);
    links = nearDuplicateGroups(index, DISTANCE).links;
    cross = crossSplitNearPairs(index, DISTANCE, splits);
  } else if (variant === 'string-keyed') {
    const uf = new UnionFind(N);
    referenceForEachNearPair(hs, DISTANCE, (i, j) => uf.find(i) !== uf.find(j), (i, j) => (uf.union(i, j), links++));
    referenceForEachNearPair(hs, DISTANCE, (i, j) => splits[i] !== splits[j], () => cross++);
  }
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ variant, seconds, maxRssMB: process.resourceUsage().maxRSS / 1024, links, cross }) + '\n');
}

async function main(): Promise<void> {
  console.log(`near-duplicate search over ${N} random 256-bit hashes, distance ${DISTANCE}: grouping + leakage check`);
  console.log('| variant | peak RSS MB | seconds | links | cross-split pairs |');
  console.log('|---|---|---|---|---|');
  for (const v of VARIANTS) {
    const line = await new Promise<string>((resolve, reject) => {
      const c = spawn(process.execPath, [process.argv[1]!, '--child', v], { stdio: ['ignore', 'pipe', 'inherit'] });
      let out = '';
      c.stdout.on('data', (d) => (out += d));
      c.on('close', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`${v} child exited ${code}`))));
    });
    const r = JSON.parse(line) as { seconds: number; maxRssMB: number; links: number; cross: number };
    console.log(`| ${v} | ${r.maxRssMB.toFixed(0)} | ${r.seconds.toFixed(2)} | ${r.links} | ${r.cross} |`);
  }
}

if (process.argv[2] === '--child') child(process.argv[3] as Variant);
else await main();
