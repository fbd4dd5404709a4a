import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildDerivedFusion, derivedCategoryMap } from '../../pipeline/data/fusion/derived.ts';
import { FEATURES } from '../../pipeline/data/fusion/schema.ts';
import { analyseImages, bucketsFromScores, contextFeatures, severityOf } from '../../pipeline/inference/chain.ts';
import { DETECTOR_CLASS_NAMES, openModel, type OpenedModel } from '../../pipeline/inference/engine.ts';
import { RecordingLogger } from '../support/logger.ts';
import { detectorBias, detectorModel, saveWithCard, skinTypeModel, tabularSoftmaxModel } from './models.ts';

const CLASSES = [...DETECTOR_CLASS_NAMES];
/** Scores with the given values at the named classes, 0 elsewhere. */
function scores(values: Partial<Record<(typeof DETECTOR_CLASS_NAMES)[number], number>>): number[] {
  return CLASSES.map((c) => values[c as keyof typeof values] ?? 0);
}

describe('buckets', () => {
  it('takes the max over a bucket\'s classes, not the last one', () => {
    // Blackheads (index 1) 0.7, Whiteheads (index 8, after it) 0.2: the original would report 0.2.
    const b = bucketsFromScores(scores({ Acne: 0.05, Blackheads: 0.7, Whiteheads: 0.2 }), CLASSES);
    expect(b.acne).toEqual({ detected: true, severity: 'MODERATE', confidence: 0.7 });
  });

  it('puts the severity boundaries at exactly 0.8 and 0.6 (strictly above) and detection at exactly 0.1', () => {
    const b = bucketsFromScores(scores({ Acne: 0.8, Wrinkles: 0.6, 'Dark-Spots': 0.1, 'Skin-Redness': 0.09999 }), CLASSES);
    expect(b).toEqual({
      acne: { detected: true, severity: 'MODERATE', confidence: 0.8 },
      wrinkles: { detected: true, severity: 'LOW', confidence: 0.6 },
      dark_spots: { detected: true, severity: 'LOW', confidence: 0.1 },
      redness: { detected: false, severity: 'NONE', confidence: 0 },
    });
    const above = bucketsFromScores(scores({ Whiteheads: 0.8000001, Wrinkles: 0.6000001 }), CLASSES);
    expect(above.acne.severity).toBe('HIGH');
    expect(above.wrinkles.severity).toBe('MODERATE');
    expect([severityOf(1), severityOf(0.81), severityOf(0.61), severityOf(0.1)]).toEqual(['HIGH', 'HIGH', 'MODERATE', 'LOW']);
  });

  it('leaves the unbucketed classes out, whatever their score', () => {
    const b = bucketsFromScores(scores({ 'Dry-Skin': 0.5, Eyebags: 0.3, 'Oily-Skin': 0.2 }), CLASSES);
    for (const k of ['acne', 'wrinkles', 'dark_spots', 'redness'] as const) expect(b[k]).toEqual({ detected: false, severity: 'NONE', confidence: 0 });
    expect(() => bucketsFromScores([0.5], CLASSES)).toThrow(/1 scores for 10 classes/);
  });
});

describe('analyseImages', () => {
  let root: string;
  const logger = new RecordingLogger();
  const models: OpenedModel[] = [];
  let png: string;
  // Context model: logits = 0.1·age on class 0, 2·gender_Male on class 1, 1·skin_type_Oily on class 2.
  const weight = new Array(FEATURES.length * 3).fill(0);
  const at = (f: string, k: number, w: number) => (weight[FEATURES.indexOf(f) * 3 + k] = w);
  at('age', 0, 0.1);
  at('gender_Male', 1, 2);
  at('skin_type_Oily', 2, 1);

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'chain-'));
    const boxes = [
      { anchor: 0, cls: 0, score: 0.3 }, // Acne
      { anchor: 1, cls: 8, score: 0.45 }, // Whiteheads
      { anchor: 2, cls: 9, score: 0.15 }, // Wrinkles
      { anchor: 3, cls: 7, score: 0.04 }, // Skin-Redness, below 0.1
    ];
    const det = await saveWithCard(join(root, 'det'), detectorModel({ size: 32, bias: detectorBias(4, boxes), anchors: 4 }), {
      task: 'object-detection', classes: CLASSES, inputName: 'images', inputShape: ['N', 3, 32, 32], outputName: 'output0', outputShape: ['N', 14, 4],
      preprocessing: { type: 'image', size: 32, resize: 'letterbox', padValue: 114, mean: [0, 0, 0], std: [1, 1, 1] },
    });
    // Logits, not probabilities: the chain applies the softmax. Oily wins.
    const sk = await saveWithCard(join(root, 'sk'), skinTypeModel({ size: 16, bias: [0.1, 0.2, 1.5], logits: true }), {
      task: 'image-classification', classes: ['Dry', 'Normal', 'Oily'], inputName: 'input', inputShape: ['N', 3, 16, 16], outputName: 'logits', outputShape: ['N', 3],
      preprocessing: { type: 'image', size: 16, resize: 'fill', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    });
    const ctx = await saveWithCard(join(root, 'ctx'), tabularSoftmaxModel({ features: FEATURES.length, classes: 3, weight, bias: [0, 0, 0] }), {
      task: 'tabular-classification', classes: [{ id: 4, name: '4' }, { id: 17, name: '17' }, { id: 33, name: '33' }], inputName: 'input',
      inputShape: ['N', FEATURES.length], outputName: 'probabilities', outputShape: ['N', 3], features: [...FEATURES],
    });
    for (const [p, d] of [[det, 'models/det/model.onnx'], [sk, 'models/sk/model.onnx'], [ctx, 'models/ctx/model.onnx']] as const) {
      models.push(await openModel(p, d, { logger, threads: 1 }));
    }
    const { default: sharp } = await import('sharp');
    png = join(root, 'face.png');
    await writeFile(png, await sharp(Buffer.alloc(30 * 20 * 3, 90), { raw: { width: 30, height: 20, channels: 3 } }).png().toBuffer());
  }, 30_000);
  afterAll(async () => {
    for (const m of models) await m.close();
    await rm(root, { recursive: true, force: true });
  });

  it('runs detector, skin type, context correction and buckets per image, with user fields or the defaults', async () => {
    const [detector, skinType, contextCorrection] = models as [OpenedModel, OpenedModel, OpenedModel];
    const images = [
      { id: 'default', path: png },
      { id: 'given', path: png, userFields: { age: 61, gender: 'Male', skin_type: 'Dry' } },
    ];
    const out = await collect(analyseImages({ detector, skinType, contextCorrection }, images, { logger, batchSize: 1 }));
    expect(out.map((r) => r.id)).toEqual(['default', 'given']);
    const [a, b] = out as [(typeof out)[0], (typeof out)[0]];
    // Per-class max confidence normalised: 0.3, 0.45, 0.15 over their sum 0.9.
    const sum = Math.fround(0.3) + Math.fround(0.45) + Math.fround(0.15);
    expect(a.troubles.Acne).toBeCloseTo(Math.fround(0.3) / sum, 9);
    expect(a.troubles.Whiteheads).toBeCloseTo(Math.fround(0.45) / sum, 9);
    expect(a.troubles['Skin-Redness']).toBe(0);
    expect(a.detected).toEqual(['Acne', 'Whiteheads', 'Wrinkles']);
    expect(a.buckets.acne).toEqual({ detected: true, severity: 'LOW', confidence: a.troubles.Whiteheads });
    expect(a.buckets.wrinkles.confidence).toBeCloseTo(Math.fround(0.15) / sum, 9);
    expect(a.buckets.dark_spots.detected).toBe(false);
    expect(a.buckets.redness).toEqual({ detected: false, severity: 'NONE', confidence: 0 });
    // Softmax of the logits [0.1, 0.2, 1.5].
    const e = [0.1, 0.2, 1.5].map((z) => Math.exp(Math.fround(z)));
    const es = e.reduce((x, y) => x + y, 0);
    expect(a.skinType.label).toBe('OILY');
    expect(a.skinType.probs.Oily).toBeCloseTo(e[2]! / es, 6);
    // Context features: the original's defaults (age 25, Female, …, alcohol No read as Low),
    // skin type the predicted one; then the given fields.
    const f = (r: typeof a, name: string) => r.context!.features[FEATURES.indexOf(name)];
    expect([f(a, 'age'), f(a, 'sleep_hours'), f(a, 'stress_level'), f(a, 'gender_Male'), f(a, 'skin_type_Oily'), f(a, 'alcohol_consumption_Low'), f(a, 'smoker_Yes')]).toEqual([25, 7, 5, 0, 1, 1, 0]);
    expect(f(a, 'tr_p8')).toBeCloseTo(a.troubles.Whiteheads!, 6);
    expect(f(a, 'sk_p2')).toBeCloseTo(a.skinType.probs.Oily!, 6);
    expect([f(b, 'age'), f(b, 'gender_Male'), f(b, 'skin_type_Oily'), f(b, 'skin_type_Dry')]).toEqual([61, 1, 0, 1]);
    // logits [2.5, 0, 1] → class id 4; [6.1, 2, 0] → class id 4, with another probability.
    expect(a.context!.classId).toBe(4);
    const pa = softmaxOf([2.5, 0, 1]);
    for (let k = 0; k < 3; k++) expect(a.context!.probs[k]).toBeCloseTo(pa[k]!, 5);
    expect(b.context!.probs[0]).toBeCloseTo(softmaxOf([6.1, 2, 0])[0]!, 5);
  });

  it('builds context rows: the row\'s fields over the run\'s over the defaults, in the model\'s feature order', () => {
    const contextCorrection = models[2]!;
    const x = contextFeatures(
      contextCorrection,
      [{ id: 'r', troubles: new Array(10).fill(0), skinProbs: [0.25, 0.25, 0.5], skinLabel: 'Oily', userFields: { smoker: 'Yes' } }],
      { userFields: { age: 40, smoker: 'No', alcohol_consumption: 'Moderate' } },
    );
    expect(x).toHaveLength(FEATURES.length);
    const f = (name: string) => x[FEATURES.indexOf(name)];
    expect([f('age'), f('smoker_Yes'), f('alcohol_consumption_Moderate'), f('alcohol_consumption_Low'), f('skin_type_Oily'), f('sk_p2'), f('tr_p0')]).toEqual([40, 1, 1, 0, 1, 0.5, 0]);
  });

  it('works without the context model, and names a bad user field', async () => {
    const [detector, skinType, contextCorrection] = models as [OpenedModel, OpenedModel, OpenedModel];
    const [r] = await collect(analyseImages({ detector, skinType }, [{ id: 'x', path: png }], { logger }));
    expect(r!.context).toBeUndefined();
    expect(r!.skinType.label).toBe('OILY');
    await expect(collect(analyseImages({ detector, skinType, contextCorrection }, [{ id: 'x', path: png }], { logger, userFields: { age: 200 } }))).rejects.toThrow(
      /user fields of image x.*age 200 is outside \[0, 120\]/,
    );
    await expect(collect(analyseImages({ detector: skinType, skinType }, [], { logger }))).rejects.toThrow(/models\/sk\/model\.onnx is not a detector/);
  });
});

function softmaxOf(z: number[]): number[] {
  const e = z.map((v) => Math.exp(v));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of items) out.push(x);
  return out;
}

describe('derived fusion through the engine', () => {
  it('refuses carded models whose classes are not the original ones in the original order', async () => {
    const root = await mkdtemp(join(tmpdir(), 'derived-classes-'));
    try {
      const { default: sharp } = await import('sharp');
      for (const [cls, v] of [['Dry', 40], ['Oily', 200]] as const) {
        await mkdir(join(root, 'data', cls), { recursive: true });
        await writeFile(join(root, 'data', cls, `${cls}.png`), await sharp(Buffer.alloc(16 * 16 * 3, v), { raw: { width: 16, height: 16, channels: 3 } }).png().toBuffer());
      }
      const det = await saveWithCard(join(root, 'det'), detectorModel({ size: 32, bias: detectorBias(2, []), anchors: 2 }), {
        task: 'object-detection', classes: CLASSES, inputName: 'images', inputShape: ['N', 3, 32, 32], outputName: 'output0', outputShape: ['N', 14, 2],
        preprocessing: { type: 'image', size: 32, resize: 'letterbox', padValue: 114, mean: [0, 0, 0], std: [1, 1, 1] },
      });
      const sk = await saveWithCard(join(root, 'sk'), skinTypeModel({ size: 16, bias: [0, 0, 0] }), {
        task: 'image-classification', classes: ['Oily', 'Normal', 'Dry'], inputName: 'input', inputShape: ['N', 3, 16, 16], outputName: 'probs', outputShape: ['N', 3],
        preprocessing: { type: 'image', size: 16, resize: 'fill', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      });
      await expect(
        buildDerivedFusion({
          datasetDir: join(root, 'data'),
          datasetDisplay: 'data',
          detector: { path: det, display: 'det/model.onnx' },
          skinType: { path: sk, display: 'sk/model.onnx' },
          confidence: 0.1,
          batchSize: 2,
          categoryMap: derivedCategoryMap({}),
          outDir: join(root, 'out'),
          logger: new RecordingLogger(),
        }),
      ).rejects.toMatchObject({ name: 'ConfigurationError', message: expect.stringMatching(/^sk\/model-card\.json: model sk\/model\.onnx has classes Oily, Normal, Dry; fusion features need Dry, Normal, Oily/) });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
