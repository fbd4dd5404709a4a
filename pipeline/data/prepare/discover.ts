// Finds the images of a raw dataset and where their labels are: an Ultralytics YOLO export
// (`{train,valid,test}/{images,labels}` + data.yaml) or class-per-folder trees, plus the per-image
// metadata.jsonl of the synthetic dataset when present.

import { createReadStream } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { extname, join, relative, sep } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DataError } from '../../core/errors.ts';
import { exists } from '../../core/fs.ts';

export const DETECTOR_CLASSES = [
  'Acne', 'Blackheads', 'Dark-Spots', 'Dry-Skin', 'Englarged-Pores', 'Eyebags', 'Oily-Skin', 'Skin-Redness', 'Whiteheads', 'Wrinkles',
] as const;
export const SKIN_TYPES = ['Dry', 'Normal', 'Oily'] as const;

const EXPORT_SPLITS = ['train', 'valid', 'val', 'test'];

export interface DatasetImage {
  /** Path relative to the dataset root, with `/` separators. */
  file: string;
  /** Label file (YOLO), relative to the root; may not exist. */
  labelFile?: string;
  /** Folder class (class-per-folder layout). */
  folderClass?: string;
  /** Split folder of the export, kept as provenance only. */
  exportSplit?: string;
}

export interface MetadataRecord {
  id?: string;
  file?: string;
  skin_type?: string;
  skin_tone?: string;
  source?: string;
  [key: string]: unknown;
}

export interface DiscoveredDataset {
  layout: 'yolo' | 'class-folders';
  images: DatasetImage[];
  /** Class names from data.yaml (YOLO) or the folder names (class-per-folder). */
  classNames?: string[];
}

const posix = (p: string): string => p.split(sep).join('/');

async function listFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(path)));
    else if (entry.isFile() && !entry.name.startsWith('.')) out.push(path);
  }
  return out;
}

/** Class names from an Ultralytics data.yaml: `names` as a list or an index → name mapping. */
export async function readDataYaml(root: string): Promise<string[] | undefined> {
  for (const name of ['data.yaml', 'data.yml']) {
    const path = join(root, name);
    if (!(await exists(path))) continue;
    let doc: unknown;
    try {
      doc = parseYaml(await readFile(path, 'utf8'));
    } catch (error) {
      throw new DataError(`cannot parse: ${(error as Error).message}`, { file: name });
    }
    const names = (doc as { names?: unknown } | null)?.names;
    if (Array.isArray(names)) return names.map(String);
    if (names && typeof names === 'object') {
      const entries = Object.entries(names as Record<string, unknown>).sort((a, b) => Number(a[0]) - Number(b[0]));
      return entries.map(([, v]) => String(v));
    }
    throw new DataError('data.yaml has no `names` list', { file: name, field: 'names' });
  }
  return undefined;
}

export async function discoverDataset(root: string, labelSource: 'metadata' | 'folders'): Promise<DiscoveredDataset> {
  const images: DatasetImage[] = [];
  const splitDirs = [];
  for (const s of EXPORT_SPLITS) if (await exists(join(root, s, 'images'))) splitDirs.push(s);
  if (splitDirs.length || (await exists(join(root, 'images')))) {
    const dirs = splitDirs.length ? splitDirs.map((s) => [s, join(root, s)] as const) : ([[undefined, root]] as const);
    for (const [exportSplit, dir] of dirs) {
      for (const path of await listFiles(join(dir, 'images'))) {
        const rel = posix(relative(join(dir, 'images'), path));
        const stem = rel.slice(0, rel.length - extname(rel).length);
        images.push({
          file: posix(relative(root, path)),
          labelFile: posix(relative(root, join(dir, 'labels', `${stem}.txt`))),
          ...(exportSplit ? { exportSplit } : {}),
        });
      }
    }
    const classNames = await readDataYaml(root);
    return { layout: 'yolo', images: sortByFile(images), ...(classNames ? { classNames } : {}) };
  }
  if (labelSource === 'folders') {
    // <root>/<class>/* or <root>/<split>/<class>/*
    const top = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
    const nested = top.filter((d) => EXPORT_SPLITS.includes(d));
    const classRoots = nested.length ? nested.map((s) => [s, join(root, s)] as const) : ([[undefined, root]] as const);
    const classes = new Set<string>();
    for (const [exportSplit, dir] of classRoots) {
      for (const e of await readdir(dir, { withFileTypes: true })) {
        if (!e.isDirectory()) continue;
        classes.add(e.name);
        for (const path of await listFiles(join(dir, e.name))) {
          images.push({ file: posix(relative(root, path)), folderClass: e.name, ...(exportSplit ? { exportSplit } : {}) });
        }
      }
    }
    if (images.length) return { layout: 'class-folders', images: sortByFile(images), classNames: [...classes].sort() };
  }
  const found = (await readdir(root)).slice(0, 12).join(', ');
  throw new DataError(
    `no images found: expected an Ultralytics YOLO export ({train,valid,test}/images + labels + data.yaml)` +
      (labelSource === 'folders' ? ' or class-per-folder images' : '') +
      `; found: ${found || 'an empty directory'}`,
    { file: root },
  );
}

function sortByFile(images: DatasetImage[]): DatasetImage[] {
  // Every file under an images folder is an item: a non-image is quarantined, not silently skipped.
  return images.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
}

/** metadata.jsonl by image path (relative to the root). Bad lines are DataErrors with their line. */
export async function readMetadata(root: string, display: string): Promise<Map<string, MetadataRecord>> {
  const path = join(root, 'metadata.jsonl');
  const map = new Map<string, MetadataRecord>();
  if (!(await exists(path))) return map;
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let line = 0;
  for await (const text of lines) {
    line++;
    if (!text.trim()) continue;
    let record: MetadataRecord;
    try {
      record = JSON.parse(text) as MetadataRecord;
    } catch (error) {
      throw new DataError(`invalid JSON: ${(error as Error).message}`, { file: `${display}/metadata.jsonl`, line });
    }
    if (typeof record.file !== 'string') throw new DataError('record has no `file`', { file: `${display}/metadata.jsonl`, line, field: 'file' });
    // Keep only what preparation uses: 10⁵ full records would cost tens of MB.
    const kept: MetadataRecord = { file: record.file };
    for (const k of ['id', 'skin_type', 'skin_tone', 'source'] as const) if (record[k] !== undefined) kept[k] = String(record[k]);
    map.set(posix(record.file), kept);
  }
  return map;
}
