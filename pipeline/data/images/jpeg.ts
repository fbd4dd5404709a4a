// JPEG decoding with libjpeg-turbo (TurboJPEG, through @julusian/jpeg-turbo's prebuilt binding):
// it writes scanlines straight into one RGB buffer, without libvips' per-strip pipeline, which
// costs as much as the decoding itself on images of a few hundred pixels (docs/data-performance.md).
// Loaded lazily, once; where no prebuilt binding loads, callers decode with sharp instead.

import { createRequire } from 'node:module';

interface Decompressed {
  data: Buffer;
  width: number;
  height: number;
  size: number;
}

interface TurboJpeg {
  FORMAT_RGB: number;
  decompress(image: Buffer, out: Buffer, options: { format: number }): Promise<Decompressed>;
  decompressSync(image: Buffer, out: Buffer, options: { format: number }): Decompressed;
}

export interface RgbImage {
  /** width × height × 3 uint8, RGB, row-major. */
  pixels: Buffer;
  width: number;
  height: number;
  /** Hand the pixel memory back for a later decode; the pixels must not be read afterwards. */
  release(): void;
}

let binding: TurboJpeg | null | undefined;
let loadError: string | undefined;

/**
 * The TurboJPEG binding, or null (with the reason in `jpegDecoderUnavailable`) when it cannot load
 * here. `from` is the package's resolved path, for code bundled where node_modules is not above it
 * (the preprocessing workers).
 */
function turbo(from?: string): TurboJpeg | null {
  if (binding !== undefined) return binding;
  try {
    binding = createRequire(import.meta.url)(from ?? '@julusian/jpeg-turbo') as TurboJpeg;
  } catch (error) {
    binding = null;
    loadError = (error as Error).message.split('\n')[0];
  }
  return binding;
}

/** Where the binding is installed, for a worker to load the same one (undefined when unavailable). */
export function turboJpegPath(): string | undefined {
  try {
    return createRequire(import.meta.url).resolve('@julusian/jpeg-turbo');
  } catch {
    return undefined;
  }
}

/** Load the binding from an explicit path (a worker, with the path its parent resolved). */
export function useTurboJpeg(path: string | undefined): void {
  turbo(path);
}

/**
 * decodeJpegRgb on the calling thread, into `out` (grown when too small; returned either way), or
 * undefined when libjpeg-turbo is unavailable or refuses the data.
 */
export function decodeJpegRgbSync(bytes: Buffer, width: number, height: number, out: Buffer): { pixels: Buffer; buffer: Buffer } | undefined {
  const tj = turbo();
  if (!tj || width < 1 || height < 1) return undefined;
  const size = width * height * 3;
  const buffer = out.length >= size ? out : Buffer.allocUnsafeSlow(size);
  try {
    const r = tj.decompressSync(bytes, buffer, { format: tj.FORMAT_RGB });
    if (r.width !== width || r.height !== height || r.size !== size) return undefined;
  } catch {
    return undefined;
  }
  return { pixels: buffer.subarray(0, size), buffer };
}

/** Why libjpeg-turbo is not used on this machine, or undefined when it is. */
export function jpegDecoderUnavailable(): string | undefined {
  return turbo() === null ? (loadError ?? 'not loaded') : undefined;
}

// Output buffers of finished decodes, reused: a fresh 640×480 buffer is 0.9 MB that V8 zero-fills
// and later collects, which on the calling thread cost a quarter of the decode itself.
const released: Buffer[] = [];
const MAX_RELEASED = 8;

function outputBuffer(bytes: number): Buffer {
  const i = released.findIndex((b) => b.length >= bytes && b.length <= 2 * bytes);
  return i >= 0 ? released.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(bytes);
}

function giveBack(buffer: Buffer): void {
  if (released.length < MAX_RELEASED && !released.includes(buffer)) released.push(buffer);
}

/**
 * Decode a JPEG of the given frame size (from its header) to RGB on libuv's thread pool (the calling
 * thread stays free), or undefined when libjpeg-turbo is unavailable or refuses the data (corrupt,
 * truncated, CMYK): the caller then decodes with sharp, which either succeeds or explains what is
 * wrong. Grayscale JPEGs come out as RGB with three equal channels. EXIF orientation and ICC
 * profiles are not applied.
 */
export async function decodeJpegRgb(bytes: Buffer, width: number, height: number): Promise<RgbImage | undefined> {
  const tj = turbo();
  if (!tj || width < 1 || height < 1) return undefined;
  const size = width * height * 3;
  const out = outputBuffer(size);
  try {
    const r = await tj.decompress(bytes, out, { format: tj.FORMAT_RGB });
    if (r.width !== width || r.height !== height || r.size !== size) {
      giveBack(out);
      return undefined;
    }
    return { pixels: out.subarray(0, size), width, height, release: () => giveBack(out) };
  } catch {
    giveBack(out);
    return undefined;
  }
}
