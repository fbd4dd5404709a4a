// Params of the synthetic Skin-Twin generator (CLI `skintwin synth` flags and the `synthetic`
// source of fetch-dataset), the size presets, and their resolution into one checked config.

import { ConfigurationError } from '../../core/errors.ts';
import type { ParamSpecs, ParamsOf } from '../../core/params.ts';
import { nearest } from '../../core/suggest.ts';
import { FEATURES } from '../fusion/schema.ts';

/** Detector classes 0–9, in the original's order and spelling. */
export const DETECTOR_CLASSES = [
  'Acne',
  'Blackheads',
  'Dark-Spots',
  'Dry-Skin',
  'Englarged-Pores',
  'Eyebags',
  'Oily-Skin',
  'Skin-Redness',
  'Whiteheads',
  'Wrinkles',
] as const;

export const SKIN_TYPES = ['Dry', 'Normal', 'Oily'] as const;

/** Fitzpatrick skin tones, lightest to darkest. */
export const SKIN_TONES = ['I', 'II', 'III', 'IV', 'V', 'VI'] as const;

export const SIZE_PRESETS = {
  /** For tests: a couple of seconds. */
  tiny: { images: 40, fusionRows: 2_000, width: 160, height: 120 },
  /** The default of `npm start`: the whole pipeline in a few minutes on 2 cores. */
  small: { images: 600, fusionRows: 20_000, width: 640, height: 480 },
  medium: { images: 5_000, fusionRows: 100_000, width: 640, height: 480 },
  large: { images: 100_000, fusionRows: 1_000_000, width: 640, height: 480 },
} as const;

export type SizePreset = keyof typeof SIZE_PRESETS;

/** Fusion features whose mean `fusion-shift` can move (model scores are left to the image knobs). */
export const SHIFTABLE_FEATURES: readonly string[] = FEATURES.filter((f) => !/^(tr|sk)_p\d$/.test(f));

export const synthParams = {
  seed: { type: 'integer', description: 'Seed of every random choice: same seed and params, same bytes', default: 42 },
  size: {
    type: 'string',
    description: 'Size preset: tiny (40 images 160×120, 2,000 rows), small (600 images, 20,000 rows), medium (5,000 / 100,000), large (100,000 / 1,000,000)',
    choices: Object.keys(SIZE_PRESETS),
    default: 'small',
  },
  images: { type: 'integer', description: "Number of images (overrides the size preset's)", min: 0, max: 10_000_000 },
  'fusion-rows': { type: 'integer', description: "Number of fusion table rows (overrides the size preset's)", min: 0, max: 100_000_000 },
  'image-width': { type: 'integer', description: "Image width in pixels (default: the preset's, 640; tiny: 160)", min: 64, max: 4096 },
  'image-height': { type: 'integer', description: "Image height in pixels (default: the preset's, 480; tiny: 120)", min: 48, max: 4096 },
  'tone-mix': {
    type: 'mapping',
    description: 'Relative weights of the Fitzpatrick tones I–VI, e.g. {"V": 1, "VI": 3}; tones left out get 0 (default: all equal)',
  },
  brightness: { type: 'number', description: 'Multiplier on scene brightness (0.6 = darker photos)', default: 1, min: 0.05, max: 4 },
  blur: { type: 'number', description: 'Multiplier on the per-image blur sigma (0 = no blur, 2 = twice as soft)', default: 1, min: 0, max: 20 },
  'jpeg-quality': { type: 'string', description: 'JPEG quality per image: a value (`85`) or a range drawn uniformly (`60-95`)', default: '75-95' },
  'class-priors': {
    type: 'mapping',
    description: 'Relative weights of the 10 lesion classes, e.g. {"Acne": 5, "Wrinkles": 0}; classes left out keep weight 1',
  },
  'novel-lesion': {
    type: 'boolean',
    description: 'Also draw an unlabelled lesion style no class describes (violet rings), on about half the images',
    default: false,
  },
  'fusion-shift': {
    type: 'mapping',
    description: 'Fusion feature → shift of its mean in reference standard deviations, e.g. {"age": 1, "smoker_Yes": -0.5}',
  },
  hard: {
    type: 'boolean',
    description: 'Harder images: more blur, more tone and lighting variety, more, smaller and overlapping lesions',
    default: false,
  },
} as const satisfies ParamSpecs;

export type SynthParams = ParamsOf<typeof synthParams>;

/** Everything the generator needs, checked and normalised. Written to synthetic.json. */
export interface SynthConfig {
  seed: number;
  size: SizePreset;
  images: number;
  fusionRows: number;
  width: number;
  height: number;
  /** Probabilities of tones I–VI (sum 1). */
  toneMix: number[];
  brightness: number;
  blur: number;
  jpegQuality: [number, number];
  /** Probabilities of the 10 classes (sum 1). */
  classPriors: number[];
  novelLesion: boolean;
  /** Feature → shift in reference stds. */
  fusionShift: Record<string, number>;
  hard: boolean;
}

/**
 * Check and normalise params. Every bad field is reported at once as a ConfigurationError
 * naming the param (and the bad key inside a mapping).
 */
export function resolveSynthConfig(params: SynthParams): SynthConfig {
  const errors: ConfigurationError[] = [];
  const fail = (field: string, message: string, hint?: string): void => {
    errors.push(new ConfigurationError(`synthetic: param \`${field}\` ${message}`, hint ? { field, hint } : { field }));
  };

  const size = params.size as SizePreset;
  const preset = SIZE_PRESETS[size];
  if (!preset) fail('size', `must be one of ${Object.keys(SIZE_PRESETS).join(', ')}, got \`${String(params.size)}\``);
  const base = preset ?? SIZE_PRESETS.small;

  const toneMix = weights('tone-mix', params['tone-mix'], SKIN_TONES, 0, fail) ?? SKIN_TONES.map(() => 1 / SKIN_TONES.length);
  const classPriors =
    weights('class-priors', params['class-priors'], DETECTOR_CLASSES, 1, fail) ?? DETECTOR_CLASSES.map(() => 1 / DETECTOR_CLASSES.length);

  let jpegQuality: [number, number] = [75, 95];
  const quality = String(params['jpeg-quality']).trim();
  const match = /^(\d{1,3})(?:\s*(?:-|\.\.)\s*(\d{1,3}))?$/.exec(quality);
  if (!match) fail('jpeg-quality', `must be a quality (\`85\`) or a range (\`60-95\`), got \`${quality}\``);
  else {
    const lo = Number(match[1]);
    const hi = match[2] === undefined ? lo : Number(match[2]);
    if (lo < 1 || hi > 100 || lo > hi) fail('jpeg-quality', `must lie within 1–100 with low ≤ high, got \`${quality}\``);
    else jpegQuality = [lo, hi];
  }

  const fusionShift: Record<string, number> = {};
  for (const [key, raw] of Object.entries(params['fusion-shift'] ?? {})) {
    const value = Number(raw);
    if (!SHIFTABLE_FEATURES.includes(key)) {
      const close = nearest(key, SHIFTABLE_FEATURES);
      const why = FEATURES.includes(key) ? 'is a model score and cannot be shifted' : 'is not a fusion feature';
      fail('fusion-shift', `key \`${key}\` ${why}`, `${close ? `did you mean \`${close}\`? ` : ''}shiftable: ${SHIFTABLE_FEATURES.join(', ')}`);
    } else if (raw.trim() === '' || !Number.isFinite(value) || Math.abs(value) > 5) {
      fail('fusion-shift', `value of \`${key}\` must be a number of standard deviations within ±5, got \`${raw}\``);
    } else fusionShift[key] = value;
  }

  if (errors.length) throw ConfigurationError.all(errors);
  return {
    seed: params.seed,
    size,
    images: params.images ?? base.images,
    fusionRows: params['fusion-rows'] ?? base.fusionRows,
    width: params['image-width'] ?? base.width,
    height: params['image-height'] ?? base.height,
    toneMix,
    brightness: params.brightness,
    blur: params.blur,
    jpegQuality,
    classPriors,
    novelLesion: params['novel-lesion'],
    fusionShift,
    hard: params.hard,
  };
}

/** Parse a `name → weight` mapping into probabilities over `names`; undefined when absent. */
function weights(
  field: string,
  raw: Readonly<Record<string, string>> | undefined,
  names: readonly string[],
  missing: number,
  fail: (field: string, message: string, hint?: string) => void,
): number[] | undefined {
  if (raw === undefined) return undefined;
  const out = names.map(() => missing);
  let ok = true;
  for (const [key, text] of Object.entries(raw)) {
    const i = names.indexOf(key);
    const value = Number(text);
    if (i < 0) {
      const close = nearest(key, names);
      fail(field, `has unknown key \`${key}\``, `${close ? `did you mean \`${close}\`? ` : ''}known: ${names.join(', ')}`);
      ok = false;
    } else if (text.trim() === '' || !Number.isFinite(value) || value < 0) {
      fail(field, `weight of \`${key}\` must be a number ≥ 0, got \`${text}\``);
      ok = false;
    } else out[i] = value;
  }
  const total = out.reduce((a, b) => a + b, 0);
  if (ok && !(total > 0)) fail(field, 'must give at least one positive weight');
  if (!ok || !(total > 0)) return undefined;
  return out.map((w) => w / total);
}
