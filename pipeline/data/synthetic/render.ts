// Procedural face-trouble images: a face-like scene in a Fitzpatrick skin tone, skin type shown
// in texture and sheen, lesions of the 10 detector classes with exact boxes, lighting and blur.
// Planning (every random choice) is separate from rasterising, so a test can render the same
// image with and without its lesions and check that the boxes hold every changed pixel.

import { pixelNoise, Rng } from './rng.ts';
import type { SynthConfig } from './params.ts';

export type Rgb = readonly [number, number, number];

/** Pixel rectangle: x0, y0 inclusive; x1, y1 exclusive. */
export type Box = [number, number, number, number];

type Mode = 'mix' | 'mul';

/** A drawing primitive with the exact pixel rectangle it may touch. */
export type Primitive =
  | { kind: 'disc'; x: number; y: number; r: number; color: Rgb; alpha: number; mode: Mode; bounds: Box }
  | {
      kind: 'blob';
      x: number;
      y: number;
      rx: number;
      ry: number;
      angle: number;
      color: Rgb;
      alpha: number;
      mode: Mode;
      flat: boolean;
      bounds: Box;
    }
  | { kind: 'line'; points: [number, number][]; width: number; color: Rgb; alpha: number; mode: Mode; bounds: Box }
  | {
      kind: 'speckle';
      x: number;
      y: number;
      rx: number;
      ry: number;
      density: number;
      seed: number;
      color: Rgb;
      alpha: number;
      mode: Mode;
      bounds: Box;
    }
  | { kind: 'ring'; x: number; y: number; r: number; width: number; color: Rgb; alpha: number; mode: Mode; bounds: Box };

export interface PlannedLesion {
  cls: number;
  box: Box;
  primitives: Primitive[];
}

export interface Scene {
  skin: Rgb;
  background: [Rgb, Rgb];
  hair: Rgb;
  face: { cx: number; cy: number; rx: number; ry: number };
  /** Texture: low-frequency and fine amplitudes, desaturation, flake density. */
  texture: { low: number; fine: number; cell: number; desaturate: number; saturate: number; flakes: number };
  noiseSeed: number;
  light: { gain: number; strength: number; angle: number; tint: Rgb };
  /** Unlabelled face features and skin-type sheen, drawn before the lesions. */
  features: Primitive[];
}

export interface ImagePlan {
  index: number;
  width: number;
  height: number;
  tone: number;
  skinType: number;
  /** Global brightness multiplier of the scene (the `lighting` metadata). */
  lighting: number;
  /** Gaussian blur sigma in pixels actually applied (0: none). */
  blur: number;
  quality: number;
  scene: Scene;
  lesions: PlannedLesion[];
  /** Unlabelled lesions of the novel style. */
  novel: Primitive[][];
}

/** Base skin colours of Fitzpatrick I–VI (sRGB), lightest to darkest. */
export const TONE_RGB: readonly Rgb[] = [
  [246, 222, 205],
  [232, 195, 165],
  [208, 160, 125],
  [170, 120, 85],
  [120, 80, 55],
  [70, 47, 35],
];

const BACKGROUNDS: readonly Rgb[] = [
  [200, 205, 212],
  [222, 214, 198],
  [92, 100, 112],
  [178, 190, 168],
  [62, 62, 68],
  [232, 232, 234],
  [150, 132, 120],
];
const HAIR: readonly Rgb[] = [
  [28, 21, 17],
  [55, 38, 25],
  [96, 64, 40],
  [150, 110, 70],
  [204, 172, 122],
  [20, 20, 22],
  [120, 118, 115],
];
const IRIS: readonly Rgb[] = [
  [70, 45, 30],
  [52, 82, 112],
  [62, 92, 62],
  [32, 26, 22],
];

const LESION_COUNT_WEIGHTS = [0.08, 0.22, 0.25, 0.2, 0.15, 0.1];
const HARD_LESION_COUNT_WEIGHTS = [0.04, 0.08, 0.11, 0.13, 0.14, 0.13, 0.12, 0.1, 0.08, 0.07];

/** Every random choice of image `index`, from the seed alone: the same plan on every machine. */
export function planImage(cfg: SynthConfig, index: number): ImagePlan {
  const rng = new Rng(cfg.seed, 0x1a6e, index);
  const W = cfg.width;
  const H = cfg.height;
  const m = Math.min(W, H);
  const hard = cfg.hard;

  const tone = rng.pick(cfg.toneMix);
  const skinType = rng.int(3);
  const jitter = hard ? 0.075 : 0.03;
  const shade = 1 + jitter * rng.normal();
  const base = TONE_RGB[tone]!;
  const skin: Rgb = [
    clampByte(base[0] * shade * (1 + 0.4 * jitter * rng.normal())),
    clampByte(base[1] * shade * (1 + 0.4 * jitter * rng.normal())),
    clampByte(base[2] * shade * (1 + 0.4 * jitter * rng.normal())),
  ];
  const bg = BACKGROUNDS[rng.int(BACKGROUNDS.length)]!;
  const bgFactor = rng.range(0.7, 0.95);
  const face = {
    cx: W / 2 + rng.normal() * 0.03 * W,
    cy: H * 0.54 + rng.normal() * 0.02 * H,
    rx: m * rng.range(0.36, 0.42),
    ry: m * rng.range(0.45, 0.5),
  };
  const u = face.ry / 230;

  const texture =
    skinType === 0
      ? { low: 0.09, fine: 0.05, cell: 9 * u, desaturate: 0.18, saturate: 0, flakes: 0.025 }
      : skinType === 1
        ? { low: 0.035, fine: 0.025, cell: 14 * u, desaturate: 0, saturate: 0, flakes: 0 }
        : { low: 0.02, fine: 0.015, cell: 16 * u, desaturate: 0, saturate: 0.12, flakes: 0 };
  texture.cell = Math.max(3, texture.cell);

  const gain = (hard ? rng.range(0.7, 1.25) : rng.range(0.85, 1.1)) * cfg.brightness;
  const strength = (hard ? rng.range(0.1, 0.45) : rng.range(0, 0.25)) * (skinType === 0 ? 0.6 : 1);
  const tintSpread = hard ? 0.05 : 0.015;
  const light = {
    gain,
    strength,
    angle: rng.range(0, 2 * Math.PI),
    tint: [1 + tintSpread * rng.normal(), 1 + tintSpread * rng.normal(), 1 + tintSpread * rng.normal()] as Rgb,
  };

  const scene: Scene = {
    skin,
    background: [bg, [bg[0] * bgFactor, bg[1] * bgFactor, bg[2] * bgFactor]],
    hair: HAIR[rng.int(HAIR.length)]!,
    face,
    texture,
    noiseSeed: rng.next() | 0,
    light,
    features: [],
  };

  // Face features: eyes, brows, mouth, nose shadow. Their boxes are kept out of lesion placement.
  const eyeY = face.cy - 0.12 * face.ry;
  const eyeDx = 0.4 * face.rx;
  const eyeRx = 0.17 * face.rx;
  const eyeRy = 0.065 * face.ry;
  const iris = IRIS[rng.int(IRIS.length)]!;
  const eyes = [face.cx - eyeDx, face.cx + eyeDx].map((x) => ({ x, y: eyeY + rng.normal() * u }));
  const forbidden: Box[] = [];
  for (const eye of eyes) {
    scene.features.push(blob(eye.x, eye.y, eyeRx, eyeRy, 0, [240, 238, 232], 0.95, 'mix', true, W, H));
    scene.features.push(disc(eye.x, eye.y, eyeRy * 0.85, iris, 0.95, 'mix', W, H));
    scene.features.push(disc(eye.x, eye.y, eyeRy * 0.4, [12, 10, 10], 0.95, 'mix', W, H));
    const by = eye.y - 0.11 * face.ry;
    scene.features.push(
      line(
        [
          [eye.x - eyeRx * 1.1, by + 3 * u],
          [eye.x, by - 2 * u],
          [eye.x + eyeRx * 1.1, by + 2 * u],
        ],
        Math.max(1.5, 6 * u),
        scene.hair,
        0.85,
        'mix',
        W,
        H,
      ),
    );
    forbidden.push(grow([eye.x - eyeRx, by - 6 * u, eye.x + eyeRx, eye.y + eyeRy], 2 * u));
  }
  const mouthY = face.cy + 0.52 * face.ry;
  const lips: Rgb = [skin[0] * 0.78, skin[1] * 0.5, skin[2] * 0.52];
  scene.features.push(blob(face.cx, mouthY, 0.3 * face.rx, 0.07 * face.ry, 0, lips, 0.9, 'mix', true, W, H));
  forbidden.push(grow([face.cx - 0.3 * face.rx, mouthY - 0.07 * face.ry, face.cx + 0.3 * face.rx, mouthY + 0.07 * face.ry], 2 * u));
  scene.features.push(
    line(
      [
        [face.cx + 0.04 * face.rx, eyeY + 0.05 * face.ry],
        [face.cx + 0.07 * face.rx, face.cy + 0.22 * face.ry],
        [face.cx - 0.03 * face.rx, face.cy + 0.27 * face.ry],
      ],
      Math.max(1, 4 * u),
      [0.85, 0.82, 0.82],
      0.7,
      'mul',
      W,
      H,
    ),
  );
  if (skinType === 2) {
    // Oily skin: broad specular highlights on the T-zone and cheeks.
    const spots: [number, number][] = [
      [face.cx, face.cy - 0.5 * face.ry],
      [face.cx + 0.05 * face.rx, face.cy + 0.12 * face.ry],
      [face.cx - 0.5 * face.rx, face.cy + 0.15 * face.ry],
      [face.cx + 0.5 * face.rx, face.cy + 0.15 * face.ry],
    ];
    for (const [x, y] of spots) {
      scene.features.push(
        blob(x + rng.normal() * 4 * u, y + rng.normal() * 4 * u, rng.range(22, 40) * u, rng.range(14, 26) * u, rng.range(-0.5, 0.5), [255, 252, 245], rng.range(0.35, 0.55), 'mix', false, W, H),
      );
    }
  }

  // Lesions.
  const lrng = new Rng(cfg.seed, 0x1e51, index);
  const count = lrng.pick(hard ? HARD_LESION_COUNT_WEIGHTS : LESION_COUNT_WEIGHTS);
  const lesions: PlannedLesion[] = [];
  const ctx: LesionContext = { rng: lrng, W, H, u: u * (hard ? lrng.range(0.6, 1) : 1), face, eyes, eyeRx, eyeRy, skin };
  const usedEyes = new Set<number>();
  for (let n = 0; n < count; n++) {
    const cls = lrng.pick(cfg.classPriors);
    for (let attempt = 0; attempt < 25; attempt++) {
      let eye = -1;
      if (cls === 5) {
        eye = lrng.int(2);
        if (usedEyes.has(eye)) eye = 1 - eye;
        if (usedEyes.has(eye)) break;
      }
      const near = hard && lesions.length > 0 && lrng.chance(0.5) ? lesions[lrng.int(lesions.length)]! : undefined;
      const primitives = LESIONS[cls]!(ctx, eye, near?.box);
      const box = union(primitives.map((p) => p.bounds));
      if (box[2] - box[0] < 1 || box[3] - box[1] < 1) continue;
      if (cls !== 5 && cls !== 9 && forbidden.some((f) => intersects(f, box))) continue;
      if (!near && lesions.some((l) => intersects(grow(l.box, 2), box))) continue;
      if (cls === 5) usedEyes.add(eye);
      lesions.push({ cls, box, primitives });
      break;
    }
  }

  const novel: Primitive[][] = [];
  if (cfg.novelLesion && lrng.chance(0.5)) {
    const k = 1 + lrng.int(3);
    for (let n = 0; n < k; n++) {
      const [x, y] = inFace(ctx, 0.75);
      const r = Math.max(2.5, lrng.range(7, 14) * ctx.u);
      const width = Math.max(1.2, lrng.range(2, 3) * ctx.u);
      novel.push([
        ring(x, y, r, width, [122, 56, 176], 0.85, W, H),
        disc(x, y, Math.max(0.8, r * 0.25), [150, 90, 200], 0.8, 'mix', W, H),
      ]);
    }
  }

  const blurBase = hard ? rng.range(0.6, 2.2) : rng.range(0.25, 0.9);
  const sigma = round3(blurBase * (m / 480) * cfg.blur);
  const [qlo, qhi] = cfg.jpegQuality;
  return {
    index,
    width: W,
    height: H,
    tone,
    skinType,
    lighting: round4(gain),
    blur: sigma >= 0.3 ? sigma : 0,
    quality: qlo + rng.int(qhi - qlo + 1),
    scene,
    lesions,
    novel,
  };
}

interface LesionContext {
  rng: Rng;
  W: number;
  H: number;
  /** Pixels per unit: a face 230 units tall. */
  u: number;
  face: { cx: number; cy: number; rx: number; ry: number };
  eyes: { x: number; y: number }[];
  eyeRx: number;
  eyeRy: number;
  skin: Rgb;
}

/** A uniform point inside the face ellipse scaled by `scale`. */
function inFace(ctx: LesionContext, scale: number): [number, number] {
  const a = ctx.rng.range(0, 2 * Math.PI);
  const r = Math.sqrt(ctx.rng.float()) * scale;
  return [ctx.face.cx + r * ctx.face.rx * Math.cos(a), ctx.face.cy + r * ctx.face.ry * Math.sin(a)];
}

/** Centre for a lesion: in the face, or (hard preset) overlapping the box `near`. */
function centre(ctx: LesionContext, near: Box | undefined): [number, number] {
  if (!near) return inFace(ctx, 0.8);
  return [ctx.rng.range(near[0], near[2]), ctx.rng.range(near[1], near[3])];
}

type LesionRecipe = (ctx: LesionContext, eye: number, near: Box | undefined) => Primitive[];

const LESIONS: readonly LesionRecipe[] = [
  // 0 Acne: raised red papule with an inflamed halo.
  (ctx, _eye, near) => {
    const { rng, u, W, H } = ctx;
    const [x, y] = centre(ctx, near);
    const r = Math.max(1.5, rng.range(4, 8) * u);
    return [
      blob(x, y, r * 1.9, r * 1.9, 0, [222, 92, 92], 0.4, 'mix', false, W, H),
      disc(x, y, r, [186, 34, 40], 0.78, 'mix', W, H),
      disc(x - r * 0.3, y - r * 0.3, Math.max(0.6, r * 0.3), [255, 210, 210], 0.35, 'mix', W, H),
    ];
  },
  // 1 Blackheads: a cluster of small dark comedones.
  (ctx, _eye, near) => {
    const { rng, u, W, H } = ctx;
    const [x, y] = centre(ctx, near);
    const R = Math.max(3, rng.range(8, 16) * u);
    const n = rng.intRange(3, 8);
    const out: Primitive[] = [];
    for (let i = 0; i < n; i++) {
      const a = rng.range(0, 2 * Math.PI);
      const d = Math.sqrt(rng.float()) * R;
      out.push(disc(x + d * Math.cos(a), y + d * Math.sin(a), Math.max(0.8, rng.range(1.2, 2.4) * u), [24, 17, 13], 0.92, 'mix', W, H));
    }
    return out;
  },
  // 2 Dark-Spots: flat brown macule of two or three merged ellipses.
  (ctx, _eye, near) => {
    const { rng, u, W, H } = ctx;
    const [x, y] = centre(ctx, near);
    const r = Math.max(2, rng.range(7, 15) * u);
    const out: Primitive[] = [blob(x, y, r, r * rng.range(0.7, 1), rng.range(0, Math.PI), [0.6, 0.5, 0.42], 0.85, 'mul', true, W, H)];
    const extra = rng.intRange(1, 2);
    for (let i = 0; i < extra; i++) {
      out.push(
        blob(x + rng.range(-0.6, 0.6) * r, y + rng.range(-0.6, 0.6) * r, r * rng.range(0.5, 0.8), r * rng.range(0.4, 0.7), rng.range(0, Math.PI), [0.62, 0.52, 0.44], 0.8, 'mul', true, W, H),
      );
    }
    return out;
  },
  // 3 Dry-Skin: pale, desaturated flaky patch with fine cracks.
  (ctx, _eye, near) => {
    const { rng, u, W, H, skin } = ctx;
    const [x, y] = centre(ctx, near);
    const rx = Math.max(4, rng.range(20, 38) * u);
    const ry = rx * rng.range(0.5, 0.85);
    const grey = (skin[0] + skin[1] + skin[2]) / 3;
    const pale: Rgb = [Math.min(255, grey * 1.15 + 20), Math.min(255, grey * 1.13 + 20), Math.min(255, grey * 1.1 + 20)];
    const out: Primitive[] = [
      blob(x, y, rx, ry, 0, pale, 0.45, 'mix', false, W, H),
      speckle(x, y, rx * 0.9, ry * 0.9, 0.24, rng.next() | 0, [242, 238, 230], 0.65, W, H),
    ];
    const cracks = rng.intRange(2, 4);
    for (let i = 0; i < cracks; i++) {
      const x0 = x + rng.range(-0.6, 0.2) * rx;
      const y0 = y + rng.range(-0.5, 0.5) * ry;
      const len = rng.range(0.3, 0.6) * rx;
      const a = rng.range(-0.6, 0.6);
      out.push(
        line(
          [
            [x0, y0],
            [x0 + len * 0.5 * Math.cos(a), y0 + len * 0.5 * Math.sin(a) + rng.normal() * u],
            [x0 + len * Math.cos(a), y0 + len * Math.sin(a)],
          ],
          Math.max(0.8, 1.1 * u),
          [0.72, 0.7, 0.7],
          0.8,
          'mul',
          W,
          H,
        ),
      );
    }
    return out;
  },
  // 4 Englarged-Pores: a patch of regularly spaced dark pores.
  (ctx, _eye, near) => {
    const { rng, u, W, H } = ctx;
    const [x, y] = centre(ctx, near);
    const w = Math.max(6, rng.range(24, 42) * u);
    const h = w * rng.range(0.6, 1);
    const step = Math.max(2.5, rng.range(4.5, 6.5) * u);
    const out: Primitive[] = [];
    for (let py = y - h / 2; py <= y + h / 2; py += step) {
      for (let px = x - w / 2; px <= x + w / 2; px += step) {
        const jx = px + rng.normal() * 0.18 * step;
        const jy = py + rng.normal() * 0.18 * step;
        out.push(disc(jx, jy, Math.max(0.7, rng.range(1, 1.6) * u), [0.58, 0.52, 0.52], 0.9, 'mul', W, H));
      }
    }
    return out;
  },
  // 5 Eyebags: dark, slightly violet shading below one eye, with a lower fold.
  (ctx, eye) => {
    const { rng, u, W, H, eyeRx, eyeRy } = ctx;
    const e = ctx.eyes[eye < 0 ? 0 : eye]!;
    const y = e.y + eyeRy * 1.9 + 3 * u;
    const rx = eyeRx * rng.range(1.1, 1.35);
    const ry = Math.max(2, rng.range(7, 11) * u);
    return [
      blob(e.x, y, rx, ry, 0, [0.68, 0.6, 0.7], 0.8, 'mul', false, W, H),
      line(
        [
          [e.x - rx * 0.8, y + ry * 0.2],
          [e.x, y + ry * 0.85],
          [e.x + rx * 0.8, y + ry * 0.2],
        ],
        Math.max(0.8, 1.4 * u),
        [0.72, 0.66, 0.7],
        0.7,
        'mul',
        W,
        H,
      ),
    ];
  },
  // 6 Oily-Skin: a glossy, slightly yellow sheen patch with sharp glints.
  (ctx, _eye, near) => {
    const { rng, u, W, H } = ctx;
    const [x, y] = centre(ctx, near);
    const rx = Math.max(4, rng.range(16, 30) * u);
    const ry = rx * rng.range(0.6, 1);
    const out: Primitive[] = [blob(x, y, rx, ry, rng.range(0, Math.PI), [255, 236, 176], 0.55, 'mix', false, W, H)];
    const glints = rng.intRange(4, 9);
    for (let i = 0; i < glints; i++) {
      const a = rng.range(0, 2 * Math.PI);
      const d = Math.sqrt(rng.float()) * 0.6;
      out.push(disc(x + d * rx * Math.cos(a), y + d * ry * Math.sin(a), Math.max(0.8, rng.range(1, 2) * u), [255, 255, 255], 0.9, 'mix', W, H));
    }
    return out;
  },
  // 7 Skin-Redness: wide, diffuse erythema.
  (ctx, _eye, near) => {
    const { rng, u, W, H } = ctx;
    const [x, y] = centre(ctx, near);
    const rx = Math.max(6, rng.range(28, 52) * u);
    return [blob(x, y, rx, rx * rng.range(0.5, 0.85), rng.range(-0.4, 0.4), [208, 44, 54], rng.range(0.38, 0.52), 'mix', false, W, H)];
  },
  // 8 Whiteheads: small white papule with a pink rim.
  (ctx, _eye, near) => {
    const { rng, u, W, H } = ctx;
    const [x, y] = centre(ctx, near);
    const r = Math.max(1.3, rng.range(2.5, 5) * u);
    return [blob(x, y, r * 1.7, r * 1.7, 0, [226, 150, 140], 0.35, 'mix', false, W, H), disc(x, y, r, [249, 245, 232], 0.92, 'mix', W, H)];
  },
  // 9 Wrinkles: parallel forehead lines or crow's feet at an eye corner.
  (ctx, _eye, near) => {
    const { rng, u, W, H, face } = ctx;
    const width = Math.max(0.9, rng.range(1.2, 2) * u);
    const out: Primitive[] = [];
    if (rng.chance(0.55) || near) {
      const [x, y] = near
        ? centre(ctx, near)
        : [face.cx + rng.normal() * 0.1 * face.rx, face.cy - rng.range(0.5, 0.68) * face.ry];
      const n = rng.intRange(2, 4);
      const len = rng.range(50, 90) * u;
      const gap = Math.max(2.5, rng.range(6, 10) * u);
      const bend = rng.range(2, 6) * u;
      for (let i = 0; i < n; i++) {
        const ly = y + (i - (n - 1) / 2) * gap;
        const pts: [number, number][] = [
          [x - len / 2, ly + bend],
          [x, ly],
          [x + len / 2, ly + bend],
        ];
        out.push(line(pts, width, [0.6, 0.55, 0.55], 0.85, 'mul', W, H));
      }
    } else {
      const side = rng.int(2);
      const e = ctx.eyes[side]!;
      const sx = e.x + (side === 0 ? -1 : 1) * (ctx.eyeRx + 3 * u);
      const dir = side === 0 ? -1 : 1;
      const len = rng.range(18, 30) * u;
      for (const a of [-0.45, 0, 0.45]) {
        const ang = a + rng.normal() * 0.08;
        out.push(
          line(
            [
              [sx, e.y + a * 4 * u],
              [sx + dir * len * Math.cos(ang), e.y + len * Math.sin(ang)],
            ],
            width,
            [0.6, 0.55, 0.55],
            0.85,
            'mul',
            W,
            H,
          ),
        );
      }
    }
    return out;
  },
];

// Primitive constructors: bounds are whole pixels, clamped to the image, and rasterising never
// writes outside them.

function clampBox(x0: number, y0: number, x1: number, y1: number, W: number, H: number): Box {
  const clamp = (v: number, hi: number): number => (v < 0 ? 0 : v > hi ? hi : v);
  return [clamp(Math.floor(x0), W), clamp(Math.floor(y0), H), clamp(Math.ceil(x1), W), clamp(Math.ceil(y1), H)];
}

function isEmpty(b: Box): boolean {
  return b[2] <= b[0] || b[3] <= b[1];
}

function disc(x: number, y: number, r: number, color: Rgb, alpha: number, mode: Mode, W: number, H: number): Primitive {
  return { kind: 'disc', x, y, r, color, alpha, mode, bounds: clampBox(x - r - 0.5, y - r - 0.5, x + r + 0.5, y + r + 0.5, W, H) };
}

function blob(x: number, y: number, rx: number, ry: number, angle: number, color: Rgb, alpha: number, mode: Mode, flat: boolean, W: number, H: number): Primitive {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  const hw = Math.sqrt((rx * c) ** 2 + (ry * s) ** 2) + 0.5;
  const hh = Math.sqrt((rx * s) ** 2 + (ry * c) ** 2) + 0.5;
  return { kind: 'blob', x, y, rx, ry, angle, color, alpha, mode, flat, bounds: clampBox(x - hw, y - hh, x + hw, y + hh, W, H) };
}

function line(points: [number, number][], width: number, color: Rgb, alpha: number, mode: Mode, W: number, H: number): Primitive {
  const pad = width / 2 + 0.5;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return {
    kind: 'line',
    points,
    width,
    color,
    alpha,
    mode,
    bounds: clampBox(Math.min(...xs) - pad, Math.min(...ys) - pad, Math.max(...xs) + pad, Math.max(...ys) + pad, W, H),
  };
}

function speckle(x: number, y: number, rx: number, ry: number, density: number, seed: number, color: Rgb, alpha: number, W: number, H: number): Primitive {
  return { kind: 'speckle', x, y, rx, ry, density, seed, color, alpha, mode: 'mix', bounds: clampBox(x - rx, y - ry, x + rx, y + ry, W, H) };
}

function ring(x: number, y: number, r: number, width: number, color: Rgb, alpha: number, W: number, H: number): Primitive {
  const R = r + width / 2 + 0.5;
  return { kind: 'ring', x, y, r, width, color, alpha, mode: 'mix', bounds: clampBox(x - R, y - R, x + R, y + R, W, H) };
}

function union(boxes: Box[]): Box {
  const out: Box = [Infinity, Infinity, -Infinity, -Infinity];
  for (const b of boxes) {
    if (isEmpty(b)) continue;
    out[0] = Math.min(out[0], b[0]);
    out[1] = Math.min(out[1], b[1]);
    out[2] = Math.max(out[2], b[2]);
    out[3] = Math.max(out[3], b[3]);
  }
  return out;
}

function intersects(a: Box, b: Box): boolean {
  return a[0] < b[2] && b[0] < a[2] && a[1] < b[3] && b[1] < a[3];
}

function grow(b: Box | [number, number, number, number], d: number): Box {
  return [b[0] - d, b[1] - d, b[2] + d, b[3] + d];
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

function round4(x: number): number {
  return Math.round(x * 10000) / 10000;
}

// Rasterising.

/**
 * Render a plan into raw RGB bytes (row-major, 3 channels), before blur (`plan.blur` is applied
 * by the encoder, off the main thread). `lesions: false` leaves out the labelled and novel
 * lesions (tests compare both renderings); `finish: false` also skips the lighting pass.
 */
export function renderImage(plan: ImagePlan, options: { lesions?: boolean; finish?: boolean } = {}): Uint8ClampedArray {
  const W = plan.width;
  const H = plan.height;
  const buf = new Uint8ClampedArray(W * H * 3);
  drawBase(buf, plan);
  for (const p of plan.scene.features) drawPrimitive(buf, W, p);
  if (options.lesions !== false) {
    for (const lesion of plan.lesions) for (const p of lesion.primitives) drawPrimitive(buf, W, p);
    for (const novel of plan.novel) for (const p of novel) drawPrimitive(buf, W, p);
  }
  if (options.finish !== false) applyLight(buf, plan);
  return buf;
}

/** A fixed tile of hash noise: a table lookup per pixel is far cheaper than a hash. */
const TILE = 1024;
let noiseTile: Uint8Array | undefined;
function tile(): Uint8Array {
  if (!noiseTile) {
    noiseTile = new Uint8Array(TILE * TILE);
    for (let y = 0; y < TILE; y++) for (let x = 0; x < TILE; x++) noiseTile[y * TILE + x] = Math.floor(pixelNoise(x, y, 0x5eed) * 256);
  }
  return noiseTile;
}

function drawBase(buf: Uint8ClampedArray, plan: ImagePlan): void {
  const W = plan.width;
  const H = plan.height;
  const { skin, background, hair, face, texture, noiseSeed } = plan.scene;
  const [bgTop, bgBottom] = background;
  const invRx2 = 1 / (face.rx * face.rx);
  const invRy2 = 1 / (face.ry * face.ry);
  const hairRx = face.rx * 1.12;
  const hairRy = face.ry * 1.06;
  const hairCy = face.cy - 0.06 * face.ry;
  const neckHalf = 0.48 * face.rx;
  const neckTop = face.cy + 0.6 * face.ry;
  // Low-frequency value noise on a coarse grid, interpolated bilinearly.
  const cell = texture.cell;
  const gw = Math.ceil(W / cell) + 2;
  const gh = Math.ceil(H / cell) + 2;
  const grid = new Float32Array(gw * gh);
  for (let i = 0; i < grid.length; i++) grid[i] = pixelNoise(i % gw, Math.floor(i / gw), noiseSeed ^ 0x51ab) - 0.5;
  const lum = (skin[0] + skin[1] + skin[2]) / 3;
  const sr = skin[0] + (lum - skin[0]) * texture.desaturate - (lum - skin[0]) * texture.saturate;
  const sg = skin[1] + (lum - skin[1]) * texture.desaturate - (lum - skin[1]) * texture.saturate;
  const sb = skin[2] + (lum - skin[2]) * texture.desaturate - (lum - skin[2]) * texture.saturate;
  // Per-column cell index and fraction, computed once instead of per pixel.
  const cellX = new Int32Array(W);
  const fracX = new Float64Array(W);
  for (let x = 0; x < W; x++) {
    const gx = (x + 0.5) / cell;
    cellX[x] = Math.floor(gx);
    fracX[x] = gx - Math.floor(gx);
  }
  const column = new Float64Array(gw);
  const noise = tile();
  const mask = TILE - 1;
  const ox = noiseSeed & mask;
  const oy = (noiseSeed >>> 10) & mask;
  // Flakes read the same tile far from the texture's window; `flakes` becomes a byte threshold.
  const fox = (ox + 517) & mask;
  const foy = (oy + 389) & mask;
  const flakeLimit = Math.round(texture.flakes * 256);

  let p = 0;
  for (let y = 0; y < H; y++) {
    const py = y + 0.5;
    const dy = py - face.cy;
    const dy2 = dy * dy * invRy2;
    const hy = (py - hairCy) / hairRy;
    const gy = py / cell;
    const gy0 = Math.floor(gy);
    const fy = gy - gy0;
    // The coarse grid interpolated vertically for this row; per pixel only the horizontal step.
    for (let i = 0, top = gy0 * gw; i < gw; i++) column[i] = grid[top + i]! + (grid[top + gw + i]! - grid[top + i]!) * fy;
    const bgT = y / H;
    const bgR = bgTop[0] + (bgBottom[0] - bgTop[0]) * bgT;
    const bgG = bgTop[1] + (bgBottom[1] - bgTop[1]) * bgT;
    const bgB = bgTop[2] + (bgBottom[2] - bgTop[2]) * bgT;
    const noiseRow = ((y + oy) & mask) * TILE;
    const flakeRow = ((y + foy) & mask) * TILE;
    for (let x = 0; x < W; x++, p += 3) {
      const px = x + 0.5;
      const dx = px - face.cx;
      const d2 = dx * dx * invRx2 + dy2;
      const fine = noise[noiseRow + ((x + ox) & mask)]! / 256 - 0.5;
      if (d2 <= 1 || (py >= neckTop && dx > -neckHalf && dx < neckHalf)) {
        const gx0 = cellX[x]!;
        const low = column[gx0]! + (column[gx0 + 1]! - column[gx0]!) * fracX[x]!;
        // Rounded shading toward the face's edge, darker neck.
        const shade = d2 <= 1 ? 1 - 0.2 * d2 * d2 : 0.82;
        let k = shade * (1 + texture.low * low * 2 + texture.fine * fine * 2);
        let r = sr * k;
        let g = sg * k;
        let b = sb * k;
        if (noise[flakeRow + ((x + fox) & mask)]! < flakeLimit) {
          r += (236 - r) * 0.4;
          g += (230 - g) * 0.4;
          b += (222 - b) * 0.4;
        }
        if (d2 > 1 && d2 < 1.08) {
          // Soft jaw edge against the neck.
          k = 0.9;
          r *= k;
          g *= k;
          b *= k;
        }
        buf[p] = r;
        buf[p + 1] = g;
        buf[p + 2] = b;
      } else {
        const hx = dx / hairRx;
        if (py < face.cy && hx * hx + hy * hy <= 1) {
          const k = 1 + 0.12 * fine;
          buf[p] = hair[0] * k;
          buf[p + 1] = hair[1] * k;
          buf[p + 2] = hair[2] * k;
        } else {
          const k = 1 + 0.03 * fine;
          buf[p] = bgR * k;
          buf[p + 1] = bgG * k;
          buf[p + 2] = bgB * k;
        }
      }
    }
  }
}

/** Rasterise one primitive; it writes only inside `prim.bounds`. */
export function drawPrimitive(buf: Uint8ClampedArray, W: number, prim: Primitive): void {
  const [x0, y0, x1, y1] = prim.bounds;
  const [cr, cg, cb] = prim.color;
  const mul = prim.mode === 'mul';
  const cos = prim.kind === 'blob' ? Math.cos(prim.angle) : 1;
  const sin = prim.kind === 'blob' ? Math.sin(prim.angle) : 0;
  const blend = (p: number, w: number): void => {
    if (w <= 0) return;
    const a = w * prim.alpha;
    if (mul) {
      buf[p] = buf[p]! * (1 + (cr - 1) * a);
      buf[p + 1] = buf[p + 1]! * (1 + (cg - 1) * a);
      buf[p + 2] = buf[p + 2]! * (1 + (cb - 1) * a);
    } else {
      buf[p] = buf[p]! + (cr - buf[p]!) * a;
      buf[p + 1] = buf[p + 1]! + (cg - buf[p + 1]!) * a;
      buf[p + 2] = buf[p + 2]! + (cb - buf[p + 2]!) * a;
    }
  };
  for (let y = y0; y < y1; y++) {
    const py = y + 0.5;
    for (let x = x0; x < x1; x++) {
      const px = x + 0.5;
      const p = (y * W + x) * 3;
      switch (prim.kind) {
        case 'disc': {
          const d = Math.hypot(px - prim.x, py - prim.y);
          blend(p, Math.min(1, prim.r - d + 0.5));
          break;
        }
        case 'ring': {
          const d = Math.hypot(px - prim.x, py - prim.y);
          blend(p, Math.min(1, prim.width / 2 - Math.abs(d - prim.r) + 0.5));
          break;
        }
        case 'blob': {
          const dx = px - prim.x;
          const dy = py - prim.y;
          const u = (dx * cos + dy * sin) / prim.rx;
          const v = (-dx * sin + dy * cos) / prim.ry;
          const t = u * u + v * v;
          if (t >= 1) break;
          blend(p, prim.flat ? Math.min(1, (1 - Math.sqrt(t)) * Math.min(prim.rx, prim.ry) * 0.5) : 1 - t);
          break;
        }
        case 'line': {
          let best = Infinity;
          const pts = prim.points;
          for (let i = 0; i + 1 < pts.length; i++) {
            const [ax, ay] = pts[i]!;
            const [bx, by] = pts[i + 1]!;
            const ex = bx - ax;
            const ey = by - ay;
            const len2 = ex * ex + ey * ey;
            const t = len2 > 0 ? Math.max(0, Math.min(1, ((px - ax) * ex + (py - ay) * ey) / len2)) : 0;
            best = Math.min(best, Math.hypot(px - ax - t * ex, py - ay - t * ey));
          }
          blend(p, Math.min(1, prim.width / 2 - best + 0.5));
          break;
        }
        case 'speckle': {
          const u = (px - prim.x) / prim.rx;
          const v = (py - prim.y) / prim.ry;
          if (u * u + v * v < 1 && pixelNoise(x, y, prim.seed) < prim.density) blend(p, 1);
          break;
        }
      }
    }
  }
}

/** Directional lighting: a linear gain gradient with a slight colour cast. */
function applyLight(buf: Uint8ClampedArray, plan: ImagePlan): void {
  const W = plan.width;
  const H = plan.height;
  const { gain, strength, angle, tint } = plan.scene.light;
  const cx = Math.cos(angle) * strength * 2;
  const cy = Math.sin(angle) * strength * 2;
  const colGain = new Float64Array(W);
  for (let x = 0; x < W; x++) colGain[x] = cx * ((x + 0.5) / W - 0.5);
  let p = 0;
  for (let y = 0; y < H; y++) {
    const rowGain = cy * ((y + 0.5) / H - 0.5);
    for (let x = 0; x < W; x++, p += 3) {
      const g = gain * (1 + rowGain + colGain[x]!);
      buf[p] = buf[p]! * g * tint[0];
      buf[p + 1] = buf[p + 1]! * g * tint[1];
      buf[p + 2] = buf[p + 2]! * g * tint[2];
    }
  }
}
