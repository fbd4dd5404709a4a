// JPEG header facts from the bytes alone (frame size, components, precision, coding, EXIF
// orientation, embedded ICC profile), so a caller can decide before decoding whether an image can
// take a pixels-only decoder and how to orient its output. No decoding, no allocation per segment.

export interface JpegHeader {
  /** Size as stored in the frame header (SOFn), before EXIF orientation. */
  width: number;
  height: number;
  /** Colour components in the frame: 1 grayscale, 3 YCbCr (or RGB), 4 CMYK/YCCK. */
  components: number;
  /** Sample precision in bits (8, or 12 for the rare 12-bit JPEGs). */
  precision: number;
  /** SOF marker type: 'baseline' (SOF0), 'extended' (SOF1), 'progressive' (SOF2), 'lossless' (SOF3), 'arithmetic' (SOF9–SOF11), 'other'. */
  coding: 'baseline' | 'extended' | 'progressive' | 'lossless' | 'arithmetic' | 'other';
  /** EXIF orientation 1–8 from APP1 "Exif\0\0" (TIFF header, either byte order, IFD0 tag 0x0112); 1 when absent or out of range. */
  orientation: number;
  /** An ICC profile is embedded (APP2 "ICC_PROFILE\0"). */
  iccProfile: boolean;
}

const SOI = 0xd8;
const EOI = 0xd9;
const SOS = 0xda;
const APP1 = 0xe1;
const APP2 = 0xe2;
const TEM = 0x01;
const ORIENTATION_TAG = 0x0112;
const EXIF_ID = [0x45, 0x78, 0x69, 0x66, 0, 0]; // "Exif\0\0"
const ICC_ID = [0x49, 0x43, 0x43, 0x5f, 0x50, 0x52, 0x4f, 0x46, 0x49, 0x4c, 0x45, 0]; // "ICC_PROFILE\0"

/** SOFn markers: C0–CF except DHT (C4), JPG (C8) and DAC (CC). */
function isFrameMarker(marker: number): boolean {
  return marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
}

function codingOf(marker: number): JpegHeader['coding'] {
  switch (marker) {
    case 0xc0: return 'baseline';
    case 0xc1: return 'extended';
    case 0xc2: return 'progressive';
    case 0xc3: return 'lossless';
    case 0xc9: case 0xca: case 0xcb: return 'arithmetic';
    default: return 'other'; // hierarchical (differential) frames
  }
}

/** Markers that stand alone, without a length: TEM, RST0–7, SOI, EOI. */
function isStandalone(marker: number): boolean {
  return marker === TEM || (marker >= 0xd0 && marker <= 0xd9);
}

function startsWith(bytes: Uint8Array, at: number, end: number, id: readonly number[]): boolean {
  if (end - at < id.length) return false;
  for (let i = 0; i < id.length; i++) if (bytes[at + i] !== id[i]) return false;
  return true;
}

/**
 * Read the markers from SOI up to the frame header (and the APPn segments before it, plus any after it up to SOS, since
 * EXIF/ICC may follow SOF in odd files). Returns undefined when the bytes are not a JPEG (no SOI) or the header is cut
 * short before the frame header; never throws on bad data, never reads past the buffer.
 * A frame header that cannot describe an image (no components, zero width, length too short for its
 * components) also gives undefined: no decoder would accept it.
 */
export function readJpegHeader(bytes: Uint8Array): JpegHeader | undefined {
  const n = bytes.length;
  if (n < 2 || bytes[0] !== 0xff || bytes[1] !== SOI) return undefined;
  let frame: Omit<JpegHeader, 'orientation' | 'iccProfile'> | undefined;
  let orientation = 0; // 0: no EXIF orientation seen yet; the first EXIF segment wins
  let iccProfile = false;
  let pos = 2;
  for (;;) {
    // Like libjpeg, skip stray bytes before a marker, then any number of 0xFF fill bytes.
    while (pos < n && bytes[pos] !== 0xff) pos++;
    while (pos < n && bytes[pos] === 0xff) pos++;
    if (pos >= n) break;
    const marker = bytes[pos++]!;
    if (marker === 0) continue; // a stuffed 0xFF00 is data, not a marker
    if (marker === EOI || marker === SOS) break;
    if (isStandalone(marker)) continue;
    if (pos + 2 > n) break;
    const length = (bytes[pos]! << 8) | bytes[pos + 1]!;
    if (length < 2) break;
    const start = pos + 2;
    const end = pos + length;
    if (end > n) {
      // Cut short (or a length that runs past the end): a frame header still counts when its
      // fields are all present, so a file truncated inside SOF's trailing bytes is not lost.
      if (frame === undefined && isFrameMarker(marker)) frame = readFrame(bytes, marker, start, n, n);
      break;
    }
    if (isFrameMarker(marker)) {
      if (frame === undefined) {
        frame = readFrame(bytes, marker, start, end, n);
        if (frame === undefined) return undefined;
      }
    } else if (marker === APP1 && orientation === 0 && startsWith(bytes, start, end, EXIF_ID)) {
      orientation = exifOrientation(bytes, start + EXIF_ID.length, end);
    } else if (marker === APP2 && startsWith(bytes, start, end, ICC_ID)) {
      iccProfile = true;
    }
    pos = end;
  }
  if (frame === undefined) return undefined;
  return { ...frame, orientation: orientation >= 1 && orientation <= 8 ? orientation : 1, iccProfile };
}

/** The frame header fields, or undefined when they are incomplete or describe no image. */
function readFrame(bytes: Uint8Array, marker: number, start: number, end: number, n: number): Omit<JpegHeader, 'orientation' | 'iccProfile'> | undefined {
  if (start + 6 > Math.min(end, n)) return undefined;
  const precision = bytes[start]!;
  const height = (bytes[start + 1]! << 8) | bytes[start + 2]!;
  const width = (bytes[start + 3]! << 8) | bytes[start + 4]!;
  const components = bytes[start + 5]!;
  // Each component takes 3 bytes (id, sampling factors, quantisation table).
  if (components === 0 || width === 0 || start + 6 + 3 * components > Math.min(end, n)) return undefined;
  return { width, height, components, precision, coding: codingOf(marker) };
}

/**
 * EXIF orientation from a TIFF structure in bytes[tiff, end): IFD0's tag 0x0112. Every offset is
 * checked against the segment; anything malformed gives -1 (counted as seen, reported as 1).
 */
function exifOrientation(bytes: Uint8Array, tiff: number, end: number): number {
  if (end - tiff < 8) return -1;
  const order = bytes[tiff];
  if (order !== bytes[tiff + 1] || (order !== 0x49 && order !== 0x4d)) return -1; // "II" or "MM"
  const little = order === 0x49;
  const u16 = (at: number) => (little ? bytes[at]! | (bytes[at + 1]! << 8) : (bytes[at]! << 8) | bytes[at + 1]!);
  const u32 = (at: number) => (little ? u16(at) + u16(at + 2) * 0x10000 : u16(at) * 0x10000 + u16(at + 2));
  const ifd = u32(tiff + 4);
  const length = end - tiff;
  if (ifd > length - 2) return -1;
  const count = u16(tiff + ifd);
  for (let i = 0; i < count; i++) {
    const entry = tiff + ifd + 2 + 12 * i;
    if (entry + 12 > end) return -1;
    if (u16(entry) !== ORIENTATION_TAG) continue;
    // SHORT as the spec says; LONG and BYTE from writers that got the type wrong. One value, stored inline.
    const type = u16(entry + 2);
    if (u32(entry + 4) !== 1) return -1;
    if (type === 3) return u16(entry + 8);
    if (type === 4) return u32(entry + 8);
    if (type === 1) return bytes[entry + 8]!;
    return -1;
  }
  return -1;
}
