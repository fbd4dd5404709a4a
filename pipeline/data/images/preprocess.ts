// Image preprocessing shared by prepare-data, training, evaluation and serving: EXIF auto-rotate,
// letterbox (detector) or resize (classifier) to RGB uint8 HWC, and normalisation to float CHW.

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

/** Oriented size from raw header dimensions and the EXIF orientation (5–8 swap the axes). */
export function orientedSize(width: number, height: number, orientation: number | undefined): [number, number] {
  return orientation !== undefined && orientation >= 5 && orientation <= 8 ? [height, width] : [width, height];
}

/**
 * Decode one image and bring it to the model's input: auto-rotated, sRGB, 8-bit, alpha flattened
 * onto gray, then letterboxed or stretched to `spec.size`. `size` (oriented width/height) skips a
 * header read when the caller already knows it.
 */
export async function preprocessImage(
  input: Buffer | string,
  spec: PreprocessSpec,
  known?: { width: number; height: number },
): Promise<PreprocessedImage> {
  const sharp = await loadSharp();
  let width = known?.width;
  let height = known?.height;
  if (width === undefined || height === undefined) {
    const meta = await sharp(input).metadata();
    [width, height] = orientedSize(meta.width, meta.height, meta.orientation);
  }
  const geometry =
    spec.resize === 'letterbox'
      ? letterboxGeometry(width, height, spec.size)
      : { size: spec.size, width: spec.size, height: spec.size, scale: [spec.size / width, spec.size / height] as [number, number], pad: [0, 0, 0, 0] as [number, number, number, number] };
  let pipeline = sharp(input, DECODE_OPTIONS)
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
