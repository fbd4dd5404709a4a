// The packed near-pair search (NearPairIndex) against the string-keyed search it replaced: the
// same pairs in the same order, hence the same groups, links, leakage counts and splits.

import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { packHexHashes } from '../../pipeline/data/images/hash.ts';
import {
  assignGroupSplits,
  crossSplitNearPairs,
  nearDuplicateGroups,
  nearDuplicatePairs,
  NearPairIndex,
  splitHash,
  splitOf,
  UnionFind,
  type SplitName,
} from '../../pipeline/data/prepare/split.ts';
import { referenceForEachNearPair } from './split-reference.ts';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32;
}

/** Random bases of `digits` hex digits, each with copies a few bits away, some exact, shuffled. */
function clustered(seed: number, digits: number, bases: number, flips: readonly number[]): string[] {
  const rnd = rng(seed);
  const out: string[] = [];
  for (let b = 0; b < bases; b++) {
    const base = Array.from({ length: digits }, () => Math.floor(rnd() * 16));
    for (const f of flips) {
      const h = [...base];
      for (let k = 0; k < f; k++) h[Math.floor(rnd() * digits)]! ^= 1 << Math.floor(rnd() * 4);
      out.push(h.map((v) => v.toString(16)).join(''));
    }
  }
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function referencePairs(hashes: readonly string[], d: number): [number, number, number][] {
  const pairs: [number, number, number][] = [];
  referenceForEachNearPair(hashes, d, () => true, (i, j, dist) => pairs.push([i, j, dist]));
  return pairs;
}

function bruteForce(hashes: readonly string[], d: number): string[] {
  const bits = (a: string, b: string): number => {
    let n = 0;
    for (let k = 0; k < a.length; k++) for (let x = parseInt(a[k]!, 16) ^ parseInt(b[k]!, 16); x; x &= x - 1) n++;
    return n;
  };
  const out: string[] = [];
  for (let i = 0; i < hashes.length; i++) for (let j = i + 1; j < hashes.length; j++) if (bits(hashes[i]!, hashes[j]!) <= d) out.push(`${i}-${j}`);
  return out.sort();
}

// Groups as a canonical partition: each item's smallest fellow member.
function partition(uf: UnionFind, n: number): number[] {
  const least = new Map<number, number>();
  for (let i = 0; i < n; i++) if (!least.has(uf.find(i))) least.set(uf.find(i), i);
  return Array.from({ length: n }, (_, i) => least.get(uf.find(i))!);
}

describe('packHexHashes', () => {
  it('packs digits big-endian, zero-pads the last word and reads either case', () => {
    const p = packHexHashes(['0123456789abcdef0', '0123456789ABCDEFf']);
    expect(p).toMatchObject({ per: 3, digits: 17, count: 2 });
    expect([...p.words]).toEqual([0x01234567, 0x89abcdef, 0, 0x01234567, 0x89abcdef, 0xf0000000]);
  });

  it('rejects hashes of another length and non-hex digits', () => {
    expect(() => packHexHashes(['abcd', 'abc'])).toThrow(/hash 1 has 3 hex digits/);
    expect(() => packHexHashes(['abcd', 'abgd'])).toThrow(/hash 1 is not hex: "g" at digit 2/);
  });
});

describe('NearPairIndex', () => {
  const cases: [digits: number, distance: number, n: number][] = [
    [64, 12, 400], // prepare-data's default: 13 bands of 16–20 bits
    [64, 4, 300], // 5 bands of 48–52 bits: too wide to share a double with the index
    [64, 5, 300], // 6 bands of 40–44 bits: just fits
    [64, 0, 120], // one 256-bit band
    [16, 3, 300],
    [16, 0, 200],
    [13, 2, 300], // digits not a multiple of 8
    [13, 0, 2], // one 52-bit band, two items: key·2 + index still exact
    [3, 7, 150], // more bands asked for than digits: as before, pairs differing in every digit are missed
    [64, 40, 120],
  ];

  for (const [digits, d, n] of cases) {
    it(`visits the same pairs in the same order as the string-keyed search (${digits} digits, distance ${d}, ${n} hashes)`, () => {
      const flips = [0, 0, 1, 2, Math.max(1, d >> 1), d, d + 1, d + 3];
      const hashes = clustered(digits * 1000 + d, digits, Math.ceil(n / flips.length), flips).slice(0, n);
      const expected = referencePairs(hashes, d);
      expect(nearDuplicatePairs(hashes, d)).toEqual(expected);
      const found = expected.map(([i, j]) => `${i}-${j}`).sort();
      // Complete only while there are distance+1 bands (one hex digit at least each).
      if (d < digits) expect(found).toEqual(bruteForce(hashes, d));
      else expect(bruteForce(hashes, d)).toEqual(expect.arrayContaining(found));
      if (n > 10) expect(expected.length).toBeGreaterThan(n / 8);
    });
  }

  it('gives the same groups, links and leakage count as the string-keyed search, twice over one index', () => {
    const hashes = clustered(7, 64, 150, [0, 2, 5, 9, 12, 13, 20]);
    const index = new NearPairIndex(hashes, 12);
    const ref = new UnionFind(hashes.length);
    let refLinks = 0;
    referenceForEachNearPair(hashes, 12, (i, j) => ref.find(i) !== ref.find(j), (i, j) => (ref.union(i, j), refLinks++));
    const { uf, links } = nearDuplicateGroups(index, 12);
    expect(links).toBe(refLinks);
    expect(partition(uf, hashes.length)).toEqual(partition(ref, hashes.length));
    expect(new Set(partition(uf, hashes.length)).size).toBeLessThan(hashes.length * 0.6);

    // A split that ignores the groups leaks; the reference counts the same pairs.
    const naive = hashes.map((_, i) => splitOf(3, `k${i}`, { train: 0.6, val: 0.2 }));
    let refCross = 0;
    referenceForEachNearPair(hashes, 12, (i, j) => naive[i] !== naive[j], () => refCross++);
    expect(refCross).toBeGreaterThan(0);
    expect(crossSplitNearPairs(index, 12, naive)).toBe(refCross);
    expect(crossSplitNearPairs(hashes, 12, naive)).toBe(refCross);
    expect(crossSplitNearPairs(packHexHashes(hashes), 12, naive)).toBe(refCross);
    const grouped = assignGroupSplits(hashes.map((_, i) => `k${i}`), uf, 3, { train: 0.6, val: 0.2 });
    expect(crossSplitNearPairs(index, 12, grouped)).toBe(0);
    expect(() => crossSplitNearPairs(index, 11, grouped)).toThrow(/built for distance 12/);
  });

  it('finds nothing for a negative distance or fewer than two hashes', () => {
    expect(nearDuplicatePairs(['ab', 'ab'], -1)).toEqual([]);
    expect(nearDuplicatePairs(['ab'], 3)).toEqual([]);
    expect(nearDuplicatePairs([], 3)).toEqual([]);
    expect(nearDuplicateGroups(['ab', 'ab'], -1).links).toBe(0);
  });
});

describe('assignGroupSplits', () => {
  it('gives each group the split of its smallest key, as the Map-based assignment did', () => {
    const rnd = rng(5);
    const n = 2000;
    const keys = Array.from({ length: n }, () => Math.floor(rnd() * 1e9).toString(36));
    const uf = new UnionFind(n);
    for (let k = 0; k < 900; k++) uf.union(Math.floor(rnd() * n), Math.floor(rnd() * n));
    const f = { train: 0.7, val: 0.15 };
    const groupKey = new Map<number, string>();
    for (let i = 0; i < n; i++) {
      const cur = groupKey.get(uf.find(i));
      if (cur === undefined || keys[i]! < cur) groupKey.set(uf.find(i), keys[i]!);
    }
    const expected: SplitName[] = keys.map((_, i) => splitOf(42, groupKey.get(uf.find(i))!, f));
    const got = assignGroupSplits(keys, uf, 42, f);
    expect(got).toEqual(expected);
    expect(new Set(got).size).toBe(3);
  });
});

describe('splitHash', () => {
  it('is the first 52 bits of sha256(seed NUL key), so existing splits never move', () => {
    const digestWay = (seed: number, key: string): number => {
      const d = createHash('sha256').update(`${seed}\0${key}`).digest();
      return (d.readUInt32BE(0) * 2 ** 20 + (d.readUInt32BE(4) >>> 12)) / 2 ** 52;
    };
    for (let i = 0; i < 500; i++) {
      const key = i % 3 ? `img${i}` : `é🙂${i}`;
      expect(splitHash(i % 4, key)).toBe(digestWay(i % 4, key));
    }
    expect(splitHash(42, 'a')).toBe(digestWay(42, 'a'));
    expect(splitHash(42, 'a')).not.toBe(splitHash(43, 'a'));
  });
});
