// readJpegHeader against sharp's metadata and hand-built marker sequences (fill bytes, restart
// markers, EXIF in either byte order, malformed and truncated headers), and orientRgb against
// sharp's own rotations and EXIF auto-orientation on lossless input.

import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readJpegHeader, type JpegHeader } from '../../pipeline/data/images/jpeg-header.ts';
import { orientRgb } from '../../pipeline/data/images/orient.ts';
import { picture } from '../support/pictures.ts';

// Non-square, and not a multiple of the 8/16-pixel MCU, so swapped or rounded sizes show.
const W = 37;
const H = 23;
const rgb = () => sharp(picture(W, H, 7), { raw: { width: W, height: H, channels: 3 } });

/** Header fields as sharp reports them, in JpegHeader's terms. */
async function fromSharp(bytes: Buffer): Promise<JpegHeader> {
  const meta = await sharp(bytes).metadata();
  expect(meta.format).toBe('jpeg');
  expect(meta.depth).toBe('uchar');
  return {
    width: meta.width,
    height: meta.height,
    components: meta.channels,
    precision: 8,
    coding: meta.isProgressive ? 'progressive' : 'baseline',
    orientation: meta.orientation ?? 1,
    iccProfile: meta.hasProfile,
  };
}

/**
 * A view that fails the test on any read outside its length. Plain typed-array reads out of range
 * quietly give undefined, which would hide a reader that runs past the buffer.
 */
function guarded(bytes: Uint8Array): Uint8Array {
  return new Proxy(bytes, {
    get(target, key) {
      if (typeof key === 'string' && /^-?\d+$/.test(key) && (Number(key) < 0 || Number(key) >= target.length)) {
        throw new Error(`read at ${key} past the end (${target.length} bytes)`);
      }
      const value = Reflect.get(target, key, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

// ---- hand-built JPEG pieces ----

const u16be = (v: number) => [(v >> 8) & 255, v & 255];
const u16le = (v: number) => [v & 255, (v >> 8) & 255];
const u32be = (v: number) => [(v >>> 24) & 255, (v >> 16) & 255, (v >> 8) & 255, v & 255];
const u32le = (v: number) => [v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255];
const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));

const SOI = [0xff, 0xd8];
const EOI = [0xff, 0xd9];
const segment = (marker: number, payload: number[]) => [0xff, marker, ...u16be(payload.length + 2), ...payload];

function sof(marker: number, { precision = 8, width = 640, height = 480, components = 3 } = {}): number[] {
  const specs: number[] = [];
  for (let c = 1; c <= components; c++) specs.push(c, c === 1 ? 0x22 : 0x11, c === 1 ? 0 : 1);
  return segment(marker, [precision, ...u16be(height), ...u16be(width), components, ...specs]);
}
const SOF0 = sof(0xc0);
/** SOS for 3 components, a little entropy-coded data (with a stuffed 0xFF00 and a restart marker) and EOI. */
const SCAN = [...segment(0xda, [3, 1, 0, 2, 0x11, 3, 0x11, 0, 63, 0]), 0x12, 0xff, 0x00, 0x34, 0xff, 0xd0, 0x56, ...EOI];
const DQT = segment(0xdb, [0, ...Array.from({ length: 64 }, (_, i) => i + 1)]);
const DHT = segment(0xc4, [0, ...Array.from({ length: 16 }, (_, i) => (i === 0 ? 1 : 0)), 0]);
const DAC = segment(0xcc, [0, 0x10]);

interface IfdEntry { tag: number; type: number; count: number; value: number }

/** APP1 "Exif\0\0" with a TIFF header in the given byte order and IFD0 holding `entries`. */
function exif(order: 'II' | 'MM', entries: IfdEntry[], { ifdOffset = 8, declaredCount = entries.length } = {}): number[] {
  const le = order === 'II';
  const s16 = le ? u16le : u16be;
  const s32 = le ? u32le : u32be;
  const tiff = [...ascii(order), ...s16(42), ...s32(ifdOffset), ...s16(declaredCount)];
  for (const e of entries) {
    // SHORT and BYTE values sit left-justified in the 4-byte value field.
    const value = e.type === 3 ? [...s16(e.value), 0, 0] : e.type === 1 ? [e.value, 0, 0, 0] : s32(e.value);
    tiff.push(...s16(e.tag), ...s16(e.type), ...s32(e.count), ...value);
  }
  tiff.push(...s32(0)); // no IFD1
  return segment(0xe1, [...ascii('Exif'), 0, 0, ...tiff]);
}
const orientationEntry = (value: number, type = 3): IfdEntry => ({ tag: 0x0112, type, count: 1, value });
const otherEntries: IfdEntry[] = [
  { tag: 0x010f, type: 2, count: 4, value: 0x43616e00 }, // Make, inline ASCII
  { tag: 0x011a, type: 5, count: 1, value: 0x1000 }, // XResolution (offset; never followed)
];
const ICC = segment(0xe2, [...ascii('ICC_PROFILE'), 0, 1, 1, ...Array.from({ length: 20 }, (_, i) => i)]);
const JFIF = segment(0xe0, [...ascii('JFIF'), 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
const XMP = segment(0xe1, [...ascii('http://ns.adobe.com/xap/1.0/'), 0, ...ascii('<x:xmpmeta/>')]);

const bytesOf = (...parts: number[][]) => new Uint8Array(parts.flat());
const header = (...parts: number[][]) => readJpegHeader(guarded(bytesOf(...parts)));
const plain: JpegHeader = { width: 640, height: 480, components: 3, precision: 8, coding: 'baseline', orientation: 1, iccProfile: false };

describe('readJpegHeader on JPEGs written by sharp', () => {
  const cases: [string, () => Promise<Buffer>, Partial<JpegHeader>][] = [
    ['4:2:0 baseline', () => rgb().jpeg({ chromaSubsampling: '4:2:0' }).toBuffer(), { components: 3, coding: 'baseline' }],
    ['4:4:4', () => rgb().jpeg({ chromaSubsampling: '4:4:4' }).toBuffer(), { components: 3 }],
    ['grayscale', () => rgb().toColourspace('b-w').jpeg().toBuffer(), { components: 1 }],
    ['CMYK', () => rgb().toColourspace('cmyk').jpeg().toBuffer(), { components: 4 }],
    ['progressive', () => rgb().jpeg({ progressive: true }).toBuffer(), { coding: 'progressive' }],
    ['P3 ICC profile', () => rgb().withIccProfile('p3').jpeg().toBuffer(), { iccProfile: true }],
  ];
  for (const [name, make, expected] of cases) {
    it(`reads ${name} as sharp does`, async () => {
      const bytes = await make();
      const got = readJpegHeader(guarded(bytes));
      expect(got).toEqual(await fromSharp(bytes));
      expect(got).toMatchObject({ width: W, height: H, ...expected });
    });
  }

  it('reads every EXIF orientation (stored size, not the oriented one)', async () => {
    for (let orientation = 1; orientation <= 8; orientation++) {
      const bytes = await rgb().jpeg().withMetadata({ orientation }).toBuffer();
      const got = readJpegHeader(guarded(bytes));
      expect(got, `orientation ${orientation}`).toEqual(await fromSharp(bytes));
      expect(got).toMatchObject({ orientation, width: W, height: H });
    }
  });

  it('never throws or reads past the end of a JPEG cut at any byte of its header', async () => {
    const bytes = await rgb().withIccProfile('p3').jpeg().withMetadata({ orientation: 6 }).toBuffer();
    const full = readJpegHeader(bytes)!;
    expect(full).toMatchObject({ orientation: 6, iccProfile: true, width: W, height: H });
    // The frame header ends at SOF0's offset + 2 + its length; metadata segments all come before it.
    let sofAt = 2;
    while (bytes[sofAt + 1] !== 0xc0) sofAt += 2 + bytes.readUInt16BE(sofAt + 2);
    const sofEnd = sofAt + 2 + bytes.readUInt16BE(sofAt + 2);
    let sosAt = sofEnd;
    while (bytes[sosAt + 1] !== 0xda) sosAt += 2 + bytes.readUInt16BE(sosAt + 2);
    for (let cut = 0; cut <= sosAt + 16; cut++) {
      const got = readJpegHeader(guarded(bytes.subarray(0, cut)));
      if (cut < sofEnd) expect(got, `cut at ${cut}`).toBeUndefined();
      else expect(got, `cut at ${cut}`).toEqual(full);
    }
  });
});

describe('readJpegHeader on hand-built marker sequences', () => {
  it('reads a minimal JPEG and stops at SOS', () => {
    expect(header(SOI, JFIF, DQT, SOF0, DHT, SCAN)).toEqual(plain);
    // A frame marker inside the scan data is not read: SOS ends the header.
    expect(header(SOI, SOF0, SCAN, sof(0xc2, { width: 9 }))).toEqual(plain);
  });

  it('reads EXIF orientation in both byte orders, with the tag among others', () => {
    for (const order of ['II', 'MM'] as const) {
      for (const value of [3, 6, 8]) {
        expect(header(SOI, exif(order, [...otherEntries, orientationEntry(value)]), SOF0, SCAN), `${order} ${value}`).toEqual({ ...plain, orientation: value });
      }
    }
  });

  it('takes orientation stored as LONG or BYTE, as written by some cameras', () => {
    expect(header(SOI, exif('MM', [orientationEntry(6, 4)]), SOF0, SCAN)?.orientation).toBe(6);
    expect(header(SOI, exif('II', [orientationEntry(8, 4)]), SOF0, SCAN)?.orientation).toBe(8);
    expect(header(SOI, exif('II', [orientationEntry(5, 1)]), SOF0, SCAN)?.orientation).toBe(5);
  });

  it('reads EXIF and ICC that follow the frame header', () => {
    expect(header(SOI, SOF0, exif('MM', [orientationEntry(7)]), ICC, DHT, SCAN)).toEqual({ ...plain, orientation: 7, iccProfile: true });
  });

  it('treats bad EXIF as orientation 1 without throwing', () => {
    const cases: [string, number[]][] = [
      ['orientation 0', exif('II', [orientationEntry(0)])],
      ['orientation 9', exif('MM', [orientationEntry(9)])],
      ['orientation 0x0106 (byte order mixed up)', exif('MM', [orientationEntry(0x0106)])],
      ['IFD0 offset past the segment', exif('II', [orientationEntry(6)], { ifdOffset: 4000 })],
      ['IFD0 offset at 2^32 - 1', exif('MM', [orientationEntry(6)], { ifdOffset: 0xffffffff })],
      ['entry count running past the segment', exif('II', [...otherEntries, { tag: 0x0110, type: 2, count: 4, value: 0 }], { declaredCount: 900 })],
      ['no orientation tag', exif('MM', otherEntries)],
      ['unknown byte order', exif('II', [orientationEntry(6)]).map((b, i) => (i === 10 || i === 11 ? 0x58 : b))],
      ['SRATIONAL type', exif('II', [orientationEntry(6, 10)])],
      ['count of 2', exif('II', [{ ...orientationEntry(6), count: 2 }])],
      ['TIFF header cut short', segment(0xe1, [...ascii('Exif'), 0, 0, ...ascii('MM'), 0])],
      ['XMP, not EXIF', XMP],
      ['"Exif" without its two NULs', segment(0xe1, [...ascii('Exif'), ...exif('II', [orientationEntry(6)]).slice(10)])],
    ];
    for (const [name, app1] of cases) {
      expect(header(SOI, app1, SOF0, SCAN), name).toEqual(plain);
    }
    // The entry is found before the count runs out of segment.
    expect(header(SOI, exif('II', [orientationEntry(6)], { declaredCount: 900 }), SOF0, SCAN)?.orientation).toBe(6);
  });

  it('uses the first EXIF segment', () => {
    expect(header(SOI, XMP, exif('II', [orientationEntry(3)]), exif('MM', [orientationEntry(6)]), SOF0, SCAN)?.orientation).toBe(3);
  });

  it('skips fill bytes, restart and TEM markers, and stray bytes before a marker', () => {
    const fill = [0xff, 0xff, 0xff];
    expect(header(SOI, fill, JFIF, fill, exif('MM', [orientationEntry(6)]), [0xff, 0xd3, 0xff, 0x01], fill, DQT, SOF0, SCAN)).toEqual({ ...plain, orientation: 6 });
    expect(header(SOI, [0xff, 0xd0, 0xff, 0xd7], ICC, SOF0, SCAN)).toEqual({ ...plain, iccProfile: true });
    // libjpeg skips (and warns about) bytes between segments that are not a marker.
    expect(header(SOI, JFIF, [0x00, 0x12, 0x34], SOF0, SCAN)).toEqual(plain);
  });

  it('names the coding of each frame type and reads 12-bit precision', () => {
    const coding = (marker: number) => header(SOI, sof(marker), SCAN)?.coding;
    expect([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf].map(coding)).toEqual([
      'baseline', 'extended', 'progressive', 'lossless', 'other', 'other', 'other',
      'arithmetic', 'arithmetic', 'arithmetic', 'other', 'other', 'other',
    ]);
    expect(header(SOI, sof(0xc1, { precision: 12, width: 4000, height: 3000, components: 1 }), SCAN)).toEqual({
      ...plain, width: 4000, height: 3000, components: 1, precision: 12, coding: 'extended',
    });
    expect(header(SOI, sof(0xc2, { width: 65535, height: 1, components: 4 }), SCAN)).toMatchObject({ width: 65535, height: 1, components: 4 });
  });

  it('does not take DHT, DAC or JPG for a frame header', () => {
    expect(header(SOI, DHT, DAC, segment(0xc8, [8, 0, 16, 0, 16, 1, 1, 0x11, 0]), sof(0xc2), SCAN)?.coding).toBe('progressive');
    expect(header(SOI, DHT, DAC, SCAN)).toBeUndefined();
  });

  it('keeps the first frame header', () => {
    expect(header(SOI, SOF0, sof(0xc2, { width: 9 }), SCAN)).toEqual(plain);
  });

  it('gives undefined for non-JPEG input and headers without a frame', async () => {
    const png = await rgb().png().toBuffer();
    expect(readJpegHeader(guarded(png))).toBeUndefined();
    expect(readJpegHeader(guarded(new Uint8Array(0)))).toBeUndefined();
    expect(header([0xff])).toBeUndefined();
    expect(header(SOI)).toBeUndefined();
    expect(header(SOI, EOI)).toBeUndefined();
    expect(header(SOI, JFIF, EOI, SOF0)).toBeUndefined();
    expect(header([0xff, 0xd9], SOF0, SCAN)).toBeUndefined();
    expect(header([0x00], SOI, SOF0, SCAN)).toBeUndefined();
    expect(header(ascii('GIF89a'), SOF0)).toBeUndefined();
  });

  it('gives undefined for a frame header that describes no image, and for bad segment lengths before it', () => {
    expect(header(SOI, sof(0xc0, { components: 0 }), SCAN)).toBeUndefined();
    expect(header(SOI, sof(0xc0, { width: 0 }), SCAN)).toBeUndefined();
    // Length too short for its three components.
    expect(header(SOI, [0xff, 0xc0, ...u16be(11), 8, 0, 16, 0, 16, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1], SCAN)).toBeUndefined();
    expect(header(SOI, [0xff, 0xe0, 0, 1], SOF0, SCAN)).toBeUndefined();
    expect(header(SOI, [0xff, 0xe0, 0xff, 0xff, 1, 2, 3], SOF0, SCAN)).toBeUndefined();
  });

  it('keeps the frame header when a segment after it runs past the end', () => {
    expect(header(SOI, SOF0, [0xff, 0xe1, 0x40, 0x00, ...ascii('Exif'), 0, 0, ...ascii('MM')])).toEqual(plain);
    expect(header(SOI, SOF0, exif('MM', [orientationEntry(6)]).slice(0, -3))).toEqual(plain);
  });

  it('reads a height of 0 as stored (defined later by DNL)', () => {
    expect(header(SOI, sof(0xc0, { height: 0 }), SCAN)).toEqual({ ...plain, height: 0 });
  });
});

// ---- orientRgb ----

/** A raw RGB image whose pixels are all distinct: (i mod 256, i div 256, a third mix). */
function distinct(width: number, height: number): Buffer {
  const buf = Buffer.alloc(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    buf[i * 3] = i & 255;
    buf[i * 3 + 1] = i >> 8;
    buf[i * 3 + 2] = (i * 37 + 11) & 255;
  }
  return buf;
}

const raw = (pixels: Buffer, width: number, height: number) => sharp(pixels, { raw: { width, height, channels: 3 } });

/**
 * What sharp makes of an orientation with explicit operations: a clockwise rotation, then a mirror
 * in a second pipeline (within one pipeline sharp picks its own order for rotate and flip/flop).
 */
async function bySharpOps(pixels: Buffer, width: number, height: number, orientation: number) {
  const steps: Record<number, [rotate: number, mirror: 'flip' | 'flop' | undefined]> = {
    1: [0, undefined], 2: [0, 'flop'], 3: [180, undefined], 4: [0, 'flip'],
    5: [90, 'flop'], 6: [90, undefined], 7: [270, 'flop'], 8: [270, undefined],
  };
  const [angle, mirror] = steps[orientation]!;
  let out = await raw(pixels, width, height).rotate(angle).raw().toBuffer({ resolveWithObject: true });
  if (mirror) {
    const turned = raw(out.data, out.info.width, out.info.height);
    out = await (mirror === 'flip' ? turned.flip() : turned.flop()).raw().toBuffer({ resolveWithObject: true });
  }
  return { pixels: new Uint8Array(out.data), width: out.info.width, height: out.info.height };
}

/** What libvips' autorot makes of a lossless PNG carrying the EXIF orientation. */
async function bySharpAutoOrient(pixels: Buffer, width: number, height: number, orientation: number) {
  const png = await raw(pixels, width, height).withMetadata({ orientation }).png().toBuffer();
  expect((await sharp(png).metadata()).orientation).toBe(orientation);
  const { data, info } = await sharp(png).autoOrient().raw().toBuffer({ resolveWithObject: true });
  return { pixels: new Uint8Array(data), width: info.width, height: info.height };
}

describe('orientRgb', () => {
  // 37×21 crosses the 16-pixel tiles with partial ones; 1-pixel strips catch off-by-one strides.
  const sizes: [number, number][] = [[37, 21], [21, 37], [1, 5], [5, 1]];

  it('matches sharp rotate/flip/flop, byte for byte, for all eight orientations', async () => {
    for (const [w, h] of sizes) {
      const input = distinct(w, h);
      for (let orientation = 1; orientation <= 8; orientation++) {
        const got = orientRgb(new Uint8Array(input), w, h, orientation);
        const want = await bySharpOps(input, w, h, orientation);
        expect({ width: got.width, height: got.height }, `${w}×${h} orientation ${orientation}`).toEqual({ width: want.width, height: want.height });
        expect(Buffer.from(got.pixels).equals(Buffer.from(want.pixels)), `${w}×${h} orientation ${orientation}`).toBe(true);
      }
    }
  });

  it('matches libvips auto-orientation of the same EXIF orientation', async () => {
    const [w, h] = [37, 21];
    const input = distinct(w, h);
    for (let orientation = 1; orientation <= 8; orientation++) {
      const got = orientRgb(new Uint8Array(input), w, h, orientation);
      const want = await bySharpAutoOrient(input, w, h, orientation);
      expect([got.width, got.height], `orientation ${orientation}`).toEqual([want.width, want.height]);
      expect(Buffer.from(got.pixels).equals(Buffer.from(want.pixels)), `orientation ${orientation}`).toBe(true);
    }
  });

  it('returns the input itself for orientation 1 and leaves the input untouched otherwise', () => {
    const input = new Uint8Array(distinct(4, 3));
    const copy = input.slice();
    expect(orientRgb(input, 4, 3, 1).pixels).toBe(input);
    for (let orientation = 2; orientation <= 8; orientation++) {
      const out = orientRgb(input, 4, 3, orientation);
      expect(out.pixels).not.toBe(input);
      expect(out.pixels.length).toBe(input.length);
    }
    expect(input).toEqual(copy);
  });

  it('rejects orientations outside 1–8 and pixel buffers of the wrong size', () => {
    const input = new Uint8Array(4 * 3 * 3);
    for (const bad of [0, 9, 2.5, Number.NaN]) expect(() => orientRgb(input, 4, 3, bad)).toThrow(RangeError);
    expect(() => orientRgb(input, 3, 3, 6)).toThrow(RangeError);
    expect(() => orientRgb(input.subarray(1), 4, 3, 1)).toThrow(RangeError);
  });
});
