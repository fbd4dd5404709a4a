// prepare-data for image tasks (detection, classification): scan and validate every image,
// quarantine the bad ones, group near duplicates, split, preprocess once into the tensor format
// and profile the training split. Two streaming passes over the images; memory is bounded by the
// per-item records (a few hundred bytes each) and the handful of images in flight.

import { readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { DataError } from '../../core/errors.ts';
import { writeJsonAtomic } from '../../core/fs.ts';
import type { Logger } from '../../core/logger.ts';
import type { ImageStats } from '../images/hash.ts';
import { toLetterbox, yoloToPixels, LETTERBOX_PAD_VALUE } from '../images/letterbox.ts';
import { forEachPool } from '../images/pool.ts';
import { IMAGENET_MEAN, IMAGENET_STD, type PreprocessedImage } from '../images/preprocess.ts';
import { PreprocessPool, type PoolProbe } from '../images/preprocess-pool.ts';
import type { ImageNote } from '../images/probe.ts';
import { loadSharp } from '../images/sharp.ts';
import { ImageTensorWriter, type ImageIndexItem } from '../images/tensor-file.ts';
import { IMAGE_STAT_EDGES, ProfileBuilder, type ReferenceProfile } from '../profile/profile.ts';
import { evenEdges } from '../profile/sketch.ts';
import { DETECTOR_CLASSES, discoverDataset, readMetadata, SKIN_TYPES, type DatasetImage } from './discover.ts';
import { parseYoloLabels, type YoloBox } from './labels.ts';
import { checkBadFraction, imbalance, Quarantine, writeValidationReport, type ValidationReport } from './report.ts';
import { assignGroupSplits, crossSplitNearPairs, NearPairIndex, nearDuplicateGroups, SPLITS, type SplitFractions, type SplitName } from './split.ts';

export interface PrepareImagesOptions {
  task: 'detection' | 'classification';
  /** Dataset root (absolute) and how to name it in messages. */
  root: string;
  display: string;
  outDir: string;
  imageSize: number;
  fractions: SplitFractions;
  seed: number;
  maxBadFraction: number;
  /** Hamming distance of the 256-bit pHash for near duplicates; negative disables. */
  nearDuplicateDistance: number;
  labelSource: 'metadata' | 'folders';
  classes?: string[];
  minSize: number;
  strictColour: boolean;
  imbalanceRatio: number;
  /** Images in flight (default: available cores). */
  concurrency?: number;
  logger: Logger;
  signal?: AbortSignal;
}

export interface PrepareResult {
  counts: Record<SplitName, number>;
  quarantined: number;
  total: number;
  report: ValidationReport;
  profile: ReferenceProfile;
}

interface ScannedItem {
  image: DatasetImage;
  sha256: string;
  width: number;
  height: number;
  format: string;
  orientation: number;
  notes: ImageNote[];
  stats: ImageStats;
  phash: string;
  label?: number;
  boxes?: YoloBox[];
  skinTone?: string;
  source?: string;
  metaId?: string;
}

export async function prepareImages(o: PrepareImagesOptions): Promise<PrepareResult> {
  const { logger } = o;
  const concurrency = o.concurrency && o.concurrency > 0 ? o.concurrency : Math.max(2, availableParallelism());
  // Parallelism comes from several images in flight, one libvips thread each (see images/sharp.ts).
  await loadSharp({ threads: 1 });
  const dataset = await discoverDataset(o.root, o.labelSource);
  const metadata = await readMetadata(o.root, o.display);
  const classNames =
    o.classes ?? (o.task === 'detection' ? dataset.classNames ?? [...DETECTOR_CLASSES] : o.labelSource === 'folders' ? dataset.classNames ?? [] : [...SKIN_TYPES]);
  if (o.task === 'classification' && o.labelSource === 'folders' && dataset.layout !== 'class-folders') {
    throw new DataError('label-source `folders` needs class-per-folder images, but the dataset is a YOLO export', {
      file: o.display,
      field: 'label-source',
      hint: 'use label-source: metadata',
    });
  }
  const quarantine = await Quarantine.open(o.outDir);
  const scanned: (ScannedItem | undefined)[] = new Array(dataset.images.length);
  const notes: Record<string, number> = {};

  // Pass 1: read, hash, probe (decodes a thumbnail), read labels. The reading, hashing and
  // decoding run on the preprocessing threads; this pool ends before the passes in between, so
  // its threads' memory is not held while the near-duplicate search runs.
  const progress = logger.progress('validate images', dataset.images.length, 'images');
  const probes = await PreprocessPool.create(concurrency);
  await forEachPool(
    dataset.images,
    2 * probes.size,
    async (image, i) => {
      const result = await scanImage(image, probes, o, classNames, metadata);
      progress.tick();
      if ('reason' in result) await quarantine.add(result);
      else scanned[i] = result;
    },
    o.signal,
  ).finally(() => probes.close());
  progress.done();

  // Exact duplicates: the first path (sorted) stays, the others are quarantined.
  const firstBySha = new Map<string, string>();
  const items: ScannedItem[] = [];
  for (const item of scanned) {
    if (!item) continue;
    const first = firstBySha.get(item.sha256);
    if (first !== undefined) {
      await quarantine.add({ file: item.image.file, reason: 'exact-duplicate', detail: `same bytes as ${first}` });
      continue;
    }
    firstBySha.set(item.sha256, item.image.file);
    if (o.strictColour) {
      const colour = item.notes.filter((n) => n !== 'exif-orientation');
      if (colour.length) {
        await quarantine.add({ file: item.image.file, reason: colour[0]!, detail: `image is ${colour.join(', ')} (strict-colour)` });
        continue;
      }
    }
    for (const n of item.notes) notes[n] = (notes[n] ?? 0) + 1;
    items.push(item);
  }
  scanned.length = 0;
  firstBySha.clear(); // one entry per image: not kept through the passes that follow

  // Near duplicates → groups → splits, then the leakage check recomputed from the hashes.
  const phashes = items.map((i) => i.phash);
  // Packed once, searched twice: grouping now, the leakage check after the split.
  const near = new NearPairIndex(phashes, o.nearDuplicateDistance);
  const { uf, links } = nearDuplicateGroups(near, o.nearDuplicateDistance);
  const splits = assignGroupSplits(
    items.map((i) => i.sha256),
    uf,
    o.seed,
    o.fractions,
  );
  // Group sizes indexed by root: one typed array, not a map entry per item.
  const groupSizes = new Int32Array(items.length);
  for (let i = 0; i < items.length; i++) groupSizes[uf.find(i)]!++;
  const multi = Array.from(groupSizes.filter((n) => n > 1));
  const cross = crossSplitNearPairs(near, o.nearDuplicateDistance, splits);

  const strata: Record<string, Record<SplitName, number>> = {};
  const classCounts: Record<string, number> = {};
  const counts: Record<SplitName, number> = { train: 0, val: 0, test: 0 };
  items.forEach((item, i) => {
    const s = splits[i]!;
    counts[s]++;
    const stratum = stratumOf(item, classNames);
    strata[stratum] ??= { train: 0, val: 0, test: 0 };
    strata[stratum][s]++;
    if (o.task === 'classification') classCounts[classNames[item.label!]!] = (classCounts[classNames[item.label!]!] ?? 0) + 1;
    else for (const b of item.boxes ?? []) classCounts[classNames[b.cls]!] = (classCounts[classNames[b.cls]!] ?? 0) + 1;
  });

  const total = dataset.images.length;
  const report: ValidationReport = {
    version: 1,
    task: o.task,
    dataset: o.display,
    total,
    kept: items.length,
    quarantined: quarantine.count,
    badFraction: total ? quarantine.count / total : 0,
    maxBadFraction: o.maxBadFraction,
    quarantinedByReason: quarantine.byReason,
    notes,
    splits: counts,
    strata: Object.fromEntries(Object.entries(strata).sort()),
    nearDuplicates: {
      distance: o.nearDuplicateDistance,
      links,
      groups: multi.length,
      itemsInGroups: multi.reduce((a, b) => a + b, 0),
      largestGroup: multi.length ? Math.max(...multi) : 0,
      crossSplitPairs: cross,
    },
    classBalance: imbalance(classCounts, classNames, o.imbalanceRatio),
    warnings: [],
    quarantineSample: quarantine.sample,
  };
  if (cross !== 0) report.warnings.push(`${cross} near-duplicate pairs cross splits`);
  // A huge group means the threshold is matching merely similar images; it would skew the split.
  if (report.nearDuplicates.largestGroup > Math.max(10, 0.01 * items.length)) {
    report.warnings.push(
      `a near-duplicate group holds ${report.nearDuplicates.largestGroup} images: near-duplicate-distance ${o.nearDuplicateDistance} may be too loose for this data`,
    );
  }
  if (o.task === 'detection') {
    const background = items.filter((i) => !i.boxes?.length).length;
    if (background) report.warnings.push(`${background} image(s) have an empty label file (background images)`);
  }
  await quarantine.close();
  await writeValidationReport(o.outDir, report);
  for (const w of [...report.classBalance.warnings, ...report.warnings]) logger.warn(w);
  checkBadFraction(report);

  // Pass 2: preprocess once into the tensor files; rows in id order within each split.
  const rowOf = new Int32Array(items.length);
  const bySplit: Record<SplitName, number[]> = { train: [], val: [], test: [] };
  items.forEach((_, i) => bySplit[splits[i]!].push(i));
  for (const s of SPLITS) bySplit[s].forEach((itemIndex, row) => (rowOf[itemIndex] = row));
  const resize = o.task === 'detection' ? 'letterbox' : 'fill';
  const writers = {} as Record<SplitName, ImageTensorWriter>;
  // Each split's index entries as JSON text at their row: objects would hold several times the memory.
  const index: Record<SplitName, string[]> = { train: [], val: [], test: [] };
  for (const s of SPLITS) {
    writers[s] = await ImageTensorWriter.create(join(o.outDir, s), {
      split: s,
      count: bySplit[s].length,
      shape: [bySplit[s].length, o.imageSize, o.imageSize, 3],
      mean: o.task === 'classification' ? [...IMAGENET_MEAN] : [0, 0, 0],
      std: o.task === 'classification' ? [...IMAGENET_STD] : [1, 1, 1],
      resize,
      ...(resize === 'letterbox' ? { padValue: LETTERBOX_PAD_VALUE } : {}),
      task: o.task,
      classNames,
    });
  }
  const write = logger.progress('preprocess images', items.length, 'images');
  try {
    // One preprocessing thread per core, two images in flight per thread; memory in flight is a
    // few decoded images.
    const pool = await PreprocessPool.create(concurrency);
    await forEachPool(
      items.keys(),
      2 * pool.size,
      async (i) => {
        const [pre] = (await pool.preprocess(join(o.root, items[i]!.image.file), [{ size: o.imageSize, resize }])) as [PreprocessedImage];
        const item = items[i]!;
        const s = splits[i]!;
        await writers[s].writeRow(rowOf[i]!, pre.pixels);
        const g = pre.geometry;
        const entry: ImageIndexItem = {
          id: item.metaId ?? item.image.file.replace(/\.[^./]+$/, ''),
          row: rowOf[i]!,
          file: item.image.file,
          width: item.width,
          height: item.height,
          scale: g.scale,
          pad: [g.pad[0], g.pad[1]],
          sha256: item.sha256,
          ...(item.label !== undefined ? { label: item.label } : {}),
          ...(item.boxes
            ? {
                boxes: item.boxes.map((b) => {
                  const [x1, y1, x2, y2] = toLetterbox(yoloToPixels(b.cx, b.cy, b.w, b.h, item.width, item.height), g);
                  return [b.cls, x1, y1, x2, y2] as [number, number, number, number, number];
                }),
              }
            : {}),
          ...(item.skinTone !== undefined ? { skin_tone: item.skinTone } : {}),
          ...(item.source !== undefined ? { source: item.source } : {}),
        };
        index[s][rowOf[i]!] = JSON.stringify(entry);
        write.tick();
      },
      o.signal,
    ).finally(() => pool.close());
  } catch (error) {
    for (const s of SPLITS) await writers[s].abort();
    throw error;
  }
  write.done();
  for (const s of SPLITS) await writers[s].closeWithLines(index[s]);

  const profile = imageProfile(o.task, classNames, items.filter((_, i) => splits[i] === 'train'));
  await writeJsonAtomic(join(o.outDir, 'reference-profile.json'), profile);
  await writeJsonAtomic(join(o.outDir, 'dataset.json'), {
    version: 1,
    task: o.task,
    layout: dataset.layout,
    source: o.display,
    imageSize: o.imageSize,
    resize,
    classNames,
    seed: o.seed,
    fractions: { ...o.fractions, test: 1 - o.fractions.train - o.fractions.val },
    counts,
    quarantined: quarantine.count,
  });
  return { counts, quarantined: quarantine.count, total, report, profile };
}

type Quarantined = { file: string; reason: string; detail: string; line?: number };

async function scanImage(
  image: DatasetImage,
  pool: PreprocessPool,
  o: PrepareImagesOptions,
  classNames: readonly string[],
  metadata: ReadonlyMap<string, { id?: string; skin_type?: string; skin_tone?: string; source?: string }>,
): Promise<ScannedItem | Quarantined> {
  const file = image.file;
  let probed: PoolProbe;
  try {
    probed = await pool.probe(join(o.root, file));
  } catch (error) {
    return { file, reason: 'unreadable', detail: (error as Error).message };
  }
  const { probe } = probed;
  if (!probe.ok) return { file, reason: probe.problem, detail: probe.detail };
  if (Math.min(probe.width, probe.height) < o.minSize) {
    return { file, reason: 'too-small', detail: `${probe.width}×${probe.height} is below min-size ${o.minSize}` };
  }
  const meta = metadata.get(file);
  const item: ScannedItem = {
    image,
    sha256: probed.sha256,
    width: probe.width,
    height: probe.height,
    format: probe.format,
    orientation: probe.orientation,
    notes: probe.notes,
    stats: probe.stats,
    phash: probe.phash,
    ...(meta?.skin_tone !== undefined ? { skinTone: String(meta.skin_tone) } : {}),
    ...(meta?.source !== undefined ? { source: String(meta.source) } : {}),
    ...(meta?.id !== undefined ? { metaId: String(meta.id) } : {}),
  };
  if (o.task === 'detection') {
    let text: string;
    try {
      text = await readFile(join(o.root, image.labelFile ?? ''), 'utf8');
    } catch {
      return { file, reason: 'missing-label', detail: `no label file ${image.labelFile ?? ''}` };
    }
    const { boxes, issues } = parseYoloLabels(text, classNames.length);
    if (issues.length) {
      const first = issues[0]!;
      // `line` is left out: it would read as a line of the image; the detail names the label file and line.
      return {
        file,
        reason: first.reason,
        detail: `${image.labelFile}:${first.line}: ${first.detail}${issues.length > 1 ? ` (+${issues.length - 1} more)` : ''}`,
      };
    }
    item.boxes = boxes;
  } else {
    const name = o.labelSource === 'folders' ? image.folderClass : meta?.skin_type;
    if (name === undefined) {
      return { file, reason: 'missing-label', detail: o.labelSource === 'folders' ? 'not in a class folder' : 'no skin_type in metadata.jsonl' };
    }
    const label = classNames.indexOf(String(name));
    if (label < 0) return { file, reason: 'unknown-label', detail: `label \`${name}\` is not one of ${classNames.join(', ')}` };
    item.label = label;
  }
  return item;
}

/** Classification: its class. Detection: the most frequent class among its boxes (lowest id on ties). */
function stratumOf(item: ScannedItem, classNames: readonly string[]): string {
  if (item.label !== undefined) return classNames[item.label]!;
  if (!item.boxes?.length) return 'background';
  const counts = new Map<number, number>();
  for (const b of item.boxes) counts.set(b.cls, (counts.get(b.cls) ?? 0) + 1);
  let best = -1;
  let bestN = 0;
  for (const [c, n] of counts) if (n > bestN || (n === bestN && c < best)) [best, bestN] = [c, n];
  return classNames[best]!;
}

function imageProfile(task: string, classNames: readonly string[], train: readonly ScannedItem[]): ReferenceProfile {
  const p = new ProfileBuilder(task, 'train');
  for (const item of train) {
    p.item();
    for (const [name, edges] of Object.entries(IMAGE_STAT_EDGES)) p.numeric(`image.${name}`, edges, item.stats[name as keyof ImageStats]);
    p.numeric('image.aspect_ratio', evenEdges(0, 4, 40), item.width / item.height);
    p.category('skin_tone', item.skinTone ?? 'unknown');
    p.category('source', item.source ?? 'unknown');
    if (item.label !== undefined) p.label(classNames[item.label]!);
    if (item.boxes) {
      p.numeric('boxes_per_image', evenEdges(0, 50, 50), item.boxes.length);
      for (const b of item.boxes) {
        p.label(classNames[b.cls]!);
        p.numeric('box.area', evenEdges(0, 1, 50), b.w * b.h);
      }
    }
  }
  return p.finish();
}
