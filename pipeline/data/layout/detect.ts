// Layout detection for raw datasets: Ultralytics YOLO exports, class-per-folder image trees,
// CSV tables, and the synthetic dataset (YOLO + metadata.jsonl + fusion.csv). What is not
// recognised is a DataError that says what was found.

import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { parse as parseYaml } from 'yaml';
import { DataError } from '../../core/errors.ts';
import type { ClassFoldersLayout, CsvTable, DatasetLayout, MetadataFile, YoloLayout, YoloSplit } from './types.ts';
import { isImage, listFiles, type ListedFile } from './walk.ts';

export const EXPORT_SPLITS = ['train', 'valid', 'val', 'test'] as const;

/** Detect the layout of the dataset in `dir`. `files` may be passed when already listed. */
export async function detectLayout(dir: string, files?: readonly ListedFile[]): Promise<DatasetLayout> {
  const all = files ?? (await listFiles(dir));
  const root = singleTopFolder(all);
  const prefix = root ? `${root}/` : '';
  const inRoot = root ? all.filter((f) => f.path.startsWith(prefix)).map((f) => ({ ...f, path: f.path.slice(prefix.length) })) : all;

  const layout: DatasetLayout = { kind: 'csv', root, components: [] };
  const yolo = await detectYolo(dir, prefix, inRoot);
  if (yolo) {
    layout.yolo = yolo;
    layout.components.push('yolo');
  }
  const classFolders = yolo ? undefined : detectClassFolders(inRoot);
  if (classFolders) {
    layout.classFolders = classFolders;
    layout.components.push('class-folders');
  }
  const csvFiles = inRoot.filter((f) => extname(f.path).toLowerCase() === '.csv');
  if (csvFiles.length) {
    layout.tables = [];
    for (const f of csvFiles) layout.tables.push(await describeCsv(dir, prefix + f.path));
    layout.components.push('csv');
  }
  if (inRoot.some((f) => f.path === 'metadata.jsonl')) {
    layout.metadata = { path: `${prefix}metadata.jsonl`, records: await countLines(join(dir, prefix, 'metadata.jsonl')) } satisfies MetadataFile;
    layout.components.push('metadata');
  }

  if (yolo && layout.metadata && layout.tables?.some((t) => t.path === `${prefix}fusion.csv`)) layout.kind = 'synthetic';
  else if (yolo) layout.kind = 'yolo';
  else if (classFolders) layout.kind = 'class-folders';
  else if (layout.tables) layout.kind = 'csv';
  else throw unrecognised(dir, all);
  return layout;
}

/** The one folder everything sits in (`datasetam/…`), or '' when the data starts at the root. */
function singleTopFolder(files: readonly ListedFile[]): string {
  let top: string | undefined;
  for (const f of files) {
    const slash = f.path.indexOf('/');
    if (slash < 0) return '';
    const first = f.path.slice(0, slash);
    if (top === undefined) top = first;
    else if (top !== first) return '';
  }
  // A lone split or class folder is data, not a wrapper.
  if (top === undefined || (EXPORT_SPLITS as readonly string[]).includes(top)) return '';
  // A folder of plain files (one image class) is data too: only unwrap a folder that holds folders.
  return files.some((f) => f.path.split('/').length >= 3) ? top : '';
}

async function detectYolo(dir: string, prefix: string, files: readonly ListedFile[]): Promise<YoloLayout | undefined> {
  const splits: YoloSplit[] = [];
  for (const name of EXPORT_SPLITS) {
    const images = files.filter((f) => f.path.startsWith(`${name}/images/`));
    if (!images.length) continue;
    const labels = files.filter((f) => f.path.startsWith(`${name}/labels/`) && f.path.endsWith('.txt'));
    splits.push({
      name,
      images: `${prefix}${name}/images`,
      labels: labels.length ? `${prefix}${name}/labels` : null,
      imageCount: images.filter((f) => isImage(f.path)).length,
      labelCount: labels.length,
    });
  }
  const yamlFile = files.find((f) => f.path === 'data.yaml' || f.path === 'data.yml');
  if (!splits.length || (!yamlFile && !splits.some((s) => s.labels))) return undefined;
  let names: string[] = [];
  let nc = 0;
  if (yamlFile) {
    const file = `${prefix}${yamlFile.path}`;
    let doc: unknown;
    try {
      doc = parseYaml(await readFile(join(dir, file), 'utf8'));
    } catch (error) {
      throw new DataError(`cannot parse YOLO data.yaml: ${(error as Error).message}`, { file });
    }
    const d = (doc ?? {}) as { names?: unknown; nc?: unknown };
    if (Array.isArray(d.names)) names = d.names.map(String);
    else if (d.names && typeof d.names === 'object') {
      const entries = Object.entries(d.names as Record<string, unknown>);
      if (!entries.every(([k]) => /^\d+$/.test(k))) throw new DataError('`names` mapping must be class id → name', { file, field: 'names' });
      for (const [k, v] of entries) names[Number(k)] = String(v);
      if (names.some((n) => n === undefined) || names.length !== entries.length) {
        throw new DataError('`names` mapping must cover the ids 0…n-1 without gaps', { file, field: 'names' });
      }
    } else throw new DataError('YOLO data.yaml has no `names` (a list of class names)', { file, field: 'names' });
    nc = d.nc === undefined ? names.length : Number(d.nc);
    if (!Number.isInteger(nc) || nc !== names.length) {
      throw new DataError(`\`nc\` is ${String(d.nc)} but \`names\` lists ${names.length} classes`, { file, field: 'nc' });
    }
  }
  return { dataYaml: yamlFile ? `${prefix}${yamlFile.path}` : null, names, nc, splits };
}

/** `<class>/<image>` or `<split>/<class>/<image>`, at least two classes, images only one level down. */
function detectClassFolders(files: readonly ListedFile[]): ClassFoldersLayout | undefined {
  const images = files.filter((f) => isImage(f.path));
  if (!images.length) return undefined;
  const splitNames = new Set(images.map((f) => f.path.split('/')[0]!).filter((s) => (EXPORT_SPLITS as readonly string[]).includes(s)));
  const bySplit = splitNames.size > 0;
  const depth = bySplit ? 3 : 2;
  if (!images.every((f) => f.path.split('/').length === depth)) return undefined;
  const splits = new Map<string, Record<string, number>>();
  const classes = new Set<string>();
  for (const f of images) {
    const parts = f.path.split('/');
    const split = bySplit ? parts[0]! : '';
    if (bySplit && !splitNames.has(split)) return undefined;
    const cls = parts[depth - 2]!;
    classes.add(cls);
    const counts = splits.get(split) ?? {};
    counts[cls] = (counts[cls] ?? 0) + 1;
    splits.set(split, counts);
  }
  if (classes.size < 2) return undefined;
  return {
    classes: [...classes].sort(),
    splits: [...splits.entries()]
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([name, counts]) => ({ name: name || null, dir: name, counts })),
  };
}

/** Header columns and data row count, streamed (fine for 10⁶ rows). */
export async function describeCsv(dir: string, path: string): Promise<CsvTable> {
  const lines = createInterface({ input: createReadStream(join(dir, path), 'utf8'), crlfDelay: Infinity });
  let columns: string[] | undefined;
  let rows = 0;
  for await (const line of lines) {
    if (columns === undefined) columns = splitCsvLine(line.replace(/^\uFEFF/, ''));
    else if (line.trim() !== '') rows++;
  }
  return { path, columns: columns ?? [], rows };
}

/** One CSV line into fields (RFC 4180 quotes; fields spanning lines are not expected in headers). */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out.map((f) => f.trim());
}

async function countLines(file: string): Promise<number> {
  let n = 0;
  const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
  for await (const line of lines) if (line.trim() !== '') n++;
  return n;
}

function unrecognised(dir: string, files: readonly ListedFile[]): DataError {
  const top = new Map<string, number>();
  const byExt = new Map<string, number>();
  for (const f of files) {
    const slash = f.path.indexOf('/');
    const entry = slash < 0 ? f.path : `${f.path.slice(0, slash)}/`;
    top.set(entry, (top.get(entry) ?? 0) + 1);
    const ext = extname(f.path).toLowerCase() || '(none)';
    byExt.set(ext, (byExt.get(ext) ?? 0) + 1);
  }
  const entries = [...top.keys()].sort();
  const shown = entries.slice(0, 15).join(', ') + (entries.length > 15 ? `, … (${entries.length - 15} more)` : '');
  const exts = [...byExt.entries()].sort((a, b) => b[1] - a[1]).map(([e, n]) => `${e} ${n}`).join(', ');
  return new DataError(
    files.length
      ? `unrecognised dataset layout: top-level entries ${shown}; ${files.length} files by extension: ${exts}`
      : 'unrecognised dataset layout: the dataset is empty',
    {
      file: dir,
      hint: 'expected an Ultralytics YOLO export ({train,valid,test}/{images,labels} + data.yaml), class-per-folder images (<class>/<image> or <split>/<class>/<image>), or CSV tables',
    },
  );
}
