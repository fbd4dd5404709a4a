// Deterministic hash-based splits. Each item (or near-duplicate group) gets u = H(seed, key) in
// [0, 1) and lands in train/val/test by fixed thresholds: an item's split depends only on its own
// key, so adding items never moves existing ones, and since u is uniform within every class the
// split is stratified in expectation (the report shows the realised per-class fractions).

import { createHash } from 'node:crypto';

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

/** Hex hashes as 32-bit words, for popcount distances. */
function toWords(hashes: readonly string[]): { words: Uint32Array; per: number } {
  const per = Math.ceil((hashes[0]?.length ?? 0) / 8);
  const words = new Uint32Array(hashes.length * per);
  hashes.forEach((h, i) => {
    for (let w = 0; w < per; w++) words[i * per + w] = parseInt(h.slice(w * 8, w * 8 + 8).padEnd(8, '0'), 16) >>> 0;
  });
  return { words, per };
}

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/**
 * Visit every pair of hashes (hex, equal length) within `maxDistance` bits, without an N² scan
 * and without storing the pairs. Multi-index hashing: the hex digits are cut into maxDistance+1
 * bands; two hashes that close agree exactly on at least one band (pigeonhole), so only items
 * sharing a band are compared, and a pair is only counted in the first band they share.
 * `consider(i, j)` may return false to skip a pair cheaply (e.g. already in one group).
 */
export function forEachNearPair(
  hashes: readonly string[],
  maxDistance: number,
  consider: (i: number, j: number) => boolean,
  onPair: (i: number, j: number, distance: number) => void,
): void {
  if (maxDistance < 0 || hashes.length < 2) return;
  const digits = hashes[0]!.length;
  const bands = Math.min(maxDistance + 1, digits);
  const cut = (b: number): number => Math.round((b * digits) / bands);
  const { words, per } = toWords(hashes);
  const distance = (i: number, j: number): number => {
    let d = 0;
    for (let w = 0; w < per; w++) d += popcount32((words[i * per + w]! ^ words[j * per + w]!) >>> 0);
    return d;
  };
  for (let b = 0; b < bands; b++) {
    const buckets = new Map<string, number[]>();
    for (let i = 0; i < hashes.length; i++) {
      const key = hashes[i]!.slice(cut(b), cut(b + 1));
      const bucket = buckets.get(key);
      if (bucket) bucket.push(i);
      else buckets.set(key, [i]);
    }
    for (const bucket of buckets.values()) {
      for (let x = 0; x < bucket.length; x++) {
        for (let y = x + 1; y < bucket.length; y++) {
          const i = bucket[x]!;
          const j = bucket[y]!;
          if (!consider(i, j)) continue;
          // Seen already in an earlier shared band?
          let earlier = false;
          for (let e = 0; e < b && !earlier; e++) earlier = hashes[i]!.slice(cut(e), cut(e + 1)) === hashes[j]!.slice(cut(e), cut(e + 1));
          if (earlier) continue;
          const d = distance(i, j);
          if (d <= maxDistance) onPair(i, j, d);
        }
      }
    }
  }
}

/** All pairs within `maxDistance` (for small sets and tests; prepare-data streams instead). */
export function nearDuplicatePairs(hashes: readonly string[], maxDistance: number): [number, number, number][] {
  const pairs: [number, number, number][] = [];
  forEachNearPair(hashes, maxDistance, () => true, (i, j, d) => pairs.push([i, j, d]));
  return pairs;
}

/** Near-duplicate groups: union-find over the pairs, skipping pairs already in one group. */
export function nearDuplicateGroups(hashes: readonly string[], maxDistance: number): { uf: UnionFind; links: number } {
  const uf = new UnionFind(hashes.length);
  let links = 0;
  forEachNearPair(
    hashes,
    maxDistance,
    (i, j) => uf.find(i) !== uf.find(j),
    (i, j) => {
      uf.union(i, j);
      links++;
    },
  );
  return { uf, links };
}

/**
 * Split every item: members of a near-duplicate group share the split decided by the group's
 * smallest key, so no near duplicate crosses splits.
 */
export function assignGroupSplits(keys: readonly string[], uf: UnionFind, seed: number, f: SplitFractions): SplitName[] {
  const groupKey = new Map<number, string>();
  for (let i = 0; i < keys.length; i++) {
    const root = uf.find(i);
    const current = groupKey.get(root);
    if (current === undefined || keys[i]! < current) groupKey.set(root, keys[i]!);
  }
  return keys.map((_, i) => splitOf(seed, groupKey.get(uf.find(i))!, f));
}

/** Same, from an explicit list of pairs. */
export function assignSplits(
  keys: readonly string[],
  pairs: readonly [number, number, number][],
  seed: number,
  f: SplitFractions,
): { splits: SplitName[] } {
  const uf = new UnionFind(keys.length);
  for (const [i, j] of pairs) uf.union(i, j);
  return { splits: assignGroupSplits(keys, uf, seed, f) };
}

/**
 * The leakage check, recomputed from the hashes rather than trusted from the grouping: near
 * pairs whose members ended up in different splits (must be 0). Pairs in one split are skipped
 * before their distance is computed, so large groups cost little.
 */
export function crossSplitNearPairs(hashes: readonly string[], maxDistance: number, splits: readonly SplitName[]): number {
  let cross = 0;
  forEachNearPair(hashes, maxDistance, (i, j) => splits[i] !== splits[j], () => cross++);
  return cross;
}

/** Near-duplicate pairs whose members ended up in different splits (must be 0). */
export function crossSplitPairs(pairs: readonly [number, number, number][], splits: readonly SplitName[]): number {
  return pairs.filter(([i, j]) => splits[i] !== splits[j]).length;
}
