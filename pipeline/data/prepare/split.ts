// Deterministic hash-based splits. Each item (or near-duplicate group) gets u = H(seed, key) in
// [0, 1) and lands in train/val/test by fixed thresholds: an item's split depends only on its own
// key, so adding items never moves existing ones, and since u is uniform within every class the
// split is stratified in expectation (the report shows the realised per-class fractions).

import { createHash } from 'node:crypto';
import { hamming } from '../images/hash.ts';

export type SplitName = 'train' | 'val' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'val', 'test'];

export interface SplitFractions {
  train: number;
  val: number;
}

/** Uniform value in [0, 1) from (seed, key): 52 bits of sha256. */
export function splitHash(seed: number, key: string): number {
  const digest = createHash('sha256').update(`${seed}\0${key}`).digest();
  return (digest.readUInt32BE(0) * 2 ** 20 + (digest.readUInt32BE(4) >>> 12)) / 2 ** 52;
}

export function splitOf(seed: number, key: string, f: SplitFractions): SplitName {
  const u = splitHash(seed, key);
  if (u < f.train) return 'train';
  if (u < f.train + f.val) return 'val';
  return 'test';
}

/** Union-find over item indices. */
export class UnionFind {
  private readonly parent: Int32Array;
  constructor(n: number) {
    this.parent = new Int32Array(n);
    for (let i = 0; i < n; i++) this.parent[i] = i;
  }
  find(i: number): number {
    let r = i;
    while (this.parent[r] !== r) r = this.parent[r]!;
    while (this.parent[i] !== r) {
      const next = this.parent[i]!;
      this.parent[i] = r;
      i = next;
    }
    return r;
  }
  union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent[Math.max(ra, rb)] = Math.min(ra, rb);
  }
}

/**
 * Pairs of hashes within `maxDistance` bits (hex hashes of equal length). Multi-index hashing: split each
 * hash into maxDistance+1 bands; two hashes within that distance agree exactly on at least one
 * band (pigeonhole), so only items sharing a band bucket are compared — no N² scan.
 */
export function nearDuplicatePairs(hashes: readonly string[], maxDistance: number): [number, number, number][] {
  if (maxDistance < 0 || hashes.length < 2) return [];
  const bits = hashes[0]!.length * 4;
  const bands = Math.min(maxDistance + 1, bits);
  const bandBits = Math.floor(bits / bands);
  const toBits = (h: string): string => [...h].map((c) => parseInt(c, 16).toString(2).padStart(4, '0')).join('');
  const seen = new Set<string>();
  const pairs: [number, number, number][] = [];
  const binary = hashes.map(toBits);
  for (let b = 0; b < bands; b++) {
    const start = b * bandBits;
    const end = b === bands - 1 ? bits : start + bandBits;
    const buckets = new Map<string, number[]>();
    for (let i = 0; i < binary.length; i++) {
      const key = binary[i]!.slice(start, end);
      let bucket = buckets.get(key);
      if (!bucket) buckets.set(key, (bucket = []));
      bucket.push(i);
    }
    for (const bucket of buckets.values()) {
      for (let x = 0; x < bucket.length; x++) {
        for (let y = x + 1; y < bucket.length; y++) {
          const i = bucket[x]!;
          const j = bucket[y]!;
          const id = `${i},${j}`;
          if (seen.has(id)) continue;
          const d = hamming(hashes[i]!, hashes[j]!);
          if (d <= maxDistance) {
            seen.add(id);
            pairs.push([i, j, d]);
          }
        }
      }
    }
  }
  return pairs;
}

/**
 * Split every item: near-duplicate groups (connected components of `pairs`) share the split
 * decided by the group's smallest key, so no near-duplicate crosses splits.
 */
export function assignSplits(
  keys: readonly string[],
  pairs: readonly [number, number, number][],
  seed: number,
  f: SplitFractions,
): { splits: SplitName[]; groupOf: Int32Array } {
  const uf = new UnionFind(keys.length);
  for (const [i, j] of pairs) uf.union(i, j);
  const groupKey = new Map<number, string>();
  for (let i = 0; i < keys.length; i++) {
    const root = uf.find(i);
    const current = groupKey.get(root);
    if (current === undefined || keys[i]! < current) groupKey.set(root, keys[i]!);
  }
  const groupOf = new Int32Array(keys.length);
  const splits = keys.map((_, i) => {
    const root = uf.find(i);
    groupOf[i] = root;
    return splitOf(seed, groupKey.get(root)!, f);
  });
  return { splits, groupOf };
}

/** Near-duplicate pairs whose members ended up in different splits (must be 0). */
export function crossSplitPairs(pairs: readonly [number, number, number][], splits: readonly SplitName[]): number {
  return pairs.filter(([i, j]) => splits[i] !== splits[j]).length;
}
