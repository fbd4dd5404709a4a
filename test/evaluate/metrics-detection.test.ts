import { describe, expect, it } from 'vitest';
import { interpolatedPrecision, iou, prepareDetections, scoreDetections, scorePrepared, type DetectionSample } from '../../pipeline/evaluate/metrics/index.ts';

const CLASSES = ['spot', 'wrinkle'];
const box = (x: number, y: number, w = 10, h = 10): [number, number, number, number] => [x, y, x + w, y + h];

describe('iou', () => {
  it('is intersection over union of pixel boxes', () => {
    expect(iou(box(0, 0), box(0, 0))).toBe(1);
    expect(iou(box(0, 0), box(5, 0))).toBeCloseTo(50 / 150, 12);
    expect(iou(box(0, 0), box(10, 0))).toBe(0); // touching edges
    expect(iou([0, 0, 0, 0], [0, 0, 0, 0])).toBe(0);
  });
});

describe('interpolatedPrecision', () => {
  it('takes the precision envelope at 101 recall points', () => {
    // TP, FP, TP with 2 ground truths: recall 0.5 at precision 1, recall 1 at 2/3.
    const curve = interpolatedPrecision([1, 0, 1], 2);
    expect(curve).toHaveLength(101);
    expect(curve.slice(0, 51).every((p) => p === 1)).toBe(true);
    expect(curve.slice(51).every((p) => p === 2 / 3)).toBe(true);
    // Recall never reaches 1: precision 0 beyond it.
    expect(interpolatedPrecision([1, 0], 2)[100]).toBe(0);
    expect(interpolatedPrecision([0, 1], 1)[0]).toBe(0.5); // envelope lifts the first point
  });
});

describe('scoreDetections on hand-computed cases', () => {
  const samples: DetectionSample[] = [
    {
      id: 'img1',
      gt: [
        { cls: 0, box: box(0, 0) },
        { cls: 0, box: box(20, 20) },
      ],
      pred: [
        { cls: 0, conf: 0.9, box: box(0, 0) }, // TP
        { cls: 0, conf: 0.8, box: box(50, 50) }, // FP
        { cls: 0, conf: 0.05, box: [20, 20, 30, 31] }, // TP at IoU 10/11 ≈ 0.909, below the operating confidence
      ],
    },
    { id: 'img2', gt: [], pred: [] },
  ];
  const m = scoreDetections(samples, CLASSES);

  it('gives COCO 101-point AP at 0.5 and over 0.50:0.95', () => {
    const ap50 = (51 + 50 * (2 / 3)) / 101;
    expect(m.per_class.spot!.ap50).toBeCloseTo(ap50, 12);
    // IoU 0.909 matches up to threshold 0.90; at 0.95 only the first box counts (recall 0.5).
    expect(m.per_class.spot!.ap50_95).toBeCloseTo((9 * ap50 + 51 / 101) / 10, 12);
    expect(m.pr_curves.spot).toHaveLength(101);
  });

  it('leaves classes without ground truth out of the mAP', () => {
    expect(m.per_class.wrinkle).toMatchObject({ ap50: 0, support: 0, predictions: 0 });
    expect(m.pr_curves.wrinkle).toBeUndefined();
    expect(m.map50).toBeCloseTo(m.per_class.spot!.ap50, 12);
    expect(m.map50_95).toBeCloseTo(m.per_class.spot!.ap50_95, 12);
  });

  it('gives precision / recall / F1 at confidence ≥ 0.1 and IoU 0.5, micro over classes', () => {
    expect(m.confidence).toBe(0.1);
    expect(m).toMatchObject({ precision: 0.5, recall: 0.5, f1: 0.5, n: 2 });
    expect(m.per_class.spot).toMatchObject({ precision: 0.5, recall: 0.5, support: 2, predictions: 3 });
    // A lower operating confidence keeps the third box.
    const low = scoreDetections(samples, CLASSES, { confidence: 0.01 });
    expect(low.precision).toBeCloseTo(2 / 3, 12);
    expect(low.recall).toBe(1);
    expect(low.map50).toBe(m.map50);
  });

  it('matches each ground truth once, the best IoU first, and never across classes', () => {
    const r = scoreDetections(
      [
        {
          id: 'x',
          gt: [
            { cls: 0, box: box(0, 0) },
            { cls: 0, box: box(2, 0) },
          ],
          pred: [
            // IoU 0.67 with the first box, 1 with the second: takes the second, which leaves the
            // first for the next prediction (IoU 0.67 with it, 0.43 with the second).
            { cls: 0, conf: 0.9, box: box(2, 0) },
            { cls: 0, conf: 0.8, box: box(-2, 0) },
            { cls: 0, conf: 0.7, box: box(0, 0) }, // duplicate: FP
            { cls: 1, conf: 0.95, box: box(0, 0) }, // other class: FP for class 1
          ],
        },
      ],
      CLASSES,
    );
    expect(r.per_class.spot).toMatchObject({ precision: 2 / 3, recall: 1, ap50: 1 });
    expect(r.per_class.wrinkle).toMatchObject({ precision: 0, recall: 0, predictions: 1, support: 0 });
    expect(r.precision).toBe(0.5);
    expect(r.recall).toBe(1);
  });

  it('handles empty detections: no predictions, or no ground truth anywhere', () => {
    const missed = scoreDetections([{ id: 'a', gt: [{ cls: 1, box: box(0, 0) }], pred: [] }], CLASSES);
    expect(missed).toMatchObject({ map50: 0, map50_95: 0, precision: 0, recall: 0, f1: 0 });
    expect(missed.pr_curves.wrinkle!.every((p) => p === 0)).toBe(true);
    const nothing = scoreDetections([{ id: 'a', gt: [], pred: [] }], CLASSES);
    expect(nothing).toMatchObject({ map50: 0, precision: 0, recall: 0, f1: 0, n: 1 });
    const falseAlarms = scoreDetections([{ id: 'a', gt: [], pred: [{ cls: 0, conf: 0.9, box: box(0, 0) }] }], CLASSES);
    expect(falseAlarms).toMatchObject({ map50: 0, precision: 0, recall: 0 });
    expect(falseAlarms.per_class.spot!.predictions).toBe(1);
  });

  it('refuses no images, unknown classes and malformed boxes', () => {
    expect(() => scoreDetections([], CLASSES)).toThrow(/no images to score/);
    expect(() => scoreDetections([{ id: 'a', gt: [{ cls: 2, box: box(0, 0) }], pred: [] }], CLASSES)).toThrow(/image `a`/);
    expect(() => scoreDetections([{ id: 'b', gt: [], pred: [{ cls: 0, conf: 0.5, box: [10, 0, 0, 10] }] }], CLASSES)).toThrow(/image `b`/);
  });
});

describe('weighted images (slices and bootstrap resamples)', () => {
  it('equal scoring the images repeated that many times', () => {
    const images: DetectionSample[] = Array.from({ length: 6 }, (_, i) => ({
      id: `i${i}`,
      gt: [
        { cls: i % 2, box: box(0, 0) },
        { cls: 0, box: box(40, 40) },
      ],
      pred: [
        { cls: i % 2, conf: 0.95 - i * 0.1, box: box(i, 0) },
        { cls: 0, conf: 0.5, box: box(40 + 2 * i, 40) },
        { cls: 1, conf: 0.3 + i * 0.05, box: box(80, 80) },
      ],
    }));
    const weights = [2, 0, 1, 3, 0, 1];
    const repeated = weights.flatMap((w, i) => Array.from({ length: w }, (_, c) => ({ ...images[i]!, id: `${images[i]!.id}#${c}` })));
    const expected = scoreDetections(repeated, CLASSES);
    const got = scorePrepared(prepareDetections(images, 2), CLASSES, { imageWeights: weights });
    expect(got.n).toBe(7);
    expect(got.per_class).toEqual(expected.per_class);
    for (const key of ['map50', 'map50_95', 'precision', 'recall', 'f1'] as const) expect(got[key], key).toBeCloseTo(expected[key], 12);
    expect(got.pr_curves).toEqual(expected.pr_curves);
  });
});
