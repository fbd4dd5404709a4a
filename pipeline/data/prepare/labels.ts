// YOLO label files: `cls cx cy w h` per line, normalised. Every problem is reported with its line.

export interface YoloBox {
  cls: number;
  cx: number;
  cy: number;
  w: number;
  h: number;
}

export type LabelProblem = 'bad-label-line' | 'class-out-of-range' | 'degenerate-box' | 'box-outside';

export interface LabelIssue {
  reason: LabelProblem;
  line: number;
  detail: string;
}

/** How far (normalised) a box may poke outside the image before it counts as outside. */
const EDGE_TOLERANCE = 1e-3;
/** Boxes smaller than this (normalised width or height) are degenerate. */
const MIN_SIDE = 1e-4;

export function parseYoloLabels(text: string, classCount: number): { boxes: YoloBox[]; issues: LabelIssue[] } {
  const boxes: YoloBox[] = [];
  const issues: LabelIssue[] = [];
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = i + 1;
    const t = raw.trim();
    if (!t) return;
    const parts = t.split(/\s+/);
    const nums = parts.map(Number);
    if (parts.length !== 5 || nums.some((n) => !Number.isFinite(n))) {
      issues.push({ reason: 'bad-label-line', line, detail: `expected \`cls cx cy w h\` (5 numbers), got \`${t.slice(0, 60)}\`` });
      return;
    }
    const [cls, cx, cy, w, h] = nums as [number, number, number, number, number];
    if (!Number.isInteger(cls) || cls < 0 || cls >= classCount) {
      issues.push({ reason: 'class-out-of-range', line, detail: `class id ${cls} outside 0..${classCount - 1}` });
      return;
    }
    if (!(w > MIN_SIDE) || !(h > MIN_SIDE)) {
      issues.push({ reason: 'degenerate-box', line, detail: `box ${w}×${h} has no area` });
      return;
    }
    const x1 = cx - w / 2;
    const y1 = cy - h / 2;
    const x2 = cx + w / 2;
    const y2 = cy + h / 2;
    if (x1 < -EDGE_TOLERANCE || y1 < -EDGE_TOLERANCE || x2 > 1 + EDGE_TOLERANCE || y2 > 1 + EDGE_TOLERANCE) {
      issues.push({ reason: 'box-outside', line, detail: `box [${x1.toFixed(4)}, ${y1.toFixed(4)}, ${x2.toFixed(4)}, ${y2.toFixed(4)}] extends outside the image` });
      return;
    }
    boxes.push({ cls, cx, cy, w, h });
  });
  return { boxes, issues };
}
