import { describe, expect, it } from 'vitest';
import { Rng } from '../../../pipeline/data/synthetic/rng.ts';
import {
  allocActivations,
  assignTargets,
  backward,
  BOX_LOSS_WEIGHT,
  BOX_ROWS,
  combineLoss,
  decodeRaw,
  forwardRaw,
  giouLoss,
  imageLoss,
  initHead,
  iouTargets,
  type DetectionHead,
} from '../../../pipeline/train/head/detection-head.ts';
import { fitAnchor } from '../../../pipeline/train/head/detection.ts';

function smallHead(hidden: number | null, seed = 3): DetectionHead {
  const channels = 3;
  const h = initHead(
    { classes: 2, channels, height: 3, width: 4, stride: 8, anchor: [10, 6], mean: new Float32Array(channels), invStd: new Float32Array(channels).fill(1) },
    hidden,
    seed,
  );
  // Larger last-layer weights than the initialisation, so every gradient term is exercised.
  const rng = new Rng(seed, 9);
  for (const l of h.layers) for (let i = 0; i < l.w.value.length; i++) l.w.value[i] = rng.normal() * 0.5;
  return h;
}

function totalLoss(h: DetectionHead, x: Float32Array, boxes: number[][], targets?: Float64Array): number {
  const t = assignTargets(h, boxes);
  const l = imageLoss(h, forwardRaw(h, x, 0, allocActivations(h)), t, targets);
  return combineLoss(l.cls, l.box, t.cells.length);
}

describe('detection head arithmetic', () => {
  it('assigns a box to the cell holding its centre and its two nearest neighbours', () => {
    const h = smallHead(null);
    // Centre (13, 9) in stride-8 cells: (1.625, 1.125) → cell (1, 1); nearer right (x frac ≥ .5) and upper (y frac < .5) neighbours.
    const t = assignTargets(h, [[1, 9, 6, 17, 12]]);
    expect([...t.cells]).toEqual([0 * 4 + 1, 1 * 4 + 1, 1 * 4 + 2]);
    expect([...t.positives]).toEqual([1 * 2 + 1, 5 * 2 + 1, 6 * 2 + 1]);
    expect([...t.boxes.subarray(0, 4)]).toEqual([9 / 8, 6 / 8, 17 / 8, 12 / 8]);
    // A box centred in the corner cell has neighbours only inside the grid.
    expect([...assignTargets(h, [[0, 0, 0, 4, 4]]).cells]).toEqual([0]);
    // Two boxes sharing a centre cell: both classes are positive there, the first box is regressed.
    const two = assignTargets(h, [[0, 10, 10, 12, 12], [1, 11, 11, 13, 13]]);
    expect([...two.positives].filter((p) => Math.floor(p / 2) === 5)).toEqual([10, 11]);
    expect(two.boxes[two.cells.indexOf(5) * 4]).toBe(10 / 8);
  });

  it('GIoU loss is 0 for identical boxes, grows apart, and its gradient matches finite differences', () => {
    const grad = new Float64Array(4);
    expect(giouLoss([1, 1, 3, 3], [1, 1, 3, 3], grad)).toBeCloseTo(0, 8);
    expect(giouLoss([5, 5, 6, 6], [1, 1, 3, 3], grad)).toBeGreaterThan(1);
    for (const [p, g] of [
      [[1, 1, 3, 4], [2, 0.5, 4, 3]],
      [[0, 0, 1, 1], [2, 2, 3, 3.5]],
      [[0, 0, 5, 5], [1, 1, 2, 2]],
    ] as const) {
      giouLoss(p, g, grad);
      for (let j = 0; j < 4; j++) {
        const e = 1e-6;
        const up = [...p];
        const down = [...p];
        up[j]! += e;
        down[j]! -= e;
        const num = (giouLoss(up, g, new Float64Array(4)) - giouLoss(down, g, new Float64Array(4))) / (2 * e);
        expect(grad[j]).toBeCloseTo(num, 5);
      }
    }
  });

  for (const hidden of [null, 5]) {
    it(`backward gives the loss gradient of every weight (${hidden === null ? 'linear' : 'mlp'} head)`, () => {
      const h = smallHead(hidden);
      const P = h.height * h.width;
      const rng = new Rng(11);
      const x = Float32Array.from({ length: h.channels * P }, () => rng.normal());
      const boxes = [[1, 9, 6, 17, 12], [0, 2, 14, 11, 22]];
      const t = assignTargets(h, boxes);
      // Soft class targets, held fixed (as the IoU targets are during a step).
      const targets = Float64Array.from(t.positives, (_, i) => 0.3 + 0.1 * i);
      const acts = allocActivations(h);
      const dOut = new Float64Array((BOX_ROWS + h.classes) * P);
      imageLoss(h, forwardRaw(h, x, 0, acts), t, targets, dOut, 1 / t.cells.length);
      backward(h, acts, dOut, new Float64Array(16 * P));
      let checked = 0;
      h.layers.forEach((l, li) => {
        for (const { value: param, grad } of [l.w, l.b]) {
          for (let i = 0; i < param.length; i++) {
            const keep = param[i]!;
            // float32 weights: a step large enough to be represented, small enough to stay linear.
            const e = 1e-3;
            param[i] = keep + e;
            const up = totalLoss(h, x, boxes, targets);
            param[i] = keep - e;
            const down = totalLoss(h, x, boxes, targets);
            param[i] = keep;
            const num = (up - down) / (2 * e);
            expect(Math.abs(grad[i]! - num)).toBeLessThan(2e-3 * Math.max(1, Math.abs(num)));
            checked++;
          }
        }
      });
      expect(checked).toBe(h.layers.reduce((n, l) => n + l.w.value.length + l.b.value.length, 0));
      // The box term is in the total, weighted.
      const l = imageLoss(h, forwardRaw(h, x, 0, allocActivations(h)), t);
      expect(totalLoss(h, x, boxes)).toBeCloseTo((l.cls + BOX_LOSS_WEIGHT * l.box) / t.cells.length, 10);
      expect(l.box).toBeGreaterThan(0);
    });
  }

  it('decodes the raw output as YOLOv8 boxes: centre cell + offset, size from the anchor, sigmoid scores', () => {
    const h = smallHead(null);
    const P = h.height * h.width;
    const raw = new Float64Array((BOX_ROWS + h.classes) * P);
    // Cell (2, 1) = anchor 6: σ(0) = 0.5 → centre of the cell, size = anchor.
    const p = 1 * h.width + 2;
    raw[4 * P + p] = 3;
    raw[2 * P + p] = 100; // σ → 1: width 4 × anchor
    const out = new Float32Array((BOX_ROWS + h.classes) * P);
    decodeRaw(h, raw, out, 0);
    expect(out[p]).toBeCloseTo((2 * 0.5 + 2 - 0.5) * 8, 5);
    expect(out[P + p]).toBeCloseTo((2 * 0.5 + 1 - 0.5) * 8, 5);
    expect(out[2 * P + p]).toBeCloseTo(4 * 10, 4);
    expect(out[3 * P + p]).toBeCloseTo(6, 5);
    expect(out[4 * P + p]).toBeCloseTo(1 / (1 + Math.exp(-3)), 6);
    expect(out[5 * P + p]).toBeCloseTo(0.5, 6);
  });

  it('IoU-aware class targets: the IoU of the cell\'s current box with its ground truth', () => {
    const h = smallHead(null);
    const P = h.height * h.width;
    const raw = new Float64Array((BOX_ROWS + h.classes) * P);
    // Every cell predicts a box at its centre with the anchor's size (10 × 6 px).
    const t = assignTargets(h, [[1, 7, 9, 17, 15]]);
    expect(t.cells.length).toBeGreaterThan(0);
    const targets = iouTargets(h, raw, t);
    // The centre cell (1, 1) predicts exactly [7, 9, 17, 15] (centre 12, 12): IoU 1; the neighbours less.
    const centre = t.positiveCell.findIndex((i) => t.cells[i] === 1 * h.width + 1);
    expect(targets[centre]).toBeCloseTo(1, 9);
    for (let i = 0; i < targets.length; i++) if (i !== centre) expect(targets[i]).toBeLessThan(0.5);
  });

  it('fits the anchor to the median box size, raised so the largest boxes stay reachable', () => {
    const boxes = [10, 12, 14, 16, 18].map((s) => [0, 0, 0, s, s / 2]);
    expect(fitAnchor(boxes)).toEqual([14, 7]);
    const skewed = [...Array.from({ length: 9 }, () => [0, 0, 0, 4, 4]), [0, 0, 0, 100, 4]];
    expect(fitAnchor(skewed)[0]).toBeCloseTo(100 / 3.9, 6);
  });
});
