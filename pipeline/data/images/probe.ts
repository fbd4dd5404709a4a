// Inspect one image without trusting it: header facts (format, size, colour space, depth, alpha,
// EXIF orientation), a full decode into a small thumbnail (catches truncated and corrupt data),
// its perceptual hash and the statistics the reference profile needs. Plain JPEGs go through
// libjpeg-turbo, DCT-scaled, on whichever thread calls (the preprocessing workers in
// prepare-data); the rest through sharp. Either way the thumbnail is the project's resize of the
// decoded image, so a picture gets about the same hash and statistics whatever its format.

import { readJpegHeader } from './jpeg-header.ts';
import { thumbnailStats, THUMB_SIZE, type ImageStats } from './hash.ts';
import { decodeJpeg, decodeScale, decodeWithSharp, orientedSize, turboDecodable } from './preprocess.ts';
import { resizeRgb } from './resample.ts';
import { loadSharp } from './sharp.ts';

export type ImageProblem = 'zero-byte' | 'unreadable' | 'truncated' | 'unsupported-format';
export type ImageNote = 'grayscale' | 'cmyk' | '16-bit' | 'alpha' | 'exif-orientation';

export interface ProbeOk {
  ok: true;
  format: string;
  /** Oriented (as displayed) size. */
  width: number;
  height: number;
  orientation: number;
  /** Conversions preprocessing applies to this image. */
  notes: ImageNote[];
  stats: ImageStats;
  /** 256-bit DCT pHash (64 hex digits) used for near-duplicate detection. */
  phash: string;
}

export interface ProbeBad {
  ok: false;
  problem: ImageProblem;
  detail: string;
}

export const SUPPORTED_FORMATS = ['jpeg', 'png'] as const;

export async function probeImage(bytes: Buffer): Promise<ProbeOk | ProbeBad> {
  return probeJpeg(bytes) ?? probeWithSharp(bytes);
}

const THUMBNAIL = { size: THUMB_SIZE, resize: 'fill' } as const;

/**
 * libjpeg-turbo's probe of an 8-bit gray or YCbCr JPEG without ICC profile (what nearly every
 * dataset holds), synchronous; undefined for any other image or when libjpeg-turbo refuses the
 * data, which probeWithSharp then examines and explains.
 */
export function probeJpeg(bytes: Uint8Array): ProbeOk | undefined {
  const header = readJpegHeader(bytes);
  if (!header || !turboDecodable(header)) return undefined;
  const decoded = decodeJpeg(bytes, header, decodeScale(header, THUMBNAIL));
  if (!decoded) return undefined;
  const notes: ImageNote[] = [];
  if (header.components === 1) notes.push('grayscale');
  if (header.orientation !== 1) notes.push('exif-orientation');
  const thumb = resizeRgb(decoded.pixels, decoded.width, decoded.height, THUMB_SIZE, THUMB_SIZE);
  const { stats, phash256 } = thumbnailStats(thumb);
  return { ok: true, format: 'jpeg', width: decoded.fullWidth, height: decoded.fullHeight, orientation: header.orientation, notes, stats, phash: phash256 };
}

/** sharp's probe: any format it reads, with its explanation of what is wrong with bad data. */
export async function probeWithSharp(bytes: Buffer): Promise<ProbeOk | ProbeBad> {
  if (bytes.length === 0) return { ok: false, problem: 'zero-byte', detail: 'file is empty' };
  const sharp = await loadSharp();
  let meta;
  try {
    meta = await sharp(bytes).metadata();
  } catch (error) {
    return decodeFailure(error, bytes);
  }
  if (!(SUPPORTED_FORMATS as readonly string[]).includes(meta.format)) {
    return { ok: false, problem: 'unsupported-format', detail: `format ${meta.format}; accepted: ${SUPPORTED_FORMATS.join(', ')}` };
  }
  const notes: ImageNote[] = [];
  if (meta.space === 'cmyk' || meta.channels === 4 && !meta.hasAlpha) notes.push('cmyk');
  if (meta.space === 'b-w' || meta.space === 'grey16' || meta.channels === 1 || (meta.channels === 2 && meta.hasAlpha)) notes.push('grayscale');
  if (meta.depth !== 'uchar' && meta.depth !== 'char' || (meta.bitsPerSample ?? 8) > 8) notes.push('16-bit');
  if (meta.hasAlpha) notes.push('alpha');
  const orientation = meta.orientation ?? 1;
  if (orientation !== 1) notes.push('exif-orientation');
  const [width, height] = orientedSize(meta.width, meta.height, meta.orientation);
  let thumb: Uint8Array;
  try {
    const decoded = await decodeWithSharp(bytes);
    thumb = resizeRgb(decoded.pixels, decoded.width, decoded.height, THUMB_SIZE, THUMB_SIZE);
  } catch (error) {
    return decodeFailure(error, bytes);
  }
  const { stats, phash256 } = thumbnailStats(thumb);
  return { ok: true, format: meta.format, width, height, orientation, notes, stats, phash: phash256 };
}

/**
 * Why a decode failed. The structure of the file decides (libvips keeps one error buffer for all
 * threads, so with several images in flight its message may belong to another image): a JPEG
 * without its end-of-image marker or a PNG without IEND is truncated.
 */
function decodeFailure(error: unknown, bytes: Buffer): ProbeBad {
  const detail = firstLine(error);
  const truncated = isTruncated(bytes) ?? /premature end|truncat|unexpected end|short read|not enough data/i.test(detail);
  return { ok: false, problem: truncated ? 'truncated' : 'unreadable', detail: truncated && !/premature|truncat/i.test(detail) ? `data ends early (${detail})` : detail };
}

/** true/false for JPEG and PNG (end marker present or not), undefined for other formats. */
export function isTruncated(bytes: Buffer): boolean | undefined {
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) {
    let end = bytes.length;
    // Tolerate padding after the end-of-image marker.
    while (end > 2 && (bytes[end - 1] === 0x00 || bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
    return !(bytes[end - 2] === 0xff && bytes[end - 1] === 0xd9);
  }
  if (bytes.length >= 8 && bytes.readUInt32BE(0) === 0x89504e47) {
    return bytes.lastIndexOf('IEND', undefined, 'latin1') < 0;
  }
  return undefined;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!.trim();
}
