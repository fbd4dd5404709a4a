// The prepared image format: per split a raw `images.u8` (N × H × W × 3 uint8, fixed stride, so
// row i lives at byte i·H·W·3 and the file can be memory-mapped), an `index.jsonl` (one item per
// row) and a `meta.json`. Written once by prepare-data; read by training and evaluation without
// decoding a JPEG again.

import { open, readFile, rename, rm, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { DataError } from '../../core/errors.ts';
import { writeJsonAtomic } from '../../core/fs.ts';
import { LineWriter } from '../fusion/csv.ts';
import { normalizeToCHW } from './preprocess.ts';

export interface ImageTensorMeta {
  version: 1;
  split: string;
  count: number;
  /** [N, H, W, C]. */
  shape: [number, number, number, number];
  dtype: 'uint8';
  layout: 'HWC';
  /** Bytes per row (H·W·C). */
  stride: number;
  /** Normalisation for float CHW: (x/255 − mean)/std per channel. */
  mean: number[];
  std: number[];
  resize: 'letterbox' | 'fill';
  /** Letterbox pad value (gray 114, as Ultralytics). */
  padValue?: number;
  task: string;
  classNames: string[];
}

export interface ImageIndexItem {
  id: string;
  row: number;
  /** Path of the source image, relative to the dataset root. */
  file: string;
  /** Classification label (class index). */
  label?: number;
  /** Detection boxes in letterboxed pixels: [class, x1, y1, x2, y2]. */
  boxes?: [number, number, number, number, number][];
  /** Original (oriented) size, per-axis scale and left/top pad: map boxes back with fromLetterbox. */
  width: number;
  height: number;
  scale: [number, number];
  pad: [number, number];
  /** Slice metadata for per-slice evaluation. */
  skin_tone?: string;
  source?: string;
  sha256: string;
}

/** Writes rows at fixed offsets, so rows may arrive in any order from a pool of decoders. */
export class ImageTensorWriter {
  private written = 0;
  private constructor(
    private readonly dir: string,
    private readonly meta: ImageTensorMeta,
    private readonly handle: FileHandle,
    private readonly tmpPath: string,
  ) {}

  static async create(dir: string, meta: Omit<ImageTensorMeta, 'stride' | 'version' | 'dtype' | 'layout'>): Promise<ImageTensorWriter> {
    const [, h, w, c] = meta.shape;
    const full: ImageTensorMeta = { version: 1, dtype: 'uint8', layout: 'HWC', stride: h * w * c, ...meta };
    const tmpPath = join(dir, '.images.u8.partial');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(dir, { recursive: true });
    const handle = await open(tmpPath, 'w');
    if (full.count > 0) await handle.truncate(full.count * full.stride);
    return new ImageTensorWriter(dir, full, handle, tmpPath);
  }

  async writeRow(row: number, pixels: Uint8Array): Promise<void> {
    if (pixels.length !== this.meta.stride) throw new Error(`row ${row}: ${pixels.length} bytes, expected ${this.meta.stride}`);
    if (row < 0 || row >= this.meta.count) throw new Error(`row ${row} outside 0..${this.meta.count - 1}`);
    let off = 0;
    while (off < pixels.length) {
      const { bytesWritten } = await this.handle.write(pixels, off, pixels.length - off, row * this.meta.stride + off);
      off += bytesWritten;
    }
    this.written++;
  }

  /** Finish: index rows in row order, meta last (its presence marks a complete split). */
  async close(items: readonly ImageIndexItem[]): Promise<ImageTensorMeta> {
    const lines: string[] = [];
    for (const item of items) lines[item.row] = JSON.stringify(item);
    return this.closeWithLines(lines, items.length);
  }

  /**
   * close() for a caller that keeps each index entry as its JSON text at its row (`lines[row]`):
   * a string holds an entry in a fraction of the memory of the object, which counts at 10⁵ rows.
   */
  async closeWithLines(lines: readonly (string | undefined)[], indexed = lines.filter((l) => l !== undefined).length): Promise<ImageTensorMeta> {
    await this.handle.sync();
    await this.handle.close();
    if (this.written !== this.meta.count || indexed !== this.meta.count || lines.length !== this.meta.count) {
      await rm(this.tmpPath, { force: true });
      throw new Error(`split ${this.meta.split}: ${this.written} rows written, ${indexed} indexed, expected ${this.meta.count}`);
    }
    await rename(this.tmpPath, join(this.dir, 'images.u8'));
    const index = await LineWriter.open(join(this.dir, 'index.jsonl'));
    for (const line of lines) await index.write(line!);
    await index.close();
    await writeJsonAtomic(join(this.dir, 'meta.json'), this.meta);
    return this.meta;
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => undefined);
    await rm(this.tmpPath, { force: true });
  }
}

export interface ImageBatch {
  rows: number[];
  items: ImageIndexItem[];
  /** rows.length × 3 × H × W float32, normalised with meta.mean/std. */
  data: Float32Array;
}

export interface ImageTensorFile {
  meta: ImageTensorMeta;
  items: ImageIndexItem[];
  /** Raw HWC uint8 bytes of one row, read by offset. */
  readRow(row: number): Promise<Buffer>;
  /** Float CHW normalised batches over `rows` (default all, in order); one batch in memory at a time. */
  batches(batchSize: number, rows?: readonly number[]): AsyncGenerator<ImageBatch>;
  close(): Promise<void>;
}

/** Open `<dir>/<split>/` written by ImageTensorWriter. */
export async function openImageTensorFile(dir: string, split: string): Promise<ImageTensorFile> {
  const splitDir = join(dir, split);
  let meta: ImageTensorMeta;
  try {
    meta = JSON.parse(await readFile(join(splitDir, 'meta.json'), 'utf8')) as ImageTensorMeta;
  } catch (error) {
    throw new DataError(`prepared split \`${split}\` is missing or incomplete: ${(error as Error).message}`, { file: join(splitDir, 'meta.json') });
  }
  const indexText = await readFile(join(splitDir, 'index.jsonl'), 'utf8');
  const items = indexText.split('\n').filter(Boolean).map((l) => JSON.parse(l) as ImageIndexItem);
  const handle = await open(join(splitDir, 'images.u8'), 'r');
  const { size } = await handle.stat();
  if (size !== meta.count * meta.stride || items.length !== meta.count) {
    await handle.close();
    throw new DataError(`prepared split \`${split}\`: images.u8 has ${size} bytes and index ${items.length} rows, meta says ${meta.count} × ${meta.stride}`, {
      file: join(splitDir, 'images.u8'),
    });
  }
  const [, h, w] = meta.shape;
  const readRow = async (row: number): Promise<Buffer> => {
    if (!Number.isInteger(row) || row < 0 || row >= meta.count) throw new RangeError(`row ${row} outside 0..${meta.count - 1}`);
    const buf = Buffer.allocUnsafe(meta.stride);
    let off = 0;
    while (off < meta.stride) {
      const { bytesRead } = await handle.read(buf, off, meta.stride - off, row * meta.stride + off);
      if (bytesRead === 0) throw new DataError(`unexpected end of images.u8 at row ${row}`, { file: join(splitDir, 'images.u8') });
      off += bytesRead;
    }
    return buf;
  };
  async function* batches(batchSize: number, rows?: readonly number[]): AsyncGenerator<ImageBatch> {
    const order = rows ?? items.map((i) => i.row);
    const plane = 3 * h * w;
    for (let start = 0; start < order.length; start += batchSize) {
      const chunk = order.slice(start, start + batchSize);
      const data = new Float32Array(chunk.length * plane);
      for (let k = 0; k < chunk.length; k++) {
        normalizeToCHW(await readRow(chunk[k]!), h, w, meta.mean, meta.std, data, k * plane);
      }
      yield { rows: [...chunk], items: chunk.map((r) => items[r]!), data };
    }
  }
  return { meta, items, readRow, batches, close: () => handle.close() };
}
