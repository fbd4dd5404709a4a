// Deterministic hash-based splits. Each item (or near-duplicate group) gets u = H(seed, key) in
// [0, 1) and lands in train/val/test by fixed thresholds: an item's split depends only on its own
// key, so adding items never moves existing ones, and since u is uniform within every class the
// split is stratified in expectation (the report shows the realised per-class fractions).

import crypto, { createHash } from 'node:crypto';
import { packHexHashes, type PackedHashes } from '../images/hash.ts';

export type SplitName = 'train' | 'val' | 'test';
export const SPLITS: readonly SplitName[] = ['train', 'val', 'test'];

export interface SplitFractions {
  train: number;
  val: number;
}

/** Uniform value in [0, 1) from (seed, key): the first 52 bits of sha256. */
export function splitHash(seed: number, key: string): number {
  const data = `${seed}\0${key}`;
  // The one-shot hash (Node ≥ 20.12) returns a short string: no Hash object and Buffer per item
  // for the collector to find when 100,000 items are split at once.
  const hex = oneShotHash ? oneShotHash('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
  return parseInt(hex.slice(0, 13), 16) / 2 ** 52;
}

const oneShotHash = typeof crypto.hash === 'function' ? crypto.hash : undefined;

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

function popcount32(x: number): number {
  x -= (x >>> 1) & 0x55555555;
  x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
  return (Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24);
}

/** One band's bits inside one hash word: `(word & mask) >>> shift` is a `bits`-bit number. */
interface Segment {
  word: number;
  mask: number;
  shift: number;
  bits: number;
}

export type NearPairFilter = (i: number, j: number) => boolean;
export type NearPairVisitor = (i: number, j: number, distance: number) => void;

/**
 * Visit every pair of hashes (hex, equal length) within `maxDistance` bits, without an N² scan
 * and without storing the pairs. Multi-index hashing: the hex digits are cut into maxDistance+1
 * bands; two hashes that close agree exactly on at least one band (pigeonhole), so only items
 * sharing a band are compared, and a pair is only counted in the first band they share.
 *
 * Memory is a few typed arrays: the hashes packed into 32-bit words, and per band (one band at a
 * time) the item indices sorted by the band's bits, runs of equal bits being the buckets. Build
 * it once and traverse it as often as needed (grouping, then the leakage check).
 */
export class NearPairIndex {
  readonly count: number;
  private readonly words: Uint32Array;
  private readonly per: number;
  readonly maxDistance: number;
  private readonly bands: Segment[][];

  constructor(hashes: readonly string[] | PackedHashes, maxDistance: number) {
    const packed = isPacked(hashes) ? hashes : packHexHashes(hashes);
    this.count = packed.count;
    this.words = packed.words;
    this.per = packed.per;
    this.maxDistance = maxDistance;
    const digits = packed.digits;
    const bands = maxDistance < 0 ? 0 : Math.min(maxDistance + 1, digits);
    // Band b is hex digits [cut(b), cut(b+1)): the same cuts as slicing the hex strings.
    const cut = (b: number): number => Math.round((b * digits) / bands);
    this.bands = Array.from({ length: bands }, (_, b) => segments(4 * cut(b), 4 * cut(b + 1)));
  }

  /**
   * Call `onPair(i, j, distance)` (i < j) for each pair within the distance, band by band, each
   * band's buckets in the order of their first member (as a Map filled in index order would
   * give). `consider(i, j)` may return false to skip a pair cheaply (e.g. already in one group).
   */
  forEach(consider: NearPairFilter, onPair: NearPairVisitor): void {
    const n = this.count;
    if (n < 2 || this.bands.length === 0) return;
    const { words, per, maxDistance } = this;
    const idxBits = Math.max(1, Math.ceil(Math.log2(n)));
    const scale = 2 ** idxBits;
    const order = new Uint32Array(n);
    const runStart = new Int32Array(n);
    const runEnd = new Int32Array(n);
    let packed: Float64Array | undefined;
    const distance = (i: number, j: number): number => {
      let d = 0;
      for (let w = 0; w < per; w++) d += popcount32((words[i * per + w]! ^ words[j * per + w]!) >>> 0);
      return d;
    };
    const bandEqual = (segs: readonly Segment[], i: number, j: number): boolean => {
      for (const s of segs) if (((words[i * per + s.word]! ^ words[j * per + s.word]!) & s.mask) !== 0) return false;
      return true;
    };
    for (let b = 0; b < this.bands.length; b++) {
      const segs = this.bands[b]!;
      const bits = segs.reduce((a, s) => a + s.bits, 0);
      if (bits + idxBits <= 53) {
        // key·2^idxBits + index in a double: one native numeric sort orders by key, then index.
        packed ??= new Float64Array(n);
        for (let i = 0; i < n; i++) packed[i] = this.key(segs, i) * scale + i;
        packed.sort();
        for (let p = 0; p < n; p++) order[p] = packed[p]! % scale;
      } else {
        // Wide bands (few bands over long hashes): compare the segments themselves.
        for (let i = 0; i < n; i++) order[i] = i;
        order.sort((x, y) => {
          for (const s of segs) {
            const d = ((words[x * per + s.word]! & s.mask) >>> s.shift) - ((words[y * per + s.word]! & s.mask) >>> s.shift);
            if (d !== 0) return d;
          }
          return x - y;
        });
      }
      // Buckets of two or more, indexed by their first (smallest) member.
      runStart.fill(-1);
      for (let p = 0; p < n; ) {
        let q = p + 1;
        while (q < n && bandEqual(segs, order[p]!, order[q]!)) q++;
        if (q - p > 1) {
          runStart[order[p]!] = p;
          runEnd[order[p]!] = q;
        }
        p = q;
      }
      for (let first = 0; first < n; first++) {
        const start = runStart[first]!;
        if (start < 0) continue;
        const end = runEnd[first]!;
        for (let x = start; x < end; x++) {
          for (let y = x + 1; y < end; y++) {
            const i = order[x]!;
            const j = order[y]!;
            if (!consider(i, j)) continue;
            // Seen already in an earlier shared band?
            let earlier = false;
            for (let e = 0; e < b && !earlier; e++) earlier = bandEqual(this.bands[e]!, i, j);
            if (earlier) continue;
            const d = distance(i, j);
            if (d <= maxDistance) onPair(i, j, d);
          }
        }
      }
    }
  }

  /** The band's bits of item i as one number (only called when they fit in 53 bits with the index). */
  private key(segs: readonly Segment[], i: number): number {
    let k = 0;
    for (const s of segs) k = k * 2 ** s.bits + ((this.words[i * this.per + s.word]! & s.mask) >>> s.shift);
    return k;
  }
}

/** Hex hashes, the same packed, or an index built over them (to search the same hashes twice). */
export type NearPairHashes = readonly string[] | PackedHashes | NearPairIndex;

function countOf(h: NearPairHashes): number {
  return Array.isArray(h) ? h.length : (h as PackedHashes | NearPairIndex).count;
}

function isPacked(h: readonly string[] | PackedHashes): h is PackedHashes {
  return !Array.isArray(h);
}

/** Bits [lo, hi) of a packed hash (bit 0 = the first hex digit's top bit) as per-word segments. */
function segments(lo: number, hi: number): Segment[] {
  const out: Segment[] = [];
  for (let w = lo >> 5; w < Math.ceil(hi / 32); w++) {
    const a = Math.max(lo, 32 * w) - 32 * w;
    const z = Math.min(hi, 32 * w + 32) - 32 * w;
    // Bits a…z-1 counted from the word's most significant bit (`>>> 32` would not shift).
    const mask = ((a === 0 ? 0xffffffff : 0xffffffff >>> a) & ~(z === 32 ? 0 : 0xffffffff >>> z)) >>> 0;
    out.push({ word: w, mask, shift: 32 - z, bits: z - a });
  }
  return out;
}

/** Every pair within `maxDistance`; see NearPairIndex. */
export function forEachNearPair(
  hashes: NearPairHashes,
  maxDistance: number,
  consider: NearPairFilter,
  onPair: NearPairVisitor,
): void {
  if (maxDistance < 0) return;
  indexOf(hashes, maxDistance).forEach(consider, onPair);
}

/** An index given as such must have been built for the same distance. */
function indexOf(hashes: NearPairHashes, maxDistance: number): NearPairIndex {
  if (!(hashes instanceof NearPairIndex)) return new NearPairIndex(hashes, maxDistance);
  if (hashes.maxDistance !== maxDistance) throw new Error(`near-pair index built for distance ${hashes.maxDistance}, asked for ${maxDistance}`);
  return hashes;
}

/** All pairs within `maxDistance` (for small sets and tests; prepare-data streams instead). */
export function nearDuplicatePairs(hashes: NearPairHashes, maxDistance: number): [number, number, number][] {
  const pairs: [number, number, number][] = [];
  forEachNearPair(hashes, maxDistance, () => true, (i, j, d) => pairs.push([i, j, d]));
  return pairs;
}

/** Near-duplicate groups: union-find over the pairs, skipping pairs already in one group. */
export function nearDuplicateGroups(hashes: NearPairHashes, maxDistance: number): { uf: UnionFind; links: number } {
  const uf = new UnionFind(countOf(hashes));
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
  // Per group root: the index of its smallest key, then the group's split (typed arrays, no Map).
  const smallest = new Int32Array(keys.length).fill(-1);
  for (let i = 0; i < keys.length; i++) {
    const root = uf.find(i);
    const current = smallest[root]!;
    if (current < 0 || keys[i]! < keys[current]!) smallest[root] = i;
  }
  const groupSplit = new Int8Array(keys.length).fill(-1);
  return keys.map((_, i) => {
    const root = uf.find(i);
    if (groupSplit[root]! < 0) groupSplit[root] = SPLITS.indexOf(splitOf(seed, keys[smallest[root]!]!, f));
    return SPLITS[groupSplit[root]!]!;
  });
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
export function crossSplitNearPairs(hashes: NearPairHashes, maxDistance: number, splits: readonly SplitName[]): number {
  let cross = 0;
  forEachNearPair(hashes, maxDistance, (i, j) => splits[i] !== splits[j], () => cross++);
  return cross;
}

/** Near-duplicate pairs whose members ended up in different splits (must be 0). */
export function crossSplitPairs(pairs: readonly [number, number, number][], splits: readonly SplitName[]): number {
  return pairs.filter(([i, j]) => splits[i] !== splits[j]).length;
}
