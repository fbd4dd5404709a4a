// The near-pair search as it was before the hashes were packed (a Map of index arrays per band,
// keyed by hex slices): kept only so tests can check the packed search visits the same pairs in
// the same order.

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
  return Math.imul((x + (x >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24;
}

export function referenceForEachNearPair(
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
