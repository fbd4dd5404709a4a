// The embedded default dataset: `synthesize` writes a synthetic Skin-Twin dataset (YOLO export of
// face-trouble images, per-image metadata, fusion table) deterministically from a seed, streaming
// so that 10⁵ images and 10⁶ rows run in bounded memory.

import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigurationError, InterruptedError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import { writeJsonAtomic } from '../../core/fs.ts';
import { writeFusionCsv } from './fusion.ts';
import { DETECTOR_CLASSES, resolveSynthConfig, SKIN_TONES, SKIN_TYPES, type SynthConfig, type SynthParams } from './params.ts';
import { planImage, renderImage, type ImagePlan } from './render.ts';
import { hashInts } from './rng.ts';

export { synthParams, resolveSynthConfig, DETECTOR_CLASSES, SKIN_TONES, SKIN_TYPES, SIZE_PRESETS } from './params.ts';
export type { SynthConfig, SynthParams } from './params.ts';

export const SPLITS = ['train', 'valid', 'test'] as const;
export type Split = (typeof SPLITS)[number];

export interface SynthSummary {
  images: number;
  width: number;
  height: number;
  imagesBySplit: Record<Split, number>;
  /** Labelled lesions drawn, by class name. */
  lesionsByClass: Record<string, number>;
  imagesByTone: Record<string, number>;
  imagesBySkinType: Record<string, number>;
  imagesWithoutLesions: number;
  /** Unlabelled lesions of the novel style (only with `novel-lesion`). */
  novelLesions: number;
  fusionRows: number;
  /** Fusion rows whose detector scores are all zero. */
  fusionNoDetection: number;
  fusionNoDetectionFraction: number;
}

/** Files written at the dataset root besides the split folders. */
export const SYNTH_FILES = { dataYaml: 'data.yaml', metadata: 'metadata.jsonl', fusion: 'fusion.csv', params: 'synthetic.json' } as const;

/** Encodes kept in flight while the next image is drawn: the JPEG work runs on libuv threads. */
const IN_FLIGHT = 3;

/** The export folder of image `index` (70/15/15 by a seeded hash, as a YOLO export would be). */
export function splitOf(seed: number, index: number): Split {
  const u = hashInts(seed, 0x5b117, index) / 4294967296;
  return u < 0.7 ? 'train' : u < 0.85 ? 'valid' : 'test';
}

export function imageId(index: number): string {
  return `synth-${String(index).padStart(6, '0')}`;
}

/** JPEG options fixed for byte-identical output (baseline, no mozjpeg extras, Huffman optimised). */
export function jpegOptions(quality: number) {
  return {
    quality,
    progressive: false,
    chromaSubsampling: '4:2:0',
    optimiseCoding: true,
    mozjpeg: false,
    trellisQuantisation: false,
    overshootDeringing: false,
    optimiseScans: false,
    quantisationTable: 0,
  } as const;
}

/** YOLO label lines `cls cx cy w h`, normalised to 0..1. */
export function labelLines(plan: ImagePlan): string {
  return plan.lesions
    .map(({ cls, box: [x0, y0, x1, y1] }) =>
      [cls, (x0 + x1) / 2 / plan.width, (y0 + y1) / 2 / plan.height, (x1 - x0) / plan.width, (y1 - y0) / plan.height]
        .map((v, i) => (i === 0 ? String(v) : v.toFixed(6)))
        .join(' '),
    )
    .map((l) => l + '\n')
    .join('');
}

function dataYaml(): string {
  return [
    '# Synthetic Skin-Twin dataset, Ultralytics YOLO export layout',
    'path: .',
    'train: train/images',
    'val: valid/images',
    'test: test/images',
    `nc: ${DETECTOR_CLASSES.length}`,
    `names: [${DETECTOR_CLASSES.map((n) => `'${n}'`).join(', ')}]`,
    '',
  ].join('\n');
}

/**
 * Generate the dataset into `outDir` (created if missing, must be empty). Same seed and params
 * give byte-identical files. Throws ConfigurationError for bad params, InterruptedError when
 * `io.signal` aborts.
 */
export async function synthesize(outDir: string, params: SynthParams, io: { logger: Logger; signal?: AbortSignal }): Promise<SynthSummary> {
  const cfg = resolveSynthConfig(params);
  await mkdir(outDir, { recursive: true });
  const existing = await readdir(outDir);
  if (existing.length) {
    throw new ConfigurationError(`synthetic: output directory ${outDir} is not empty (${existing.slice(0, 3).join(', ')}${existing.length > 3 ? ', …' : ''})`, {
      hint: 'choose a new or empty directory',
    });
  }
  for (const split of SPLITS) {
    await mkdir(join(outDir, split, 'images'), { recursive: true });
    await mkdir(join(outDir, split, 'labels'), { recursive: true });
  }
  await writeFile(join(outDir, SYNTH_FILES.dataYaml), dataYaml());
  io.logger.info(
    `synthetic: ${cfg.images} images ${cfg.width}×${cfg.height}, ${cfg.fusionRows} fusion rows, seed ${cfg.seed}` +
      (cfg.hard ? ', hard' : '') +
      (cfg.novelLesion ? ', novel lesion' : ''),
  );

  const summary: SynthSummary = {
    images: cfg.images,
    width: cfg.width,
    height: cfg.height,
    imagesBySplit: { train: 0, valid: 0, test: 0 },
    lesionsByClass: Object.fromEntries(DETECTOR_CLASSES.map((c) => [c, 0])),
    imagesByTone: Object.fromEntries(SKIN_TONES.map((t) => [t, 0])),
    imagesBySkinType: Object.fromEntries(SKIN_TYPES.map((t) => [t, 0])),
    imagesWithoutLesions: 0,
    novelLesions: 0,
    fusionRows: 0,
    fusionNoDetection: 0,
    fusionNoDetectionFraction: 0,
  };

  await writeImages(outDir, cfg, summary, io);

  const rowsProgress = io.logger.progress('synthetic fusion rows', cfg.fusionRows, 'rows');
  const fusion = await writeFusionCsv(join(outDir, SYNTH_FILES.fusion), cfg.fusionRows, cfg.seed, cfg.fusionShift, {
    signal: io.signal,
    onRows: (n) => rowsProgress.tick(n),
  });
  rowsProgress.done();
  summary.fusionRows = fusion.rows;
  summary.fusionNoDetection = fusion.noDetection;
  summary.fusionNoDetectionFraction = Math.round(fusion.noDetectionFraction * 1e6) / 1e6;

  await writeJsonAtomic(join(outDir, SYNTH_FILES.params), { generator: 'skintwin-synthetic', version: 1, params: effectiveParams(cfg), summary });
  return summary;
}

/** The params as they took effect, in the flag names, with weights normalised. */
export function effectiveParams(cfg: SynthConfig): Record<string, unknown> {
  const round = (x: number): number => Math.round(x * 1e6) / 1e6;
  return {
    seed: cfg.seed,
    size: cfg.size,
    images: cfg.images,
    'fusion-rows': cfg.fusionRows,
    'image-width': cfg.width,
    'image-height': cfg.height,
    'tone-mix': Object.fromEntries(SKIN_TONES.map((t, i) => [t, round(cfg.toneMix[i]!)])),
    brightness: cfg.brightness,
    blur: cfg.blur,
    'jpeg-quality': cfg.jpegQuality,
    'class-priors': Object.fromEntries(DETECTOR_CLASSES.map((c, i) => [c, round(cfg.classPriors[i]!)])),
    'novel-lesion': cfg.novelLesion,
    'fusion-shift': cfg.fusionShift,
    hard: cfg.hard,
  };
}

interface Written {
  plan: ImagePlan;
  split: Split;
  file: string;
}

async function writeImages(outDir: string, cfg: SynthConfig, summary: SynthSummary, io: { logger: Logger; signal?: AbortSignal }): Promise<void> {
  const { default: sharp } = await import('sharp');
  const metadata = createWriteStream(join(outDir, SYNTH_FILES.metadata), { encoding: 'utf8' });
  const streamFailed = new Promise<never>((_, reject) => metadata.once('error', reject));
  streamFailed.catch(() => undefined);
  const progress = io.logger.progress('synthetic images', cfg.images, 'images');
  const inFlight: Promise<Written>[] = [];

  const encode = async (plan: ImagePlan, pixels: Uint8ClampedArray): Promise<Written> => {
    const split = splitOf(cfg.seed, plan.index);
    const id = imageId(plan.index);
    const file = `${split}/images/${id}.jpg`;
    let image = sharp(Buffer.from(pixels.buffer, pixels.byteOffset, pixels.byteLength), {
      raw: { width: plan.width, height: plan.height, channels: 3 },
    });
    // Blur runs in libvips on a worker thread, in parallel with drawing the next image.
    if (plan.blur > 0) image = image.blur(plan.blur);
    const jpeg = await image.jpeg(jpegOptions(plan.quality)).toBuffer();
    await writeFile(join(outDir, file), jpeg);
    await writeFile(join(outDir, split, 'labels', `${id}.txt`), labelLines(plan));
    return { plan, split, file };
  };

  const record = async ({ plan, split, file }: Written): Promise<void> => {
    summary.imagesBySplit[split]++;
    summary.imagesByTone[SKIN_TONES[plan.tone]!]!++;
    summary.imagesBySkinType[SKIN_TYPES[plan.skinType]!]!++;
    for (const lesion of plan.lesions) summary.lesionsByClass[DETECTOR_CLASSES[lesion.cls]!]!++;
    if (!plan.lesions.length) summary.imagesWithoutLesions++;
    summary.novelLesions += plan.novel.length;
    const line = JSON.stringify({
      id: imageId(plan.index),
      file,
      skin_type: SKIN_TYPES[plan.skinType],
      skin_tone: SKIN_TONES[plan.tone],
      lighting: plan.lighting,
      blur: plan.blur,
      jpeg_quality: plan.quality,
      width: plan.width,
      height: plan.height,
      source: 'synthetic',
    });
    if (!metadata.write(line + '\n')) await Promise.race([once(metadata, 'drain'), streamFailed]);
    progress.tick();
  };

  try {
    for (let i = 0; i < cfg.images; i++) {
      if (io.signal?.aborted) throw new InterruptedError('synthetic dataset generation interrupted');
      const plan = planImage(cfg, i);
      const task = encode(plan, renderImage(plan));
      task.catch(() => undefined);
      inFlight.push(task);
      // Records in index order keep metadata.jsonl ordered; the oldest encode is usually done.
      while (inFlight.length >= IN_FLIGHT) await record(await inFlight.shift()!);
    }
    while (inFlight.length) await record(await inFlight.shift()!);
    metadata.end();
    await Promise.race([once(metadata, 'finish'), streamFailed]);
  } catch (error) {
    await Promise.allSettled(inFlight);
    metadata.destroy();
    throw error;
  } finally {
    progress.done();
  }
}
