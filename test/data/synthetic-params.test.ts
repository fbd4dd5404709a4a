import { describe, expect, it } from 'vitest';
import { parseParams } from '../../pipeline/core/params.ts';
import { resolveSynthConfig, synthParams, type SynthParams } from '../../pipeline/data/synthetic/params.ts';

const parse = (raw: Record<string, unknown>): SynthParams => parseParams(synthParams, raw, { what: 'synth' });
const resolve = (raw: Record<string, unknown>) => resolveSynthConfig(parse(raw));

function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected an error');
}

describe('synthetic params', () => {
  it('defaults to the small preset, 640×480, seed 42', () => {
    const cfg = resolve({});
    expect(cfg).toMatchObject({ seed: 42, size: 'small', images: 600, fusionRows: 20_000, width: 640, height: 480, brightness: 1, blur: 1 });
    expect(cfg.jpegQuality).toEqual([75, 95]);
    expect(cfg.toneMix).toHaveLength(6);
    expect(cfg.toneMix.every((p) => Math.abs(p - 1 / 6) < 1e-12)).toBe(true);
    expect(cfg.classPriors.every((p) => Math.abs(p - 0.1) < 1e-12)).toBe(true);
    expect(cfg.novelLesion).toBe(false);
    expect(cfg.hard).toBe(false);
  });

  it('takes CLI-style strings: presets, explicit counts, JSON mappings, booleans', () => {
    const cfg = resolve({
      seed: '7',
      size: 'tiny',
      images: '12',
      'image-width': '200',
      'tone-mix': '{"V": 1, "VI": 3}',
      'class-priors': '{"Acne": 9}',
      'jpeg-quality': '60-70',
      'fusion-shift': '{"age": 1, "smoker_Yes": -0.5}',
      'novel-lesion': 'true',
      hard: 'true',
      blur: '2',
    });
    expect(cfg).toMatchObject({ seed: 7, size: 'tiny', images: 12, fusionRows: 2_000, width: 200, height: 120, blur: 2, novelLesion: true, hard: true });
    expect(cfg.toneMix).toEqual([0, 0, 0, 0, 0.25, 0.75]);
    expect(cfg.classPriors[0]).toBeCloseTo(0.5);
    expect(cfg.classPriors[1]).toBeCloseTo(1 / 18);
    expect(cfg.jpegQuality).toEqual([60, 70]);
    expect(cfg.fusionShift).toEqual({ age: 1, smoker_Yes: -0.5 });
    expect(resolve({ 'jpeg-quality': '85' }).jpegQuality).toEqual([85, 85]);
  });

  it('rejects a bad preset and out-of-range numbers through the param specs', () => {
    expect(errorOf(() => parse({ size: 'huge' })).message).toMatch(/`size` must be one of .*tiny.*small/);
    expect(errorOf(() => parse({ brightness: 0 })).message).toMatch(/brightness.*≥ 0.05/);
    expect(errorOf(() => parse({ 'image-width': 10 })).message).toMatch(/image-width.*≥ 64/);
    expect(errorOf(() => parse({ sizee: 'tiny' })).message).toMatch(/unknown param `sizee`.*size/);
  });

  it('rejects bad mapping keys and values, naming the param, the key and the known names', () => {
    const tone = errorOf(() => resolve({ 'tone-mix': { VII: 1 } }));
    expect(tone.name).toBe('ConfigurationError');
    expect(tone.message).toMatch(/tone-mix.*unknown key `VII`.*known: I, II, III, IV, V, VI/);
    expect(errorOf(() => resolve({ 'class-priors': { Acnee: 2 } })).message).toMatch(/did you mean `Acne`/);
    expect(errorOf(() => resolve({ 'class-priors': { Acne: -1 } })).message).toMatch(/weight of `Acne` must be a number ≥ 0/);
    expect(errorOf(() => resolve({ 'tone-mix': { I: 0 } })).message).toMatch(/at least one positive weight/);
    expect(errorOf(() => resolve({ 'fusion-shift': { tr_p0: 1 } })).message).toMatch(/`tr_p0` is a model score/);
    expect(errorOf(() => resolve({ 'fusion-shift': { agee: 1 } })).message).toMatch(/did you mean `age`/);
    expect(errorOf(() => resolve({ 'fusion-shift': { age: 'x' } })).message).toMatch(/value of `age` must be a number/);
    expect(errorOf(() => resolve({ 'fusion-shift': { age: 9 } })).message).toMatch(/within ±5/);
  });

  it('rejects malformed JPEG qualities', () => {
    for (const bad of ['abc', '101', '90-60', '0', '50-']) {
      expect(errorOf(() => resolve({ 'jpeg-quality': bad })).message, bad).toMatch(/jpeg-quality/);
    }
  });

  it('reports every bad field at once', () => {
    const error = errorOf(() => resolve({ 'tone-mix': { X: 1 }, 'jpeg-quality': 'q', 'fusion-shift': { nope: 1 } }));
    expect(error.message).toMatch(/3 problems/);
    expect(error.message).toMatch(/tone-mix/);
    expect(error.message).toMatch(/jpeg-quality/);
    expect(error.message).toMatch(/fusion-shift/);
  });
});
