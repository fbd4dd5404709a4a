// Letterbox geometry exactly as Ultralytics computes it (keep aspect, centre, pad with 114 gray),
// and the box mappings between original and letterboxed pixels.

export const LETTERBOX_PAD_VALUE = 114;

export interface LetterboxGeometry {
  /** Target square size. */
  size: number;
  /** Resized content size before padding. */
  width: number;
  height: number;
  /** Per-axis scale actually applied (content size / original size). */
  scale: [number, number];
  /** Padding in pixels: left, top, right, bottom. */
  pad: [number, number, number, number];
}

/** Python's round(): half to even, and never -0. */
function pyRound(x: number): number {
  const r = Math.round(x);
  const half = Math.abs(x % 1) === 0.5;
  return (half && r % 2 !== 0 ? r - 1 : r) + 0;
}

/** Ultralytics `LetterBox(auto=False, scaleup=True, center=True)` geometry for a w×h image. */
export function letterboxGeometry(w: number, h: number, size: number): LetterboxGeometry {
  const r = Math.min(size / h, size / w);
  const width = Math.min(size, Math.max(1, pyRound(w * r)));
  const height = Math.min(size, Math.max(1, pyRound(h * r)));
  const dw = (size - width) / 2;
  const dh = (size - height) / 2;
  const top = pyRound(dh - 0.1);
  const bottom = size - height - top;
  const left = pyRound(dw - 0.1);
  const right = size - width - left;
  return { size, width, height, scale: [width / w, height / h], pad: [left, top, right, bottom] };
}

/** A box in pixels: x1, y1, x2, y2. */
export type BoxXYXY = [number, number, number, number];

/** YOLO normalised `cx cy w h` on a w×h image → pixel xyxy on that image. */
export function yoloToPixels(cx: number, cy: number, bw: number, bh: number, w: number, h: number): BoxXYXY {
  return [(cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h];
}

/** What box mapping needs: per-axis scale and the left/top pad (index items store exactly this). */
export interface BoxMapping {
  scale: readonly [number, number];
  pad: readonly number[];
}

export function toLetterbox(box: BoxXYXY, g: BoxMapping): BoxXYXY {
  const [sx, sy] = g.scale;
  const left = g.pad[0]!;
  const top = g.pad[1]!;
  return [box[0] * sx + left, box[1] * sy + top, box[2] * sx + left, box[3] * sy + top];
}

export function fromLetterbox(box: BoxXYXY, g: BoxMapping): BoxXYXY {
  const [sx, sy] = g.scale;
  const left = g.pad[0]!;
  const top = g.pad[1]!;
  return [(box[0] - left) / sx, (box[1] - top) / sy, (box[2] - left) / sx, (box[3] - top) / sy];
}
