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
  /** EXIF orientation (1 when none); preprocessImages stacks only images known to be upright. */
  orientation?: number;
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
  const plan = await planDecode(input, spec, known);
  const { geometry } = plan;
  let pipeline = sharp(plan.source, DECODE_OPTIONS)
    // Linear (triangle, antialiased when reducing) as cv2.INTER_LINEAR / torchvision bilinear,
    // which the original models were trained with; also ~25% cheaper than lanczos3.
    .resize(geometry.width, geometry.height, { fit: 'fill', kernel: 'linear' })
    .flatten({ background: PAD })
    .toColourspace('srgb');
  const [left, top, right, bottom] = geometry.pad;
  if (left || top || right || bottom) pipeline = pipeline.extend({ left, top, right, bottom, background: PAD });
  const { data, info } = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.width !== spec.size || info.height !== spec.size || info.channels !== 3) {
    throw new Error(`preprocessing produced ${info.width}×${info.height}×${info.channels}, expected ${spec.size}×${spec.size}×3`);
  }
  return { pixels: data, width: plan.width, height: plan.height, geometry };
}

const PAD = { r: LETTERBOX_PAD_VALUE, g: LETTERBOX_PAD_VALUE, b: LETTERBOX_PAD_VALUE };

interface DecodePlan {
  /** What sharp opens: the input, or its path with JPEG load options. */
  source: Buffer | string;
  /** Oriented size of the original. */
  width: number;
  height: number;
  geometry: LetterboxGeometry;
  format: string | undefined;
  /** EXIF orientation, when known. */
  orientation: number | undefined;
  /** DCT scaling the decoder applies (1 when none). */
  shrink: number;
}

async function planDecode(input: Buffer | string, spec: PreprocessSpec, known?: KnownImage): Promise<DecodePlan> {
  let width = known?.width;
  let height = known?.height;
  let format = known?.format;
  let orientation = known?.orientation;
  if (width === undefined || height === undefined || (typeof input === 'string' && format === undefined)) {
    const sharp = await loadSharp();
    const meta = await sharp(input).metadata();
    [width, height] = orientedSize(meta.width, meta.height, meta.orientation);
    format = meta.format;
    orientation = meta.orientation ?? 1;
  }
  const geometry =
    spec.resize === 'letterbox'
      ? letterboxGeometry(width, height, spec.size)
      : { size: spec.size, width: spec.size, height: spec.size, scale: [spec.size / width, spec.size / height] as [number, number], pad: [0, 0, 0, 0] as [number, number, number, number] };
  let source: Buffer | string = input;
  let shrink = 1;
  if (typeof input === 'string' && format === 'jpeg') {
    const factor = jpegShrinkFactor(width, height, geometry.width, geometry.height);
    const withOptions = factor > 1 ? withLoadOptions(input, `shrink=${factor}`) : undefined;
    if (withOptions !== undefined) [source, shrink] = [withOptions, factor];
    else if (factor > 1) source = await readFile(input);
  }
  return { source, width, height, geometry, format, orientation, shrink };
}

/**
 * preprocessImage over several images at once, with the same results, for less CPU: libvips'
 * fixed cost per operation and image (pipeline set-up, strip scheduling, buffers) exceeds the
 * arithmetic of a 320×240 → 224 resize several times over, so JPEGs that only need a reduction are
 * decoded one by one and then resized together, stacked in one tall image. Rows between the
 * stacked images repeat their edge rows, as libvips extends an image's edges, and the slot height
 * maps to a whole number of output rows, so every output row samples exactly the rows it would
 * alone: the pixels are identical to preprocessImage's. Anything else (other formats, EXIF-rotated
 * or of unknown orientation, enlarged, or more than 4× the output's pixels once decoded) goes
 * through preprocessImage. Call it with a handful of images: all of them are held decoded.
 */
export async function preprocessImages(
  inputs: readonly (Buffer | string)[],
  spec: PreprocessSpec,
  known: readonly (KnownImage | undefined)[] = [],
): Promise<PreprocessedImage[]> {
  const sharp = await loadSharp();
  const results: PreprocessedImage[] = new Array(inputs.length);
  const groups = new Map<string, { index: number; plan: DecodePlan; pixels: Buffer; width: number; height: number }[]>();
  for (const [i, input] of inputs.entries()) {
    const plan = await planDecode(input, spec, known[i]);
    const { geometry: g, shrink } = plan;
    // The size the DCT-scaled decode produces (libjpeg rounds up).
    const dw = Math.ceil(plan.width / shrink);
    const dh = Math.ceil(plan.height / shrink);
    // Upright only: sharp turns a rotated image after resizing it, which rounds differently.
    const stackable = plan.format === 'jpeg' && plan.orientation === 1 && dw >= g.width && dh >= g.height && (dw !== g.width || dh !== g.height) && dw * dh <= 4 * g.width * g.height;
    if (!stackable) {
      results[i] = await preprocessImage(input, spec, { width: plan.width, height: plan.height, ...(plan.format ? { format: plan.format } : {}) });
      continue;
    }
    const { data, info } = await sharp(plan.source, DECODE_OPTIONS)
      .flatten({ background: PAD })
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoding produced ${info.channels} channels, expected 3`);
    if (info.width < g.width || info.height < g.height) {
      // Not the reduction planned for (a decoder that rounds its scaled size down): resize alone.
      results[i] = await preprocessImage(input, spec, { width: plan.width, height: plan.height, format: 'jpeg' });
      continue;
    }
    const key = `${info.width}x${info.height}`;
    const group = groups.get(key) ?? [];
    group.push({ index: i, plan, pixels: data, width: info.width, height: info.height });
    groups.set(key, group);
  }
  for (const group of groups.values()) {
    // Same decoded size, and (for one spec) the same content size unless aspect ratios differ.
    const byTarget = new Map<string, typeof group>();
    for (const item of group) {
      const key = `${item.plan.geometry.width}x${item.plan.geometry.height}`;
      byTarget.set(key, [...(byTarget.get(key) ?? []), item]);
    }
    for (const items of byTarget.values()) {
      const first = items[0]!;
      const resized = await resizeStacked(
        items.map((it) => it.pixels),
        first.width,
        first.height,
        first.plan.geometry.width,
        first.plan.geometry.height,
      );
      for (const [j, it] of items.entries()) {
        results[it.index] = { pixels: padLetterbox(resized[j]!, it.plan.geometry), width: it.plan.width, height: it.plan.height, geometry: it.plan.geometry };
      }
    }
  }
  return results;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * Resize same-size RGB images (w×h → tw×th, reducing) in one libvips call: stacked vertically in
 * slots whose height maps to a whole number of output rows, the rows between them repeating the
 * edge rows. Falls back to one call per image when no slot is close enough to h.
 */
async function resizeStacked(images: readonly Buffer[], w: number, h: number, tw: number, th: number): Promise<Buffer[]> {
  const sharp = await loadSharp();
  const row = w * 3;
  // Rows of context the linear kernel reaches beyond an edge, with a margin.
  const reach = Math.ceil(h / th) + 2;
  const period = h / gcd(h, th);
  const slot = Math.ceil((h + 2 * reach) / period) * period;
  if (images.length === 1 || slot > 1.25 * h + 2 * reach) {
    return Promise.all(
      images.map((img) => sharp(img, { raw: { width: w, height: h, channels: 3 } }).resize(tw, th, { fit: 'fill', kernel: 'linear' }).raw().toBuffer()),
    );
  }
  const k = images.length;
  const gap = slot - h;
  const above = Math.floor(gap / 2);
  const stack = Buffer.allocUnsafe(slot * k * row);
  for (let j = 0; j < k; j++) {
    const img = images[j]!;
    const at = j * slot * row;
    img.copy(stack, at);
    const last = img.subarray((h - 1) * row, h * row);
    const next = images[j + 1]?.subarray(0, row) ?? last;
    for (let g = 0; g < gap; g++) (g < above ? last : next).copy(stack, at + (h + g) * row);
  }
  const outSlot = (slot * th) / h;
  const out = await sharp(stack, { raw: { width: w, height: slot * k, channels: 3 } })
    .resize(tw, outSlot * k, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer();
  const size = tw * th * 3;
  return images.map((_, j) => out.subarray(j * outSlot * tw * 3, j * outSlot * tw * 3 + size));
}

/** Content (geometry.width × geometry.height RGB) placed on the 114-gray square. */
function padLetterbox(content: Buffer, g: LetterboxGeometry): Buffer {
  const [left, top] = g.pad;
  if (g.width === g.size && g.height === g.size) return Buffer.from(content);
  const out = Buffer.alloc(g.size * g.size * 3, LETTERBOX_PAD_VALUE);
  const row = g.width * 3;
  for (let y = 0; y < g.height; y++) content.copy(out, ((top + y) * g.size + left) * 3, y * row, (y + 1) * row);
  return out;
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
