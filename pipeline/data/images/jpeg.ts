// JPEG decoding with libjpeg-turbo's TurboJPEG 3 API, called through koffi (a C FFI with prebuilt
// binaries) in the libturbojpeg shared library that @julusian/jpeg-turbo ships in its Linux
// prebuilds. That package's own binding always decodes at full size; the API underneath can
// decode DCT-scaled (1/2, 1/4, 1/8 of each side), which is what Pillow's draft() asks of the same
// library, and writes scanlines straight into one RGB buffer, without libvips' per-strip pipeline
// (docs/data-performance.md). Defaults as Pillow's decoder: accurate integer IDCT, smooth chroma
// upsampling, so a decode here equals Pillow's byte for byte. Loaded lazily, once per thread;
// where the library is not shipped (macOS, Windows) callers decode with sharp instead.

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

/** DCT scaling denominators libjpeg-turbo decodes at directly. */
export type DraftScale = 1 | 2 | 4 | 8;

/**
 * Pillow's JpegImageFile.draft rule: the largest of 8, 4, 2, 1 not above
 * min(⌊width / targetWidth⌋, ⌊height / targetHeight⌋), so the scaled image stays at least as
 * large as the target on both sides.
 */
export function draftScale(width: number, height: number, targetWidth: number, targetHeight: number): DraftScale {
  const room = Math.min(Math.floor(width / targetWidth), Math.floor(height / targetHeight));
  return room >= 8 ? 8 : room >= 4 ? 4 : room >= 2 ? 2 : 1;
}

/** A side of `length` pixels decoded at 1/scale: libjpeg's rounding up. */
export function scaledLength(length: number, scale: DraftScale): number {
  return Math.ceil(length / scale);
}

/** Where the FFI and the library live, so a worker thread loads the same ones. */
export interface TurboJpegLocation {
  koffi: string;
  library: string;
}

interface TurboJpeg {
  handle: unknown;
  decompressHeader(handle: unknown, jpeg: Uint8Array, size: number): number;
  get(handle: unknown, param: number): number;
  set(handle: unknown, param: number, value: number): number;
  setScalingFactor(handle: unknown, factor: { num: number; denom: number }): number;
  decompress8(handle: unknown, jpeg: Uint8Array, size: number, out: Uint8Array, pitch: number, pixelFormat: number): number;
}

// turbojpeg.h (libjpeg-turbo 3.x) enumerations.
const TJINIT_DECOMPRESS = 1;
const TJPARAM_STOPONWARNING = 0;
const TJPARAM_JPEGWIDTH = 5;
const TJPARAM_JPEGHEIGHT = 6;
const TJPF_RGB = 0;

let turbo: TurboJpeg | null | undefined;
let loadError: string | undefined;

/** The prebuilt libturbojpeg beside @julusian/jpeg-turbo's binding for this platform, and koffi. */
export function turboJpegLocation(): TurboJpegLocation | undefined {
  if (process.platform !== 'linux') return undefined;
  try {
    const require = createRequire(import.meta.url);
    // A process report takes milliseconds: this runs once per process (the workers are told).
    const musl = !(process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header?.glibcVersionRuntime;
    const prebuild = `jpeg-turbo-linux-${process.arch}${musl ? '-musl' : ''}`;
    return { koffi: require.resolve('koffi'), library: join(dirname(require.resolve('@julusian/jpeg-turbo')), 'prebuilds', prebuild, 'libturbojpeg.so.0') };
  } catch {
    return undefined;
  }
}

/**
 * Load the library on this thread (once); `location` is what the parent resolved, for code bundled
 * where node_modules is not above it (the preprocessing workers).
 */
export function useTurboJpeg(location?: TurboJpegLocation): TurboJpeg | null {
  if (turbo !== undefined) return turbo;
  location ??= turboJpegLocation();
  try {
    if (!location) throw new Error(`no prebuilt libturbojpeg for ${process.platform}-${process.arch}`);
    const koffi = createRequire(import.meta.url)(location.koffi) as Koffi;
    const lib = koffi.load(location.library);
    koffi.struct('tjscalingfactor', { num: 'int', denom: 'int' });
    const init = lib.func('void *tj3Init(int initType)') as (type: number) => unknown;
    const api = {
      decompressHeader: lib.func('int tj3DecompressHeader(void *handle, const uint8_t *jpegBuf, size_t jpegSize)'),
      get: lib.func('int tj3Get(void *handle, int param)'),
      set: lib.func('int tj3Set(void *handle, int param, int value)'),
      setScalingFactor: lib.func('int tj3SetScalingFactor(void *handle, tjscalingfactor scalingFactor)'),
      decompress8: lib.func('int tj3Decompress8(void *handle, const uint8_t *jpegBuf, size_t jpegSize, uint8_t *dstBuf, int pitch, int pixelFormat)'),
    } as Omit<TurboJpeg, 'handle'>;
    // One handle per thread, for the thread's life: TurboJPEG handles are not shared across threads.
    const handle = init(TJINIT_DECOMPRESS);
    if (!handle) throw new Error('tj3Init failed');
    // A corrupt or truncated stream stops the decode, so sharp can explain what is wrong.
    api.set(handle, TJPARAM_STOPONWARNING, 1);
    turbo = { ...api, handle };
  } catch (error) {
    turbo = null;
    loadError = (error as Error).message.split('\n')[0];
  }
  return turbo;
}

interface Koffi {
  load(path: string): { func(signature: string): (...args: never[]) => unknown };
  struct(name: string, fields: Record<string, string>): unknown;
}

/** Why libjpeg-turbo is not used on this machine, or undefined when it is. */
export function jpegDecoderUnavailable(): string | undefined {
  return useTurboJpeg() === null ? (loadError ?? 'not loaded') : undefined;
}

/**
 * Decode a JPEG whose header reports `width` × `height` to RGB at 1/`scale` of each side, into
 * `out` when it is large enough (else into a new buffer; the one used is returned so a caller can
 * keep it for the next image). Undefined when libjpeg-turbo is unavailable or refuses the data
 * (corrupt, truncated, CMYK): the caller then decodes with sharp, which either succeeds or explains
 * what is wrong. Grayscale JPEGs come out as RGB with three equal channels. EXIF orientation and ICC
 * profiles are not applied.
 */
export function decodeJpegRgb(
  bytes: Uint8Array,
  width: number,
  height: number,
  scale: DraftScale,
  out?: Buffer,
): { pixels: Buffer; width: number; height: number; buffer: Buffer } | undefined {
  const tj = useTurboJpeg();
  if (!tj || width < 1 || height < 1) return undefined;
  const { handle } = tj;
  // The library's own reading of the frame must agree with ours before it writes into a buffer
  // sized from ours.
  if (tj.decompressHeader(handle, bytes, bytes.length) !== 0) return undefined;
  if (tj.get(handle, TJPARAM_JPEGWIDTH) !== width || tj.get(handle, TJPARAM_JPEGHEIGHT) !== height) return undefined;
  const w = scaledLength(width, scale);
  const h = scaledLength(height, scale);
  const size = w * h * 3;
  const buffer = out && out.length >= size ? out : Buffer.allocUnsafeSlow(size);
  if (tj.setScalingFactor(handle, { num: 1, denom: scale }) !== 0) return undefined;
  if (tj.decompress8(handle, bytes, bytes.length, buffer, 0, TJPF_RGB) !== 0) return undefined;
  return { pixels: buffer.subarray(0, size), width: w, height: h, buffer };
}
