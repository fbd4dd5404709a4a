import { createHash } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { detectLayout, readDatasetManifest, verifyDatasetManifest, writeDatasetManifest } from '../../pipeline/data/layout/index.ts';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'layout-test-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tree(files: Record<string, string>, base = dir): Promise<void> {
  for (const [path, body] of Object.entries(files)) {
    await mkdir(dirname(join(base, path)), { recursive: true });
    await writeFile(join(base, path), body);
  }
}

const NAMES = ['Acne', 'Blackheads', 'Dark-Spots'];
function yoloFiles(prefix = ''): Record<string, string> {
  return {
    [`${prefix}data.yaml`]: `path: .\ntrain: train/images\nval: valid/images\ntest: test/images\nnc: 3\nnames: [${NAMES.join(', ')}]\n`,
    [`${prefix}train/images/a.jpg`]: 'jpg-a',
    [`${prefix}train/images/b.jpg`]: 'jpg-b',
    [`${prefix}train/labels/a.txt`]: '0 0.5 0.5 0.1 0.1\n2 0.2 0.2 0.1 0.1\n',
    [`${prefix}train/labels/b.txt`]: '0 0.4 0.4 0.1 0.1\n',
    [`${prefix}valid/images/c.jpg`]: 'jpg-c',
    [`${prefix}valid/labels/c.txt`]: '1 0.5 0.5 0.2 0.2\n',
    [`${prefix}test/images/d.png`]: 'png-d',
    [`${prefix}test/labels/d.txt`]: '',
  };
}

describe('detectLayout', () => {
  it('recognises a YOLO export wrapped in one top folder, as Kaggle zips are', async () => {
    await tree(yoloFiles('datasetam/'));
    const layout = await detectLayout(dir);
    expect(layout.kind).toBe('yolo');
    expect(layout.root).toBe('datasetam');
    expect(layout.components).toEqual(['yolo']);
    expect(layout.yolo).toEqual({
      dataYaml: 'datasetam/data.yaml',
      names: NAMES,
      nc: 3,
      splits: [
        { name: 'train', images: 'datasetam/train/images', labels: 'datasetam/train/labels', imageCount: 2, labelCount: 2 },
        { name: 'valid', images: 'datasetam/valid/images', labels: 'datasetam/valid/labels', imageCount: 1, labelCount: 1 },
        { name: 'test', images: 'datasetam/test/images', labels: 'datasetam/test/labels', imageCount: 1, labelCount: 1 },
      ],
    });
  });

  it('reads `names` as an id → name mapping and rejects a wrong `nc`', async () => {
    await tree({ ...yoloFiles(), 'data.yaml': 'nc: 3\nnames:\n  0: Acne\n  1: Blackheads\n  2: Dark-Spots\n' });
    expect((await detectLayout(dir)).yolo?.names).toEqual(NAMES);
    await writeFile(join(dir, 'data.yaml'), 'nc: 4\nnames: [Acne, Blackheads, Dark-Spots]\n');
    await expect(detectLayout(dir)).rejects.toThrow(/data.yaml: `nc` is 4 but `names` lists 3 classes/);
  });

  it('recognises class-per-folder trees, with and without split folders', async () => {
    await tree({ 'Dry/1.jpg': 'x', 'Dry/2.jpg': 'x', 'Oily/3.jpg': 'x', 'Normal/4.png': 'x' });
    const flat = await detectLayout(dir);
    expect(flat.kind).toBe('class-folders');
    expect(flat.classFolders).toEqual({ classes: ['Dry', 'Normal', 'Oily'], splits: [{ name: null, dir: '', counts: { Dry: 2, Oily: 1, Normal: 1 } }] });

    const other = await mkdtemp(join(tmpdir(), 'layout-test-'));
    try {
      await tree({ 'skin/train/Dry/1.jpg': 'x', 'skin/train/Oily/2.jpg': 'x', 'skin/valid/Dry/3.jpg': 'x' }, other);
      const split = await detectLayout(other);
      expect(split.kind).toBe('class-folders');
      expect(split.root).toBe('skin');
      expect(split.classFolders?.splits.map((s) => [s.name, s.counts])).toEqual([
        ['train', { Dry: 1, Oily: 1 }],
        ['valid', { Dry: 1 }],
      ]);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });

  it('recognises CSV tables with their columns and row counts', async () => {
    await tree({ 'tables/data.csv': 'age,"skin type",target\n30,Dry,5\n41,Oily,7\n\n' });
    const layout = await detectLayout(dir);
    expect(layout.kind).toBe('csv');
    expect(layout.tables).toEqual([{ path: 'tables/data.csv', columns: ['age', 'skin type', 'target'], rows: 2 }]);
  });

  it('recognises the synthetic layout and reports all its components', async () => {
    await tree({
      ...yoloFiles(),
      'metadata.jsonl': '{"id":"a","file":"train/images/a.jpg","skin_type":"Dry"}\n{"id":"c","file":"valid/images/c.jpg","skin_type":"Oily"}\n',
      'fusion.csv': 'age,gender,target\n30,Female,12\n',
    });
    const layout = await detectLayout(dir);
    expect(layout.kind).toBe('synthetic');
    expect(layout.components).toEqual(['yolo', 'csv', 'metadata']);
    expect(layout.metadata).toEqual({ path: 'metadata.jsonl', records: 2 });
    expect(layout.tables?.[0]).toMatchObject({ path: 'fusion.csv', rows: 1 });
  });

  it('says what it found when the layout is unrecognised', async () => {
    await tree({ 'notes.txt': 'x', 'stuff/a.bin': 'x', 'stuff/b.bin': 'x', 'img/only.jpg': 'x' });
    const error = (await detectLayout(dir).catch((e: Error) => e)) as Error;
    expect(error.name).toBe('DataError');
    expect(error.message).toMatch(/unrecognised dataset layout: top-level entries img\/, notes.txt, stuff\/; 4 files by extension: .bin 2, .jpg 1, .txt 1/);
    expect(error.message).toMatch(/expected an Ultralytics YOLO export/);
    const empty = await mkdtemp(join(tmpdir(), 'layout-test-'));
    await expect(detectLayout(empty)).rejects.toThrow(/the dataset is empty/);
    await rm(empty, { recursive: true });
  });
});

describe('dataset manifest', () => {
  const source = { type: 'kaggle' as const, description: 'Kaggle dataset o/s version 2', dataset: 'o/s', version: 2, url: 'https://www.kaggle.com/datasets/o/s/versions/2' };

  it('writes manifest.json and files.jsonl, deterministically', async () => {
    await tree({
      ...yoloFiles(),
      'metadata.jsonl': '{"file":"train/images/a.jpg","skin_type":"Dry"}\n{"file":"train/images/b.jpg","skin_type":"Dry"}\n{"file":"valid/images/c.jpg","skin_type":"Oily"}\n',
      'fusion.csv': 'age,target\n30,12\n31,12\n40,3\n',
    });
    const manifest = await writeDatasetManifest(dir, { name: 'synthetic', source, archiveSha256: 'ab'.repeat(32) });
    expect(manifest).toMatchObject({ schema: 1, name: 'synthetic', source, archiveSha256: 'ab'.repeat(32) });
    expect(manifest.layout.kind).toBe('synthetic');
    expect(manifest.counts).toEqual({ files: 11, images: 4, byExtension: { '.csv': 1, '.jpg': 3, '.jsonl': 1, '.png': 1, '.txt': 4, '.yaml': 1 } });
    expect(manifest.labelCounts.detection).toEqual({ train: { Acne: 2, 'Dark-Spots': 1 }, valid: { Blackheads: 1 }, test: {} });
    expect(manifest.labelCounts.skinType).toEqual({ train: { Dry: 2 }, valid: { Oily: 1 } });
    expect(manifest.labelCounts.tables).toEqual({ 'fusion.csv': { target: { '3': 1, '12': 2 } } });

    const list = await readFile(join(dir, 'files.jsonl'), 'utf8');
    const lines = list.trim().split('\n').map((l) => JSON.parse(l) as { path: string; size: number; sha256: string });
    expect(lines.map((l) => l.path)).toEqual([...lines.map((l) => l.path)].sort());
    expect(lines.find((l) => l.path === 'train/images/a.jpg')).toEqual({ path: 'train/images/a.jpg', size: 5, sha256: createHash('sha256').update('jpg-a').digest('hex') });
    expect(lines.some((l) => l.path === 'manifest.json' || l.path === 'files.jsonl')).toBe(false);
    expect(manifest.filesSha256).toBe(createHash('sha256').update(list).digest('hex'));
    expect(manifest.totalBytes).toBe(lines.reduce((s, l) => s + l.size, 0));

    const first = await readFile(join(dir, 'manifest.json'), 'utf8');
    await writeDatasetManifest(dir, { name: 'synthetic', source, archiveSha256: 'ab'.repeat(32) });
    expect(await readFile(join(dir, 'manifest.json'), 'utf8')).toBe(first);
    expect(await readDatasetManifest(dir)).toEqual(manifest);
  });

  it('verify re-hashes and reports changed, missing and extra files', async () => {
    await tree(yoloFiles());
    await writeDatasetManifest(dir, { name: 'd', source });
    expect(await verifyDatasetManifest(dir)).toMatchObject({ ok: true, checked: 9, listIntact: true, mismatches: [] });

    await writeFile(join(dir, 'train/images/a.jpg'), 'JPG-A'); // same size, other bytes
    await appendFile(join(dir, 'train/labels/b.txt'), 'more');
    await unlink(join(dir, 'valid/images/c.jpg'));
    await writeFile(join(dir, 'new.txt'), 'x');
    const result = await verifyDatasetManifest(dir);
    expect(result.ok).toBe(false);
    expect(result.mismatches).toEqual([
      { path: 'new.txt', problem: 'extra', actual: 1 },
      { path: 'train/images/a.jpg', problem: 'sha256', expected: createHash('sha256').update('jpg-a').digest('hex'), actual: createHash('sha256').update('JPG-A').digest('hex') },
      { path: 'train/labels/b.txt', problem: 'size', expected: 18, actual: 22 },
      { path: 'valid/images/c.jpg', problem: 'missing' },
    ]);
  });

  it('notices an edited file list', async () => {
    await tree(yoloFiles());
    await writeDatasetManifest(dir, { name: 'd', source });
    const list = await readFile(join(dir, 'files.jsonl'), 'utf8');
    await writeFile(join(dir, 'files.jsonl'), list.split('\n').slice(1).join('\n'));
    const result = await verifyDatasetManifest(dir);
    expect(result.listIntact).toBe(false);
    expect(result.ok).toBe(false);
  });

  it('readDatasetManifest fails clearly without a manifest', async () => {
    await expect(readDatasetManifest(dir)).rejects.toThrow(/manifest.json: no dataset manifest/);
  });
});
