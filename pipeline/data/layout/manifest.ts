// The dataset manifest: manifest.json (source, archive hash, layout, counts, label counts) and
// files.jsonl (one line per file: path, size, sha256), written next to the data. Both are
// deterministic for the same data, streamed, and fine for 10⁵ files; verify re-hashes.

import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { readFile, rename, rm } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { once } from 'node:events';
import { DataError } from '../../core/errors.ts';
import { sha256File, siblingTempPath, writeJsonAtomic } from '../../core/fs.ts';
import type { Logger } from '../../core/logger.ts';
import { detectLayout, splitCsvLine } from './detect.ts';
import type { DatasetLayout, DatasetManifest, FileRecord, LabelCounts, SourceDescription, SplitCounts } from './types.ts';
import { isImage, listFiles, type ListedFile } from './walk.ts';

export const MANIFEST_FILE = 'manifest.json';
export const FILES_FILE = 'files.jsonl';

export interface WriteManifestOptions {
  name: string;
  source: SourceDescription;
  archiveSha256?: string | null;
  /** Detected when absent. */
  layout?: DatasetLayout;
  logger?: Logger;
  signal?: AbortSignal;
  /** Files hashed at once (I/O overlap; hashing itself is one core each). */
  concurrency?: number;
}

/** Write files.jsonl then manifest.json into `dir` (both atomically) and return the manifest. */
export async function writeDatasetManifest(dir: string, options: WriteManifestOptions): Promise<DatasetManifest> {
  const files = await listFiles(dir, options.signal);
  const layout = options.layout ?? (await detectLayout(dir, files));
  const { filesSha256, totalBytes } = await writeFileList(dir, files, options);
  const byExtension: Record<string, number> = {};
  for (const f of files) {
    const ext = extname(f.path).toLowerCase();
    byExtension[ext] = (byExtension[ext] ?? 0) + 1;
  }
  const manifest: DatasetManifest = {
    schema: 1,
    name: options.name,
    source: options.source,
    archiveSha256: options.archiveSha256 ?? null,
    layout,
    counts: { files: files.length, byExtension: sortKeys(byExtension), images: files.filter((f) => isImage(f.path)).length },
    labelCounts: await countLabels(dir, files, layout, options.signal),
    totalBytes,
    filesSha256,
  };
  await writeJsonAtomic(join(dir, MANIFEST_FILE), manifest);
  return manifest;
}

async function writeFileList(dir: string, files: readonly ListedFile[], options: WriteManifestOptions): Promise<{ filesSha256: string; totalBytes: number }> {
  const target = join(dir, FILES_FILE);
  const tmp = siblingTempPath(target);
  const out = createWriteStream(tmp);
  const listHash = createHash('sha256');
  const progress = options.logger?.progress('hash dataset files', files.length, 'files');
  const batch = Math.max(1, options.concurrency ?? 4) * 8;
  let totalBytes = 0;
  try {
    for (let i = 0; i < files.length; i += batch) {
      options.signal?.throwIfAborted();
      const slice = files.slice(i, i + batch);
      // Hash a batch in parallel, write in order: the list stays deterministic.
      const hashes = await Promise.all(slice.map((f) => sha256File(join(dir, f.path))));
      let text = '';
      slice.forEach((f, j) => {
        const record: FileRecord = { path: f.path, size: f.size, sha256: hashes[j]! };
        text += JSON.stringify(record) + '\n';
        totalBytes += f.size;
      });
      listHash.update(text);
      if (!out.write(text)) await once(out, 'drain');
      progress?.tick(slice.length);
    }
    out.end();
    await once(out, 'finish');
    await rename(tmp, target);
  } catch (error) {
    out.destroy();
    await rm(tmp, { force: true });
    throw error;
  } finally {
    progress?.done();
  }
  return { filesSha256: listHash.digest('hex'), totalBytes };
}

const LABEL_COLUMNS = ['target', 'label', 'class', 'skin_type'];

async function countLabels(dir: string, files: readonly ListedFile[], layout: DatasetLayout, signal?: AbortSignal): Promise<LabelCounts> {
  const counts: LabelCounts = {};
  if (layout.yolo) {
    const detection: SplitCounts = {};
    for (const split of layout.yolo.splits) {
      if (!split.labels) continue;
      const tally: Record<string, number> = {};
      const labelFiles = files.filter((f) => f.path.startsWith(`${split.labels}/`) && f.path.endsWith('.txt'));
      for (let i = 0; i < labelFiles.length; i += 64) {
        signal?.throwIfAborted();
        const texts = await Promise.all(labelFiles.slice(i, i + 64).map((f) => readFile(join(dir, f.path), 'utf8')));
        for (const text of texts) {
          for (const line of text.split('\n')) {
            const id = line.trim().split(/\s+/)[0];
            if (!id) continue;
            // Counting only: prepare-data validates ids and boxes and reports bad lines.
            const name = /^\d+$/.test(id) && layout.yolo.names[Number(id)] !== undefined ? layout.yolo.names[Number(id)]! : `#${id}`;
            tally[name] = (tally[name] ?? 0) + 1;
          }
        }
      }
      detection[split.name] = sortKeys(tally);
    }
    counts.detection = detection;
  }
  if (layout.classFolders) {
    const classification: SplitCounts = {};
    for (const s of layout.classFolders.splits) classification[s.name ?? 'all'] = sortKeys(s.counts);
    counts.classification = classification;
  }
  if (layout.metadata) {
    const skinType: SplitCounts = {};
    const lines = createInterface({ input: createReadStream(join(dir, layout.metadata.path), 'utf8'), crlfDelay: Infinity });
    for await (const line of lines) {
      if (!line.trim()) continue;
      let rec: { file?: unknown; skin_type?: unknown };
      try {
        rec = JSON.parse(line) as typeof rec;
      } catch {
        continue; // prepare-data reports malformed lines with their number
      }
      if (typeof rec.skin_type !== 'string') continue;
      // `file` is relative to the folder holding metadata.jsonl: its first segment is the export split.
      const file = typeof rec.file === 'string' ? rec.file : '';
      const split = file.includes('/') ? file.split('/')[0]! : 'all';
      const tally = (skinType[split] ??= {});
      tally[rec.skin_type] = (tally[rec.skin_type] ?? 0) + 1;
    }
    if (Object.keys(skinType).length) counts.skinType = Object.fromEntries(Object.entries(skinType).map(([k, v]) => [k, sortKeys(v)]));
  }
  for (const table of layout.tables ?? []) {
    const wanted = table.columns.map((c, i) => [c, i] as const).filter(([c]) => LABEL_COLUMNS.includes(c.toLowerCase()));
    if (!wanted.length) continue;
    const perColumn: Record<string, Record<string, number>> = Object.fromEntries(wanted.map(([c]) => [c, {}]));
    const lines = createInterface({ input: createReadStream(join(dir, table.path), 'utf8'), crlfDelay: Infinity });
    let header = true;
    for await (const line of lines) {
      if (header) {
        header = false;
        continue;
      }
      if (!line.trim()) continue;
      const fields = line.includes('"') ? splitCsvLine(line) : line.split(',');
      for (const [c, i] of wanted) {
        const v = (fields[i] ?? '').trim();
        perColumn[c]![v] = (perColumn[c]![v] ?? 0) + 1;
      }
    }
    (counts.tables ??= {})[table.path] = Object.fromEntries(Object.entries(perColumn).map(([k, v]) => [k, sortKeys(v)]));
  }
  return counts;
}

function sortKeys<T>(record: Record<string, T>): Record<string, T> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })));
}

/** Read `dir/manifest.json`; a DataError when missing or not a dataset manifest. */
export async function readDatasetManifest(dir: string): Promise<DatasetManifest> {
  const file = join(dir, MANIFEST_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw new DataError('no dataset manifest: run the fetch-dataset stage that produces this folder', { file });
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DataError(`dataset manifest is not valid JSON: ${(error as Error).message}`, { file });
  }
  const m = parsed as Partial<DatasetManifest>;
  if (m.schema !== 1 || !m.layout || typeof m.filesSha256 !== 'string') {
    throw new DataError('not a dataset manifest (schema 1 with layout and filesSha256 expected)', { file });
  }
  return m as DatasetManifest;
}

export interface ManifestMismatch {
  path: string;
  problem: 'missing' | 'extra' | 'size' | 'sha256';
  expected?: string | number;
  actual?: string | number;
}

export interface VerifyResult {
  ok: boolean;
  checked: number;
  /** files.jsonl still hashes to the manifest's filesSha256. */
  listIntact: boolean;
  mismatches: ManifestMismatch[];
}

/** Re-hash every file and compare with files.jsonl and manifest.json. Reports, never throws for mismatches. */
export async function verifyDatasetManifest(dir: string, options: { signal?: AbortSignal; logger?: Logger } = {}): Promise<VerifyResult> {
  const manifest = await readDatasetManifest(dir);
  const expected = new Map<string, FileRecord>();
  const listHash = createHash('sha256');
  const lines = createInterface({ input: createReadStream(join(dir, FILES_FILE), 'utf8'), crlfDelay: Infinity });
  let n = 0;
  for await (const line of lines) {
    n++;
    if (!line) continue;
    listHash.update(line + '\n');
    try {
      const rec = JSON.parse(line) as FileRecord;
      expected.set(rec.path, rec);
    } catch {
      throw new DataError('malformed line', { file: join(dir, FILES_FILE), line: n });
    }
  }
  const mismatches: ManifestMismatch[] = [];
  const actual = await listFiles(dir, options.signal);
  const progress = options.logger?.progress('verify dataset files', actual.length, 'files');
  for (let i = 0; i < actual.length; i += 32) {
    options.signal?.throwIfAborted();
    const slice = actual.slice(i, i + 32);
    const hashes = await Promise.all(slice.map((f) => (expected.has(f.path) ? sha256File(join(dir, f.path)) : Promise.resolve(''))));
    slice.forEach((f, j) => {
      const want = expected.get(f.path);
      if (!want) mismatches.push({ path: f.path, problem: 'extra', actual: f.size });
      else if (want.size !== f.size) mismatches.push({ path: f.path, problem: 'size', expected: want.size, actual: f.size });
      else if (want.sha256 !== hashes[j]) mismatches.push({ path: f.path, problem: 'sha256', expected: want.sha256, actual: hashes[j]! });
      expected.delete(f.path);
    });
    progress?.tick(slice.length);
  }
  progress?.done();
  for (const path of expected.keys()) mismatches.push({ path, problem: 'missing' });
  const listIntact = listHash.digest('hex') === manifest.filesSha256;
  return { ok: listIntact && mismatches.length === 0, checked: actual.length, listIntact, mismatches };
}
