// Image preprocessing shared by prepare-data, training, evaluation and serving: decode with EXIF
// orientation, letterbox (detector) or resize (classifier) to RGB uint8 HWC, and normalisation to
// float CHW.

import { readFile } from 'node:fs';
import { promisify } from 'node:util';
import { DECODE_OPTIONS, loadSharp } from './sharp.ts';
import { decodeJpegRgb, draftScale, type DraftScale } from './jpeg.ts';
import { readJpegHeader, type JpegHeader } from './jpeg-header.ts';
import { orientRgb } from './orient.ts';
import { resizeRgb } from './resample.ts';
import { resampleKernels } from './resample-wasm/kernels.ts';
import { letterboxGeometry, LETTERBOX_PAD_VALUE, type LetterboxGeometry } from './letterbox.ts';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

export type ResizeMode = 'letterbox' | 'fill';

export interface PreprocessSpec {
  /** Square output size in pixels. */
  size: number;
  /** `letterbox` keeps the aspect ratio and pads with 114 gray (detector); `fill` stretches (classifier). */
  resize: ResizeMode;
}

export interface PreprocessedImage {
  /** size × size × 3 uint8, RGB, row-major HWC. */
  pixels: Buffer;
  /** Original (EXIF-oriented) size. */
  width: number;
  height: number;
  geometry: LetterboxGeometry;
}

/** An image decoded for preprocessing: EXIF-oriented RGB, as displayed. */
export interface DecodedImage {
  /** width × height × 3 uint8, RGB, row-major. */
  pixels: Uint8Array;
  width: number;
  height: number;
  /** The whole image's oriented size: larger than width × height when it was decoded DCT-scaled. */
  fullWidth: number;
  fullHeight: number;
}

/** Oriented size from raw header dimensions and the EXIF orientation (5–8 swap the axes). */
export function orientedSize(width: number, height: number, orientation: number | undefined): [number, number] {
  return orientation !== undefined && orientation >= 5 && orientation <= 8 ? [height, width] : [width, height];
}

/**
 * Decode an image (a file path or its bytes) to EXIF-oriented, 8-bit sRGB pixels, alpha flattened
 * onto the letterbox gray.
 *
 * A JPEG whose header shows 8-bit grayscale or YCbCr without an ICC profile (nearly every camera
 * and dataset JPEG) is decoded by libjpeg-turbo (jpeg.ts) at 1/`scale` of each side and oriented
 * here. Everything else (PNG, CMYK, ICC-tagged or 12-bit JPEGs, or where libjpeg-turbo is
 * unavailable or refuses the data) goes through sharp at full size, which converts to sRGB through
 * the embedded profile and reports bad data. The choice depends on the bytes alone, so training,
 * evaluation and serving always decode a given image the same way, whether they hold its path or
 * its bytes.
 */
export async function decodeImage(input: Buffer | string, scale: DraftScale = 1): Promise<DecodedImage> {
  const bytes = typeof input === 'string' ? await readFileBytes(input) : input;
  const header = readJpegHeader(bytes);
  return (header && decodeJpeg(bytes, header, scale)) || decodeWithSharp(bytes);
}

/** A JPEG libjpeg-turbo decodes to the same sRGB pixels sharp would: 8-bit gray or YCbCr, no ICC profile. */
export function turboDecodable(header: JpegHeader): boolean {
  return header.precision === 8 && (header.components === 1 || header.components === 3) && !header.iccProfile && header.coding !== 'lossless';
}

/**
 * The DCT scale a JPEG is decoded at for `spec`: Pillow's draft rule against the content size the
 * spec resizes to (in the file's stored orientation), so the decode does at most half the
 * resampling's work and never less detail than the model's input holds.
 */
export function decodeScale(header: JpegHeader, spec: PreprocessSpec): DraftScale {
  if (!turboDecodable(header)) return 1;
  const [w, h] = orientedSize(header.width, header.height, header.orientation);
  const content = preprocessGeometry(w, h, spec);
  const [tw, th] = w === header.width ? [content.width, content.height] : [content.height, content.width];
  return draftScale(header.width, header.height, tw, th);
}

/**
 * libjpeg-turbo's decode at 1/`scale`, oriented; undefined when the header rules it out or the
 * library refuses the data. `out` is a buffer the decode may write into (a worker's, reused).
 */
export function decodeJpeg(bytes: Uint8Array, header: JpegHeader, scale: DraftScale, out?: Buffer): (DecodedImage & { buffer: Buffer }) | undefined {
  if (!turboDecodable(header)) return undefined;
  const decoded = decodeJpegRgb(bytes, header.width, header.height, scale, out);
  if (!decoded) return undefined;
  const [fullWidth, fullHeight] = orientedSize(header.width, header.height, header.orientation);
  const oriented = orientRgb(decoded.pixels, decoded.width, decoded.height, header.orientation);
  return { ...oriented, fullWidth, fullHeight, buffer: decoded.buffer };
}

/** sharp's decode at full size: what libjpeg-turbo does not take, and the explanation when nothing can decode it. */
export async function decodeWithSharp(bytes: Buffer): Promise<DecodedImage> {
  const sharp = await loadSharp();
  const { data, info } = await sharp(bytes, DECODE_OPTIONS)
    .flatten({ background: PAD })
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new Error(`decoding produced ${info.channels} channels, expected 3`);
  return { pixels: data, width: info.width, height: info.height, fullWidth: info.width, fullHeight: info.height };
}

// fs.readFile's callback form: one trip to libuv's pool, where fs/promises' readFile takes several
// (open, stat, reads, close) and showed as a fifth of the calling thread's time per image.
const readFileBytes = promisify(readFile);

/** Content size and padding for a w×h image: letterboxed (aspect kept) or stretched to the square. */
function preprocessGeometry(width: number, height: number, spec: PreprocessSpec): LetterboxGeometry {
  return spec.resize === 'letterbox'
    ? letterboxGeometry(width, height, spec.size)
    : { size: spec.size, width: spec.size, height: spec.size, scale: [spec.size / width, spec.size / height], pad: [0, 0, 0, 0] };
}

/**
 * Bring a decoded image to the model's input: resized to the content size with Pillow's reduce
 * and BILINEAR resample, byte for byte (resample.ts; the antialiased linear filter the original
 * models were trained with, as torchvision's and OpenCV's), then placed on the 114-gray square
 * when letterboxed. The geometry is the whole image's, whatever scale it was decoded at.
 */
export function preprocessDecoded(image: DecodedImage, spec: PreprocessSpec): PreprocessedImage {
  const geometry = preprocessGeometry(image.fullWidth, image.fullHeight, spec);
  const content = resizeRgb(image.pixels, image.width, image.height, geometry.width, geometry.height);
  return { pixels: padLetterbox(content, geometry), width: image.fullWidth, height: image.fullHeight, geometry };
}

/**
 * Decode one image at the scale its spec allows and bring it to the model's input: what the
 * preprocessing pool gives for this spec, on the calling thread.
 */
export async function preprocessImage(input: Buffer | string, spec: PreprocessSpec): Promise<PreprocessedImage> {
  const bytes = typeof input === 'string' ? await readFileBytes(input) : input;
  const header = readJpegHeader(bytes);
  const decoded = (header && decodeJpeg(bytes, header, decodeScale(header, spec))) || (await decodeWithSharp(bytes));
  return preprocessDecoded(decoded, spec);
}

const PAD = { r: LETTERBOX_PAD_VALUE, g: LETTERBOX_PAD_VALUE, b: LETTERBOX_PAD_VALUE };

/** Content (geometry.width × geometry.height RGB) placed on the 114-gray square. */
function padLetterbox(content: Uint8Array, g: LetterboxGeometry): Buffer {
  const [left, top] = g.pad;
  if (g.width === g.size && g.height === g.size) return Buffer.from(content.buffer, content.byteOffset, content.byteLength);
  const out = Buffer.alloc(g.size * g.size * 3, LETTERBOX_PAD_VALUE);
  const row = g.width * 3;
  for (let y = 0; y < g.height; y++) out.set(content.subarray(y * row, (y + 1) * row), ((top + y) * g.size + left) * 3);
  return out;
}

/**
 * uint8 HWC → float32 CHW: `(x / 255 − mean) / std` per channel, written into `out` at `offset`
 * (so a batch is filled in place without intermediate arrays). The values come from per-channel
 * tables computed here in double precision; the gather runs in WebAssembly (resample-wasm), about
 * 2.5× faster than the same loop in JavaScript.
 */
export function normalizeToCHW(
  pixels: Uint8Array,
  height: number,
  width: number,
  mean: readonly number[],
  std: readonly number[],
  out: Float32Array,
  offset = 0,
): void {
  const plane = height * width;
  if (pixels.length < 3 * plane) throw new RangeError(`normalizeToCHW: ${pixels.length} bytes is less than a ${width}×${height} RGB image`);
  if (offset < 0 || out.length < offset + 3 * plane) throw new RangeError(`normalizeToCHW: no room for ${3 * plane} values at ${offset} in ${out.length}`);
  if (plane === 0) return;
  const tables = normalizationTables(mean, std);
  const k = resampleKernels();
  const input = (3 * plane + 15) & ~15;
  const { base, heap } = k.scratch(tables.byteLength + input + 12 * plane);
  const at = { tables: base, pixels: base + tables.byteLength, out: base + tables.byteLength + input };
  heap.set(new Uint8Array(tables.buffer, tables.byteOffset, tables.byteLength), at.tables);
  heap.set(pixels.subarray(0, 3 * plane), at.pixels);
  k.normalize_chw(at.pixels, plane, at.tables, at.out);
  out.set(new Float32Array(heap.buffer, at.out, 3 * plane), offset);
}

// Per-channel lookup tables (3 × 256 values: no per-pixel division), kept per mean/std: a run
// normalises every image with the same one or two pairs.
const tableCache = new Map<string, Float32Array>();

function normalizationTables(mean: readonly number[], std: readonly number[]): Float32Array {
  const key = `${mean.join(',')}/${std.join(',')}`;
  let tables = tableCache.get(key);
  if (!tables) {
    tables = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) for (let v = 0; v < 256; v++) tables[c * 256 + v] = (v / 255 - mean[c]!) / std[c]!;
    if (tableCache.size >= 16) tableCache.clear();
    tableCache.set(key, tables);
  }
  return tables;
}
