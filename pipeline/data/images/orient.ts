// EXIF orientation for decoded RGB pixels, for decoders that ignore it (libjpeg-turbo): the same
// result as libvips' autorot, in one cache-friendly pass over a typed array.

/** Output tiles of this many pixels square keep the column-wise reads of 5–8 within cache. */
const TILE = 16;

/**
 * Apply an EXIF orientation (1–8) to an RGB uint8 HWC image, as the EXIF spec and libvips' autorot define it
 * (2 mirror horizontally, 3 rotate 180°, 4 mirror vertically, 5 transpose, 6 rotate 90° clockwise, 7 transverse,
 * 8 rotate 90° anticlockwise). Orientation 1 returns the input unchanged (same object). Returns the oriented pixels
 * and size (5–8 swap width and height).
 * Throws RangeError for an orientation outside 1–8 or pixels that are not width×height×3 bytes: both are caller bugs
 * (readJpegHeader already maps unknown orientations to 1).
 */
export function orientRgb(pixels: Uint8Array, width: number, height: number, orientation: number): { pixels: Uint8Array; width: number; height: number } {
  if (!Number.isInteger(orientation) || orientation < 1 || orientation > 8) throw new RangeError(`EXIF orientation ${orientation} is not 1–8`);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 0 || height < 0 || pixels.length !== width * height * 3) {
    throw new RangeError(`${pixels.length} bytes is not a ${width}×${height} RGB image`);
  }
  if (orientation === 1) return { pixels, width, height };
  const swap = orientation >= 5;
  const outW = swap ? height : width;
  const outH = swap ? width : height;
  const out = new Uint8Array(pixels.length);
  if (pixels.length === 0) return { pixels: out, width: outW, height: outH };
  const w = width;
  const h = height;
  if (!swap) {
    // Rows map to rows: output row y is source row sy, walked forwards (4) or backwards (2, 3),
    // so a vertical mirror copies whole rows.
    const rowBytes = w * 3;
    for (let y = 0; y < h; y++) {
      const sy = orientation === 2 ? y : h - 1 - y;
      const dst = y * rowBytes;
      if (orientation === 4) {
        out.set(pixels.subarray(sy * rowBytes, (sy + 1) * rowBytes), dst);
        continue;
      }
      for (let x = 0, s = (sy + 1) * rowBytes - 3, d = dst; x < w; x++, s -= 3, d += 3) {
        out[d] = pixels[s]!;
        out[d + 1] = pixels[s + 1]!;
        out[d + 2] = pixels[s + 2]!;
      }
    }
    return { pixels: out, width: outW, height: outH };
  }
  // Swapped axes: walk the source row by row inside square tiles, so reads are sequential and
  // the scattered writes of one tile stay within cache. Output index of source (x, y) is
  // obase + x*ox + y*oy (in pixels).
  let obase: number, ox: number, oy: number;
  switch (orientation) {
    case 5: obase = 0; ox = h; oy = 1; break;
    case 6: obase = h - 1; ox = h; oy = -1; break;
    case 7: obase = (w - 1) * h + h - 1; ox = -h; oy = -1; break;
    default: obase = (w - 1) * h; ox = -h; oy = 1; break; // 8
  }
  const step = ox * 3;
  for (let ty = 0; ty < h; ty += TILE) {
    const yEnd = Math.min(ty + TILE, h);
    for (let tx = 0; tx < w; tx += TILE) {
      const xEnd = Math.min(tx + TILE, w);
      for (let y = ty; y < yEnd; y++) {
        let s = (y * w + tx) * 3;
        let d = (obase + tx * ox + y * oy) * 3;
        for (let x = tx; x < xEnd; x++, s += 3, d += step) {
          out[d] = pixels[s]!;
          out[d + 1] = pixels[s + 1]!;
          out[d + 2] = pixels[s + 2]!;
        }
      }
    }
  }
  return { pixels: out, width: outW, height: outH };
}
