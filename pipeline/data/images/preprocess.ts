// Image preprocessing shared by prepare-data, training, evaluation and serving: EXIF auto-rotate,
// letterbox (detector) or resize (classifier) to RGB uint8 HWC, and normalisation to float CHW.

import { readFile } from 'node:fs/promises';
import { DECODE_OPTIONS, loadSharp } from './sharp.ts';
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

/** What the caller already knows about an image (from the probe), so preprocessing skips a header read. */
export interface KnownImage {
  /** Oriented (as displayed) size. */
  width: number;
  height: number;
  /** Container format as the probe named it (`jpeg`, `png`); with a file path, `jpeg` enables DCT-scaled decoding. */
  format?: string;
}

/** Oriented size from raw header dimensions and the EXIF orientation (5–8 swap the axes). */
export function orientedSize(width: number, height: number, orientation: number | undefined): [number, number] {
  return orientation !== undefined && orientation >= 5 && orientation <= 8 ? [height, width] : [width, height];
}

/**
 * JPEG shrink-on-load factor for bringing a w×h image to at least tw×th: the largest of 8, 4, 2
 * that leaves both axes at or above the target (Pillow's `draft()` rule), else 1. The decoder's
 * scaled IDCT then does the first, integer part of the reduction; the resize does the rest.
 */
export function jpegShrinkFactor(width: number, height: number, targetWidth: number, targetHeight: number): 1 | 2 | 4 | 8 {
  const limit = Math.min(Math.floor(width / targetWidth), Math.floor(height / targetHeight));
  return limit >= 8 ? 8 : limit >= 4 ? 4 : limit >= 2 ? 2 : 1;
}

/**
 * A file path with libvips load options appended (`a.jpg[shrink=2]`), or undefined when the path
 * itself holds brackets, which libvips' file-name parser would misread.
 */
export function withLoadOptions(path: string, options: string): string | undefined {
  return /[[\]]/.test(path) ? undefined : `${path}[${options}]`;
}

/**
 * Decode one image and bring it to the model's input: auto-rotated, sRGB, 8-bit, alpha flattened
 * onto gray, then letterboxed or stretched to `spec.size`. `known` (from the probe) skips a header
 * read.
 *
 * Given a file path to a JPEG, the decoder shrinks by 2, 4 or 8 in the DCT when the target is at
 * least that much smaller (as Pillow's `draft()`): it decodes 4–64× fewer pixels, and the resize
 * that follows works on the smaller image. sharp does this on its own only for reductions of 3× and
 * more, and cannot be asked to from a Buffer, so prefer a path where there is one. The pixels
 * differ slightly from a full decode (both are antialiased reductions); the geometry is the same.
 */
export async function preprocessImage(
  input: Buffer | string,
  spec: PreprocessSpec,
  known?: KnownImage,
): Promise<PreprocessedImage> {
  const sharp = await loadSharp();
  let width = known?.width;
  let height = known?.height;
  let format = known?.format;
  if (width === undefined || height === undefined || (typeof input === 'string' && format === undefined)) {
    const meta = await sharp(input).metadata();
    [width, height] = orientedSize(meta.width, meta.height, meta.orientation);
    format = meta.format;
  }
  const geometry =
    spec.resize === 'letterbox'
      ? letterboxGeometry(width, height, spec.size)
      : { size: spec.size, width: spec.size, height: spec.size, scale: [spec.size / width, spec.size / height] as [number, number], pad: [0, 0, 0, 0] as [number, number, number, number] };
  let source: Buffer | string = input;
  if (typeof input === 'string' && format === 'jpeg') {
    const shrink = jpegShrinkFactor(width, height, geometry.width, geometry.height);
    if (shrink > 1) source = withLoadOptions(input, `shrink=${shrink}`) ?? (await readFile(input));
  }
  let pipeline = sharp(source, DECODE_OPTIONS)
    // Linear (triangle, antialiased when reducing) as cv2.INTER_LINEAR / torchvision bilinear,
    // which the original models were trained with; also ~25% cheaper than lanczos3.
    .resize(geometry.width, geometry.height, { fit: 'fill', kernel: 'linear' })
    .flatten({ background: { r: LETTERBOX_PAD_VALUE, g: LETTERBOX_PAD_VALUE, b: LETTERBOX_PAD_VALUE } })
    .toColourspace('srgb');
  const [left, top, right, bottom] = geometry.pad;
  if (left || top || right || bottom) {
    pipeline = pipeline.extend({ left, top, right, bottom, background: { r: LETTERBOX_PAD_VALUE, g: LETTERBOX_PAD_VALUE, b: LETTERBOX_PAD_VALUE } });
  }
  const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.width !== spec.size || info.height !== spec.size || info.channels !== 3) {
    throw new Error(`preprocessing produced ${info.width}×${info.height}×${info.channels}, expected ${spec.size}×${spec.size}×3`);
  }
  return { pixels: data, width, height, geometry };
}

/**
 * uint8 HWC → float32 CHW: `(x / 255 − mean) / std` per channel, written into `out` at `offset`
 * (so a batch is filled in place without intermediate arrays).
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
  // Per-channel lookup tables: 256 entries each, no per-pixel division.
  const luts = [0, 1, 2].map((c) => {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = (v / 255 - mean[c]!) / std[c]!;
    return lut;
  });
  const [l0, l1, l2] = luts as [Float32Array, Float32Array, Float32Array];
  for (let p = 0, i = 0; p < plane; p++, i += 3) {
    out[offset + p] = l0[pixels[i]!]!;
    out[offset + plane + p] = l1[pixels[i + 1]!]!;
    out[offset + 2 * plane + p] = l2[pixels[i + 2]!]!;
  }
}
