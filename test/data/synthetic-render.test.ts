import { describe, expect, it } from 'vitest';
import { parseParams } from '../../pipeline/core/params.ts';
import { resolveSynthConfig, synthParams, type SynthConfig } from '../../pipeline/data/synthetic/params.ts';
import { drawPrimitive, planImage, renderImage, type Box, type ImagePlan } from '../../pipeline/data/synthetic/render.ts';

const config = (raw: Record<string, unknown>): SynthConfig =>
  resolveSynthConfig(parseParams(synthParams, { size: 'tiny', ...raw }, { what: 'synth' }));
const plans = (cfg: SynthConfig, n: number): ImagePlan[] => Array.from({ length: n }, (_, i) => planImage(cfg, i));

/** Bounding rectangle and count of the pixels that differ between two renderings. */
function diff(a: Uint8ClampedArray, b: Uint8ClampedArray, W: number): { box: Box; count: number; outside: (box: Box[]) => number } {
  const changed: number[] = [];
  for (let i = 0; i < a.length; i += 3) if (a[i] !== b[i] || a[i + 1] !== b[i + 1] || a[i + 2] !== b[i + 2]) changed.push(i / 3);
  const box: Box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const p of changed) {
    const x = p % W;
    const y = Math.floor(p / W);
    box[0] = Math.min(box[0], x);
    box[1] = Math.min(box[1], y);
    box[2] = Math.max(box[2], x + 1);
    box[3] = Math.max(box[3], y + 1);
  }
  const inside = (p: number, b: Box): boolean => {
    const x = p % W;
    const y = Math.floor(p / W);
    return x >= b[0] && x < b[2] && y >= b[1] && y < b[3];
  };
  return { box, count: changed.length, outside: (boxes) => changed.filter((p) => !boxes.some((b) => inside(p, b))).length };
}

function meanOf(pixels: Uint8ClampedArray): number {
  let s = 0;
  for (const v of pixels) s += v;
  return s / pixels.length;
}

describe('synthetic image rendering', () => {
  it('draws each lesion exactly inside its box, and fills most of it', () => {
    for (const cfg of [config({ 'image-width': 320, 'image-height': 240 }), config({ 'image-width': 320, 'image-height': 240, hard: true, seed: 5 })]) {
      let lesions = 0;
      for (const plan of plans(cfg, 12)) {
        const base = renderImage(plan, { lesions: false, finish: false });
        for (const lesion of plan.lesions) {
          const one = base.slice();
          for (const p of lesion.primitives) drawPrimitive(one, plan.width, p);
          const d = diff(base, one, plan.width);
          const [x0, y0, x1, y1] = lesion.box;
          expect(d.count, `class ${lesion.cls} drew nothing`).toBeGreaterThan(0);
          expect(d.outside([lesion.box])).toBe(0);
          expect(x0 >= 0 && y0 >= 0 && x1 <= plan.width && y1 <= plan.height && x1 > x0 && y1 > y0).toBe(true);
          expect((d.box[2] - d.box[0]) / (x1 - x0), `class ${lesion.cls} width`).toBeGreaterThan(0.5);
          expect((d.box[3] - d.box[1]) / (y1 - y0), `class ${lesion.cls} height`).toBeGreaterThan(0.5);
          lesions++;
        }
        // All lesions together change nothing outside the union of their boxes.
        const full = renderImage(plan, { finish: false });
        expect(diff(base, full, plan.width).outside(plan.lesions.map((l) => l.box))).toBe(0);
      }
      expect(lesions).toBeGreaterThan(15);
    }
  });

  it('same seed and index give the same pixels; another seed does not', () => {
    const a = renderImage(planImage(config({ seed: 1 }), 3));
    const b = renderImage(planImage(config({ seed: 1 }), 3));
    const c = renderImage(planImage(config({ seed: 2 }), 3));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(a).equals(Buffer.from(c))).toBe(false);
  });

  it('brightness scales the scene', () => {
    const normal = plans(config({}), 12).map((p) => meanOf(renderImage(p)));
    const dark = plans(config({ brightness: 0.6 }), 12).map((p) => meanOf(renderImage(p)));
    const ratio = dark.reduce((a, b) => a + b) / normal.reduce((a, b) => a + b);
    expect(ratio).toBeGreaterThan(0.5);
    expect(ratio).toBeLessThan(0.7);
    expect(plans(config({ brightness: 0.6 }), 12).every((p, i) => Math.abs(p.lighting / plans(config({}), 12)[i]!.lighting - 0.6) < 1e-3)).toBe(true);
  });

  it('tone-mix picks the Fitzpatrick tones, rendered from light to dark', () => {
    const faceMean = (plan: ImagePlan): number => {
      const buf = renderImage(plan, { lesions: false, finish: false });
      const { cx, cy } = plan.scene.face;
      const p = (Math.round(cy + 0.3 * plan.scene.face.ry) * plan.width + Math.round(cx - 0.4 * plan.scene.face.rx)) * 3;
      return (buf[p]! + buf[p + 1]! + buf[p + 2]!) / 3;
    };
    const dark = plans(config({ 'tone-mix': { VI: 1 } }), 20);
    const light = plans(config({ 'tone-mix': { I: 1 } }), 20);
    expect(dark.every((p) => p.tone === 5)).toBe(true);
    expect(light.every((p) => p.tone === 0)).toBe(true);
    expect(Math.max(...dark.map(faceMean))).toBeLessThan(Math.min(...light.map(faceMean)) - 80);
    const mixed = plans(config({ 'tone-mix': { II: 1, V: 1 } }), 40);
    expect(new Set(mixed.map((p) => p.tone))).toEqual(new Set([1, 4]));
  });

  it('blur and jpeg-quality set each image\'s sigma and quality', () => {
    const base = plans(config({ 'image-width': 640, 'image-height': 480 }), 20);
    const soft = plans(config({ 'image-width': 640, 'image-height': 480, blur: 2 }), 20);
    base.forEach((p, i) => {
      if (p.blur > 0) expect(soft[i]!.blur / p.blur).toBeCloseTo(2, 2);
    });
    expect(base.filter((p) => p.blur > 0).length).toBeGreaterThan(10);
    expect(plans(config({ blur: 0 }), 20).every((p) => p.blur === 0)).toBe(true);
    expect(plans(config({ 'jpeg-quality': '40' }), 10).every((p) => p.quality === 40)).toBe(true);
    const ranged = plans(config({ 'jpeg-quality': '60-62' }), 30).map((p) => p.quality);
    expect(new Set(ranged)).toEqual(new Set([60, 61, 62]));
  });

  it('class-priors restricts and reweights the lesion classes', () => {
    const only = plans(config({ 'class-priors': { Acne: 1, Blackheads: 0, 'Dark-Spots': 0, 'Dry-Skin': 0, 'Englarged-Pores': 0, Eyebags: 0, 'Oily-Skin': 0, 'Skin-Redness': 0, Whiteheads: 0, Wrinkles: 0 } }), 20);
    const classes = only.flatMap((p) => p.lesions.map((l) => l.cls));
    expect(classes.length).toBeGreaterThan(20);
    expect(new Set(classes)).toEqual(new Set([0]));
    const heavy = plans(config({ 'class-priors': { Wrinkles: 9 } }), 40).flatMap((p) => p.lesions.map((l) => l.cls));
    const share = heavy.filter((c) => c === 9).length / heavy.length;
    expect(share).toBeGreaterThan(0.35);
  });

  it('novel-lesion draws an unlabelled style outside every box', () => {
    const cfg = config({ 'novel-lesion': true, 'image-width': 320, 'image-height': 240 });
    const withNovel = plans(cfg, 20).filter((p) => p.novel.length > 0);
    expect(withNovel.length).toBeGreaterThan(4);
    expect(plans(config({}), 20).every((p) => p.novel.length === 0)).toBe(true);
    let unlabelled = 0;
    for (const plan of withNovel) {
      const base = renderImage(plan, { lesions: false, finish: false });
      const full = renderImage(plan, { finish: false });
      unlabelled += diff(base, full, plan.width).outside(plan.lesions.map((l) => l.box));
      // The labelled lesions are the same as without the knob.
      const plain = planImage(config({ 'image-width': 320, 'image-height': 240 }), plan.index);
      expect(plan.lesions.map((l) => l.box)).toEqual(plain.lesions.map((l) => l.box));
    }
    expect(unlabelled).toBeGreaterThan(50);
  });

  it('hard means more lesions, more blur, overlaps and more lighting spread', () => {
    const easy = plans(config({ 'image-width': 640, 'image-height': 480 }), 60);
    const hard = plans(config({ 'image-width': 640, 'image-height': 480, hard: true }), 60);
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    expect(mean(hard.map((p) => p.lesions.length))).toBeGreaterThan(mean(easy.map((p) => p.lesions.length)) + 1);
    expect(mean(hard.map((p) => p.blur))).toBeGreaterThan(2 * mean(easy.map((p) => p.blur)));
    const overlaps = (p: ImagePlan): boolean =>
      p.lesions.some((a, i) => p.lesions.some((b, j) => j > i && a.box[0] < b.box[2] && b.box[0] < a.box[2] && a.box[1] < b.box[3] && b.box[1] < a.box[3]));
    expect(hard.filter(overlaps).length).toBeGreaterThan(5);
    expect(easy.filter(overlaps).length).toBe(0);
    const spread = (ps: ImagePlan[]): number => Math.max(...ps.map((p) => p.lighting)) - Math.min(...ps.map((p) => p.lighting));
    expect(spread(hard)).toBeGreaterThan(spread(easy));
  });

  it('shows the skin type in texture (Dry) and sheen (Oily)', () => {
    const cfg = config({ 'image-width': 320, 'image-height': 240, 'tone-mix': { III: 1 }, 'class-priors': { Acne: 1 } });
    const stats = { roughness: [[], [], []] as number[][], shine: [[], [], []] as number[][] };
    for (const plan of plans(cfg, 45)) {
      const buf = renderImage({ ...plan, lesions: [] }, { finish: false });
      const { cx, cy, rx, ry } = plan.scene.face;
      const lum = (x: number, y: number): number => {
        const p = (y * plan.width + x) * 3;
        return (buf[p]! + buf[p + 1]! + buf[p + 2]!) / 3;
      };
      let rough = 0;
      let shiny = 0;
      let n = 0;
      const skin = (plan.scene.skin[0] + plan.scene.skin[1] + plan.scene.skin[2]) / 3;
      // Cheek and forehead windows away from the eyes and mouth.
      for (const [wx, wy] of [[cx - 0.55 * rx, cy + 0.1 * ry], [cx + 0.45 * rx, cy + 0.1 * ry], [cx - 0.15 * rx, cy - 0.55 * ry]] as const) {
        for (let y = Math.round(wy); y < Math.round(wy + 0.2 * ry); y++) {
          for (let x = Math.round(wx); x < Math.round(wx + 0.2 * rx); x++) {
            rough += Math.abs(lum(x, y) - lum(x + 1, y));
            if (lum(x, y) > skin + 25) shiny++;
            n++;
          }
        }
      }
      stats.roughness[plan.skinType]!.push(rough / n);
      stats.shine[plan.skinType]!.push(shiny / n);
    }
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const [dryRough, normalRough] = stats.roughness.map(mean) as [number, number, number];
    const [, normalShine, oilyShine] = stats.shine.map(mean) as [number, number, number];
    expect(stats.roughness.every((xs) => xs.length > 5)).toBe(true);
    expect(dryRough).toBeGreaterThan(1.5 * normalRough);
    expect(oilyShine).toBeGreaterThan(normalShine + 0.03);
  });
});

