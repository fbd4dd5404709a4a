import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseParams } from '../../pipeline/core/params.ts';
import type { StageContext } from '../../pipeline/core/stage.ts';
import { fromLetterbox } from '../../pipeline/data/images/letterbox.ts';
import { openImageTensorFile } from '../../pipeline/data/images/tensor-file.ts';
import { prepareDataStage } from '../../pipeline/data/prepare-data.ts';
import { RAW_COLUMNS } from '../../pipeline/data/fusion/schema.ts';
import { assignSplits, crossSplitNearPairs, crossSplitPairs, nearDuplicateGroups, nearDuplicatePairs, splitOf } from '../../pipeline/data/prepare/split.ts';
import { RecordingLogger } from '../support/logger.ts';
import { picture } from '../support/pictures.ts';

const CLASSES = ['Acne', 'Blackheads', 'Dark-Spots', 'Dry-Skin', 'Englarged-Pores', 'Eyebags', 'Oily-Skin', 'Skin-Redness', 'Whiteheads', 'Wrinkles'];
const W = 80;
const H = 60;

const raw = (seed: number, w = W, h = H) => sharp(picture(w, h, seed), { raw: { width: w, height: h, channels: 3 } });
const SKIN = ['Dry', 'Normal', 'Oily'];

interface Fixture {
  root: string;
  good: string[];
}

/** A YOLO export with `n` good images and, optionally, one of every bad-input class. */
async function yoloDataset(root: string, n: number, opts: { bad?: boolean; seedOffset?: number } = {}): Promise<Fixture> {
  const meta: string[] = [];
  const good: string[] = [];
  await writeFile(join(root, 'data.yaml'), `path: .\ntrain: train/images\nval: valid/images\ntest: test/images\nnc: 10\nnames: ${JSON.stringify(CLASSES)}\n`);
  for (const s of ['train', 'valid', 'test']) {
    await mkdir(join(root, s, 'images'), { recursive: true });
    await mkdir(join(root, s, 'labels'), { recursive: true });
  }
  const put = async (id: string, bytes: Buffer, label: string | null, skin = 'Normal', ext = 'jpg') => {
    const file = `train/images/${id}.${ext}`;
    await writeFile(join(root, file), bytes);
    if (label !== null) await writeFile(join(root, 'train', 'labels', `${id}.txt`), label);
    meta.push(JSON.stringify({ id, file, skin_type: skin, skin_tone: ['I', 'II', 'III', 'IV', 'V', 'VI'][id.length % 6], source: 'synthetic' }));
  };
  for (let i = 0; i < n; i++) {
    const seed = i + (opts.seedOffset ?? 0);
    const id = `img${String(seed).padStart(4, '0')}`;
    await put(id, await raw(seed).jpeg({ quality: 90 }).toBuffer(), `${seed % 10} 0.5 0.5 0.25 0.5\n${(seed + 3) % 10} 0.2 0.3 0.1 0.1\n`, SKIN[seed % 3]);
    good.push(id);
  }
  if (opts.bad) {
    const ok = '0 0.5 0.5 0.2 0.2\n';
    const jpg = await raw(900).jpeg().toBuffer();
    await put('bad-truncated', jpg.subarray(0, Math.floor(jpg.length * 0.6)), ok);
    await put('bad-zero', Buffer.alloc(0), ok);
    await put('bad-tiny', await raw(901, 16, 16).jpeg().toBuffer(), ok);
    await put('bad-class', await raw(902).jpeg().toBuffer(), '12 0.5 0.5 0.2 0.2\n');
    await put('bad-degenerate', await raw(903).jpeg().toBuffer(), '1 0.5 0.5 0 0.2\n');
    await put('bad-outside', await raw(904).jpeg().toBuffer(), '1 0.95 0.5 0.3 0.2\n');
    await put('bad-nolabel', await raw(905).jpeg().toBuffer(), null);
    await put('note-cmyk', await raw(906).toColourspace('cmyk').jpeg().toBuffer(), ok);
    await put('note-16bit', await raw(907).toColourspace('rgb16').png().toBuffer(), ok, 'Dry', 'png');
    await put('note-alpha', await raw(908).ensureAlpha(0.5).png().toBuffer(), ok, 'Oily', 'png');
    await put('note-gray', await raw(909).toColourspace('b-w').png().toBuffer(), ok, 'Dry', 'png');
    await put('note-rotated', await raw(910).jpeg().withMetadata({ orientation: 6 }).toBuffer(), '2 0.25 0.5 0.3 0.4\n');
    // Exact duplicate of img0000 and a near duplicate (re-encoded) of img0001.
    await copyFile(join(root, 'train/images/img0000.jpg'), join(root, 'train/images/zz-copy.jpg'));
    await writeFile(join(root, 'train/labels/zz-copy.txt'), '0 0.5 0.5 0.25 0.5\n');
    meta.push(JSON.stringify({ id: 'zz-copy', file: 'train/images/zz-copy.jpg', skin_type: 'Normal', skin_tone: 'I', source: 'synthetic' }));
    await put('zz-near', await raw(1).jpeg({ quality: 70 }).toBuffer(), '1 0.5 0.5 0.25 0.5\n', SKIN[1]);
  }
  await writeFile(join(root, 'metadata.jsonl'), meta.join('\n') + '\n');
  return { root, good };
}

function ctxFor(root: string, params: Record<string, unknown>, dep = 'raw', out = 'prepared'): StageContext<any> {
  return {
    name: 'prepare',
    kind: 'prepare-data',
    params: parseParams(prepareDataStage.params, params, { what: 'prepare' }),
    settings: { seed: 42, cacheDir: '.cache', jobs: 2 },
    root,
    deps: [dep],
    outs: [out],
    path: (rel: string) => join(root, rel),
    out: (rel: string) => join(root, 'staged', rel),
    tmpDir: join(root, 'tmp'),
    logger: new RecordingLogger(),
    now: () => new Date(0),
    signal: new AbortController().signal,
    env: {},
  };
}

const jsonl = async (path: string) => (await readFile(path, 'utf8')).split('\n').filter(Boolean).map((l) => JSON.parse(l));

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'prepare-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('prepare-data: detection', () => {
  let root: string;
  let outDir: string;
  let result: Awaited<ReturnType<NonNullable<typeof prepareDataStage.run>>>;
  beforeAll(async () => {
    root = join(work, 'det');
    await mkdir(join(root, 'raw'), { recursive: true });
    await yoloDataset(join(root, 'raw'), 30, { bad: true });
    result = await prepareDataStage.run!(ctxFor(root, { task: 'detection', 'image-size': 64, 'max-bad-fraction': 0.5 }));
    outDir = join(root, 'staged', 'prepared');
  });

  it('quarantines every bad-input class with its reason, keeping the files on disk', async () => {
    const q = await jsonl(join(outDir, 'quarantine.jsonl'));
    const byFile = Object.fromEntries(q.map((e) => [e.file.replace(/^train\/images\//, ''), e.reason]));
    expect(byFile).toEqual({
      'bad-truncated.jpg': 'truncated',
      'bad-zero.jpg': 'zero-byte',
      'bad-tiny.jpg': 'too-small',
      'bad-class.jpg': 'class-out-of-range',
      'bad-degenerate.jpg': 'degenerate-box',
      'bad-outside.jpg': 'box-outside',
      'bad-nolabel.jpg': 'missing-label',
      'zz-copy.jpg': 'exact-duplicate',
    });
    expect(q.find((e) => e.reason === 'exact-duplicate').detail).toContain('img0000.jpg');
    expect(q.find((e) => e.reason === 'class-out-of-range').detail).toMatch(/bad-class\.txt:1: class id 12 outside 0\.\.9/);
    await expect(readFile(join(root, 'raw/train/images/bad-truncated.jpg'))).resolves.toBeInstanceOf(Buffer);
    expect(result.outputs).toMatchObject({ quarantined: '8', 'prepared-dir': 'prepared' });
  });

  it('reports conversions, near duplicates without leakage and split counts', async () => {
    const report = JSON.parse(await readFile(join(outDir, 'validation.json'), 'utf8'));
    expect(report.notes).toEqual({ cmyk: 1, '16-bit': 1, alpha: 1, grayscale: 1, 'exif-orientation': 1 });
    expect(report.total).toBe(30 + 14);
    expect(report.kept).toBe(36);
    expect(report.nearDuplicates.groups).toBeGreaterThanOrEqual(1);
    expect(report.nearDuplicates.itemsInGroups).toBe(2);
    expect(report.nearDuplicates.crossSplitPairs).toBe(0);
    const { train, val, test } = report.splits;
    expect(train + val + test).toBe(36);
    expect(Number(result.outputs.train) + Number(result.outputs.val) + Number(result.outputs.test)).toBe(36);
    const md = await readFile(join(outDir, 'validation.md'), 'utf8');
    expect(md).toContain('| truncated | 1 |');
    expect(md).toContain('pairs across splits: **0**');
    // The near duplicate and its original share a split.
    const where = new Map<string, string>();
    for (const s of ['train', 'val', 'test']) for (const item of await jsonl(join(outDir, s, 'index.jsonl'))) where.set(item.id, s);
    expect(where.get('zz-near')).toBe(where.get('img0001'));
    expect(where.has('zz-copy')).toBe(false);
  });

  it('writes letterboxed tensors whose boxes map back to the original pixels', async () => {
    for (const s of ['train', 'val', 'test']) {
      const file = await openImageTensorFile(outDir, s);
      try {
        expect(file.meta).toMatchObject({ shape: [file.items.length, 64, 64, 3], layout: 'HWC', resize: 'letterbox', padValue: 114 });
        const item = file.items.find((i) => i.id === 'img0004');
        if (item) {
          // img0004: class 4 at (0.5, 0.5, 0.25, 0.5) on 80×60 → pixels [30, 15, 50, 45].
          expect(item.boxes![0]![0]).toBe(4);
          const back = fromLetterbox(item.boxes![0]!.slice(1) as [number, number, number, number], item);
          back.forEach((v, k) => expect(v).toBeCloseTo([30, 15, 50, 45][k]!, 9));
          // 80×60 → 64×48 with 8 rows of 114 padding on top.
          const px = await file.readRow(item.row);
          expect([...px.subarray(0, 3)]).toEqual([114, 114, 114]);
        }
        const rotated = file.items.find((i) => i.id === 'note-rotated');
        if (rotated) expect([rotated.width, rotated.height]).toEqual([60, 80]);
      } finally {
        await file.close();
      }
    }
  });

  it('profiles the training split with histograms that sum to its count', async () => {
    const profile = JSON.parse(await readFile(join(outDir, 'reference-profile.json'), 'utf8'));
    const report = JSON.parse(await readFile(join(outDir, 'validation.json'), 'utf8'));
    expect(profile.count).toBe(report.splits.train);
    for (const name of ['image.brightness', 'image.contrast', 'image.mean_r', 'image.sharpness']) {
      const h = profile.numeric[name];
      expect(h.counts.reduce((a: number, b: number) => a + b, 0) + h.underflow + h.overflow).toBe(report.splits.train);
      expect(Object.keys(h.quantiles)).toEqual(['p0', 'p1', 'p5', 'p25', 'p50', 'p75', 'p95', 'p99', 'p100']);
    }
    expect(profile.categorical.skin_tone.count).toBe(report.splits.train);
    expect(profile.labels.count).toBeGreaterThan(report.splits.train); // boxes, not images
  });

  it('fails when too many items are bad, summarising counts by reason', async () => {
    const ctx = ctxFor(root, { task: 'detection', 'image-size': 64, 'max-bad-fraction': 0.1 }, 'raw', 'again');
    await expect(prepareDataStage.run!(ctx)).rejects.toMatchObject({
      name: 'DataError',
      message: expect.stringMatching(/8 of 44 items are bad .*max-bad-fraction.*truncated: 1/),
    });
  });

  it('quarantines colour oddities under strict-colour', async () => {
    const ctx = ctxFor(root, { task: 'detection', 'image-size': 64, 'max-bad-fraction': 0.5, 'strict-colour': true }, 'raw', 'strict');
    const r = await prepareDataStage.run!(ctx);
    expect(r.outputs.quarantined).toBe('12');
    const q = await jsonl(join(root, 'staged', 'strict', 'quarantine.jsonl'));
    expect(q.map((e) => e.reason).sort()).toEqual(expect.arrayContaining(['cmyk', '16-bit', 'alpha', 'grayscale']));
  });
});

describe('prepare-data: classification', () => {
  it('labels from metadata, normalises with ImageNet mean/std, and keeps splits when items are added', async () => {
    const root = join(work, 'cls');
    await mkdir(join(root, 'raw'), { recursive: true });
    await yoloDataset(join(root, 'raw'), 24);
    await prepareDataStage.run!(ctxFor(root, { task: 'classification', 'image-size': 32 }, 'raw', 'first'));
    const splitsOf = async (out: string) => {
      const m = new Map<string, string>();
      for (const s of ['train', 'val', 'test']) for (const item of await jsonl(join(root, 'staged', out, s, 'index.jsonl'))) m.set(item.id, s);
      return m;
    };
    const first = await splitsOf('first');
    expect(first.size).toBe(24);
    const train = await openImageTensorFile(join(root, 'staged', 'first'), 'train');
    try {
      expect(train.meta.mean).toEqual([0.485, 0.456, 0.406]);
      expect(train.meta.std).toEqual([0.229, 0.224, 0.225]);
      expect(train.meta.classNames).toEqual(['Dry', 'Normal', 'Oily']);
      const item = train.items[0]!;
      expect(item.label).toBe(Number(item.id.slice(3)) % 3);
      const px = await train.readRow(0);
      const batch = (await train.batches(1).next()).value!;
      expect(batch.data[0]).toBeCloseTo((px[0]! / 255 - 0.485) / 0.229, 5);
    } finally {
      await train.close();
    }
    // Same data, same seed: identical splits (determinism). More data: existing items stay put.
    await yoloDataset(join(root, 'raw'), 40);
    await prepareDataStage.run!(ctxFor(root, { task: 'classification', 'image-size': 32 }, 'raw', 'second'));
    const second = await splitsOf('second');
    expect(second.size).toBe(40);
    for (const [id, s] of first) expect(second.get(id), id).toBe(s);
    // A different seed moves some.
    await prepareDataStage.run!(ctxFor(root, { task: 'classification', 'image-size': 32, seed: 7 }, 'raw', 'third'));
    const third = await splitsOf('third');
    expect([...second].some(([id, s]) => third.get(id) !== s)).toBe(true);
  });

  it('labels from class folders', async () => {
    const root = join(work, 'folders');
    for (const [k, c] of SKIN.entries()) {
      await mkdir(join(root, 'raw', c), { recursive: true });
      for (let i = 0; i < 4; i++) await writeFile(join(root, 'raw', c, `${i}.png`), await raw(100 + k * 10 + i).png().toBuffer());
    }
    const r = await prepareDataStage.run!(ctxFor(root, { task: 'classification', 'image-size': 32, 'label-source': 'folders' }));
    expect(Number(r.outputs.train) + Number(r.outputs.val) + Number(r.outputs.test)).toBe(12);
    const report = JSON.parse(await readFile(join(root, 'staged', 'prepared', 'validation.json'), 'utf8'));
    expect(report.classBalance.counts).toEqual({ Dry: 4, Normal: 4, Oily: 4 });
  });
});

describe('splits', () => {
  it('are stratified within tolerance and stable when items are added', () => {
    const f = { train: 0.7, val: 0.15 };
    for (const cls of ['a', 'b', 'c']) {
      const keys = Array.from({ length: 1500 }, (_, i) => `${cls}-${i}`);
      const splits = keys.map((k) => splitOf(42, k, f));
      const frac = (s: string) => splits.filter((x) => x === s).length / keys.length;
      expect(frac('train')).toBeGreaterThan(0.66);
      expect(frac('train')).toBeLessThan(0.74);
      expect(frac('val')).toBeGreaterThan(0.12);
      expect(frac('val')).toBeLessThan(0.18);
    }
    const base = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const before = assignSplits(base, [], 42, f).splits;
    const after = assignSplits([...base, ...Array.from({ length: 300 }, (_, i) => `new${i}`)], [], 42, f).splits;
    expect(after.slice(0, 200)).toEqual(before);
  });

  it('finds every pair within the distance, as a full scan does', () => {
    let s = 99;
    const rnd = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 2 ** 32);
    const base = Array.from({ length: 20 }, () => Array.from({ length: 64 }, () => Math.floor(rnd() * 16).toString(16)).join(''));
    // Each base plus a few copies with some bits flipped.
    const hashes = base.flatMap((h) =>
      [0, 3, 9, 14].map((flips) => {
        const bits = [...h].map((c) => parseInt(c, 16));
        for (let k = 0; k < flips; k++) bits[Math.floor(rnd() * 64)]! ^= 1 << Math.floor(rnd() * 4);
        return bits.map((b) => b.toString(16)).join('');
      }),
    );
    const full: string[] = [];
    const popcount = (a: string, b: string) => [...a].reduce((d, c, i) => d + ((parseInt(c, 16) ^ parseInt(b[i]!, 16)).toString(2).split('1').length - 1), 0);
    for (let i = 0; i < hashes.length; i++) for (let j = i + 1; j < hashes.length; j++) if (popcount(hashes[i]!, hashes[j]!) <= 12) full.push(`${i}-${j}`);
    const fast = nearDuplicatePairs(hashes, 12).map(([i, j]) => `${i}-${j}`);
    expect(fast.sort()).toEqual(full.sort());
    expect(full.length).toBeGreaterThan(20);
  });

  it('keeps near-duplicate groups in one split', () => {
    const hashes = ['0000000000000000', '0000000000000003', '000000000000000f', 'ffffffffffffffff', 'fffffffffffffff0', '1234567890abcdef'];
    const pairs = nearDuplicatePairs(hashes, 4);
    expect(pairs.map(([i, j]) => `${i}-${j}`).sort()).toEqual(['0-1', '0-2', '1-2', '3-4']);
    for (let seed = 0; seed < 30; seed++) {
      const { splits } = assignSplits(hashes.map((_, i) => `key${i}`), pairs, seed, { train: 0.5, val: 0.25 });
      expect(crossSplitPairs(pairs, splits)).toBe(0);
      expect(crossSplitNearPairs(hashes, 4, splits)).toBe(0);
    }
    // The recomputed check does see a leak when the splits are forced apart.
    expect(crossSplitNearPairs(hashes, 4, ['train', 'val', 'train', 'test', 'test', 'val'])).toBe(2); // 0-1 and 1-2
    const { uf, links } = nearDuplicateGroups(hashes, 4);
    expect(links).toBe(3); // 0-1, 0-2 (or 1-2), 3-4: pairs inside a group are skipped
    expect(uf.find(2)).toBe(uf.find(0));
    expect(uf.find(4)).toBe(uf.find(3));
    expect(uf.find(5)).not.toBe(uf.find(0));
  });
});

describe('prepare-data: tabular', () => {
  it('quarantines bad rows with their line, encodes and splits the rest', async () => {
    const root = join(work, 'tab');
    await mkdir(join(root, 'raw'), { recursive: true });
    const good = (i: number) =>
      `${20 + (i % 60)},${i % 2 ? 'Male' : 'Female'},7,5,Good,No,Low,Dry,0.5,0,0,0.5,0,0,0,0,0,0,0.2,0.5,0.3,${[0, 1, 2, 4][i % 4]}`;
    const lines = [RAW_COLUMNS.join(',')];
    for (let i = 0; i < 200; i++) lines.push(good(i));
    lines.push(good(1) + ',extra'); // line 202
    lines.push(good(2).replace(/^\d+/, 'abc')); // 203
    lines.push(good(3).replace(/^\d+/, 'NaN')); // 204
    lines.push(good(4).replace(',7,', ',Infinity,')); // 205
    lines.push(good(5).replace(/^\d+/, '400')); // 206
    await writeFile(join(root, 'raw', 'fusion.csv'), lines.join('\n') + '\n');
    const r = await prepareDataStage.run!(ctxFor(root, { task: 'tabular' }));
    expect(r.outputs.quarantined).toBe('5');
    const out = join(root, 'staged', 'prepared');
    const q = await jsonl(join(out, 'quarantine.jsonl'));
    expect(q.map((e) => [e.line, e.reason])).toEqual([
      [202, 'wrong-column-count'],
      [203, 'non-numeric'],
      [204, 'not-finite'],
      [205, 'not-finite'],
      [206, 'out-of-range'],
    ]);
    expect(q[4].file).toBe('raw/fusion.csv');
    expect(q[4].detail).toContain('age 400');
    let rows = 0;
    for (const s of ['train', 'val', 'test']) {
      const text = (await readFile(join(out, `${s}.csv`), 'utf8')).trim().split('\n');
      expect(text[0]!.split(',')).toHaveLength(28);
      rows += text.length - 1;
      expect(text.length - 1).toBe(Number(r.outputs[s]));
    }
    expect(rows).toBe(200);
    const profile = JSON.parse(await readFile(join(out, 'reference-profile.json'), 'utf8'));
    expect(profile.numeric.age.count).toBe(Number(r.outputs.train));
    expect(profile.categorical.gender.count).toBe(Number(r.outputs.train));
    // Over the threshold: fails naming the counts by reason.
    await expect(prepareDataStage.run!(ctxFor(root, { task: 'tabular', 'max-bad-fraction': 0.01 }, 'raw', 'strict'))).rejects.toThrow(
      /5 of 205 items are bad.*not-finite: 2/,
    );
  });
});
