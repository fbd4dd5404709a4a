import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseParams } from '../../pipeline/core/params.ts';
import { RAW_COLUMNS, TARGET_IDS } from '../../pipeline/data/fusion/schema.ts';
import {
  DETECTOR_CLASSES,
  resolveSynthConfig,
  SKIN_TONES,
  SKIN_TYPES,
  synthesize,
  synthParams,
  type SynthSummary,
} from '../../pipeline/data/synthetic/index.ts';
import { planImage } from '../../pipeline/data/synthetic/render.ts';
import { RecordingLogger } from '../support/logger.ts';

const params = (raw: Record<string, unknown>) => parseParams(synthParams, { size: 'tiny', ...raw }, { what: 'synth' });

let root: string;
const dirs: Record<string, string> = {};
const summaries: Record<string, SynthSummary> = {};
let logger: RecordingLogger;

async function run(name: string, raw: Record<string, unknown>): Promise<string> {
  const dir = join(root, name);
  const log = new RecordingLogger();
  summaries[name] = await synthesize(dir, params(raw), { logger: log });
  dirs[name] = dir;
  if (name === 'a') logger = log;
  return dir;
}

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

async function hashes(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const f of await files(dir)) out.set(f, createHash('sha256').update(await readFile(join(dir, f))).digest('hex'));
  return out;
}

const metadataOf = async (dir: string): Promise<Record<string, unknown>[]> =>
  (await readFile(join(dir, 'metadata.jsonl'), 'utf8'))
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/** Mean luminance and mean horizontal gradient of the decoded images. */
async function imageStats(dir: string): Promise<{ brightness: number; sharpness: number; bytes: number }> {
  const { default: sharp } = await import('sharp');
  let brightness = 0;
  let sharpness = 0;
  let bytes = 0;
  const meta = await metadataOf(dir);
  for (const m of meta) {
    const path = join(dir, m.file as string);
    bytes += (await stat(path)).size;
    const { data, info } = await sharp(path).greyscale().raw().toBuffer({ resolveWithObject: true });
    let s = 0;
    let g = 0;
    for (let i = 0; i < data.length; i++) {
      s += data[i]!;
      if ((i + 1) % info.width) g += Math.abs(data[i]! - data[i + 1]!);
    }
    brightness += s / data.length;
    sharpness += g / data.length;
  }
  return { brightness: brightness / meta.length, sharpness: sharpness / meta.length, bytes: bytes / meta.length };
}

describe('synthesize', () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'synth-'));
    await run('a', { seed: 42 });
    await run('b', { seed: 42 });
    await run('c', { seed: 7 });
  });
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('is deterministic: same seed, byte-identical files; another seed, different files', async () => {
    const a = await hashes(dirs.a!);
    const b = await hashes(dirs.b!);
    const c = await hashes(dirs.c!);
    expect(a.size).toBeGreaterThan(80);
    expect([...b]).toEqual([...a]);
    const differing = [...a].filter(([f, h]) => c.get(f) !== h).map(([f]) => f);
    expect(differing).toContain('fusion.csv');
    expect(differing).toContain('metadata.jsonl');
    expect(differing.filter((f) => f.endsWith('.jpg')).length).toBeGreaterThan(30);
  });

  it('writes the YOLO export layout with data.yaml, labels and metadata for every image', async () => {
    const dir = dirs.a!;
    const yaml = parseYaml(await readFile(join(dir, 'data.yaml'), 'utf8')) as Record<string, unknown>;
    expect(yaml).toMatchObject({ train: 'train/images', val: 'valid/images', test: 'test/images', nc: 10, names: [...DETECTOR_CLASSES] });
    const meta = await metadataOf(dir);
    expect(meta).toHaveLength(40);
    const all = new Set(await files(dir));
    const { default: sharp } = await import('sharp');
    for (const m of meta) {
      expect(Object.keys(m)).toEqual(['id', 'file', 'skin_type', 'skin_tone', 'lighting', 'blur', 'jpeg_quality', 'width', 'height', 'source']);
      expect(m.file).toMatch(new RegExp(`^(train|valid|test)/images/${m.id as string}\\.jpg$`));
      expect(all.has(m.file as string)).toBe(true);
      expect(all.has((m.file as string).replace('/images/', '/labels/').replace(/\.jpg$/, '.txt'))).toBe(true);
      expect(SKIN_TYPES).toContain(m.skin_type);
      expect(SKIN_TONES).toContain(m.skin_tone);
      expect(m).toMatchObject({ width: 160, height: 120, source: 'synthetic' });
      expect(Number.isInteger(m.jpeg_quality) && (m.jpeg_quality as number) >= 75 && (m.jpeg_quality as number) <= 95).toBe(true);
      const info = await sharp(join(dir, m.file as string)).metadata();
      expect([info.format, info.width, info.height, info.channels]).toEqual(['jpeg', 160, 120, 3]);
    }
    expect([...all].filter((f) => f.endsWith('.jpg'))).toHaveLength(40);
    expect([...all].filter((f) => f.endsWith('.txt'))).toHaveLength(40);
    expect([...all].filter((f) => !/^(train|valid|test)\//.test(f)).sort()).toEqual(['data.yaml', 'fusion.csv', 'metadata.jsonl', 'synthetic.json']);
  });

  it('labels parse, lie in range and are the boxes of the drawn lesions', async () => {
    const dir = dirs.a!;
    const cfg = resolveSynthConfig(params({ seed: 42 }));
    const seen = new Set<number>();
    const perClass = new Array<number>(10).fill(0);
    for (const m of await metadataOf(dir)) {
      const text = await readFile(join(dir, (m.file as string).replace('/images/', '/labels/').replace(/\.jpg$/, '.txt')), 'utf8');
      const lines = text ? text.trimEnd().split('\n') : [];
      const plan = planImage(cfg, Number((m.id as string).replace('synth-', '')));
      expect(lines).toHaveLength(plan.lesions.length);
      lines.forEach((line, i) => {
        const fields = line.split(' ');
        expect(fields).toHaveLength(5);
        const [cls, cx, cy, w, h] = fields.map(Number) as [number, number, number, number, number];
        expect(Number.isInteger(cls) && cls >= 0 && cls < 10).toBe(true);
        expect(w > 0 && h > 0 && cx - w / 2 >= -1e-6 && cx + w / 2 <= 1 + 1e-6 && cy - h / 2 >= -1e-6 && cy + h / 2 <= 1 + 1e-6).toBe(true);
        const [x0, y0, x1, y1] = plan.lesions[i]!.box;
        expect(cls).toBe(plan.lesions[i]!.cls);
        expect(cx * 160).toBeCloseTo((x0 + x1) / 2, 3);
        expect(cy * 120).toBeCloseTo((y0 + y1) / 2, 3);
        expect(w * 160).toBeCloseTo(x1 - x0, 3);
        expect(h * 120).toBeCloseTo(y1 - y0, 3);
        seen.add(cls);
        perClass[cls]!++;
      });
    }
    expect([...seen].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(perClass).toEqual(DETECTOR_CLASSES.map((c) => summaries.a!.lesionsByClass[c]));
  });

  it('covers every tone and skin type, and the summary matches the files', async () => {
    const meta = await metadataOf(dirs.a!);
    expect(new Set(meta.map((m) => m.skin_tone))).toEqual(new Set(SKIN_TONES));
    expect(new Set(meta.map((m) => m.skin_type))).toEqual(new Set(SKIN_TYPES));
    const s = summaries.a!;
    for (const tone of SKIN_TONES) expect(s.imagesByTone[tone]).toBe(meta.filter((m) => m.skin_tone === tone).length);
    for (const split of ['train', 'valid', 'test'] as const) {
      expect(s.imagesBySplit[split]).toBe(meta.filter((m) => (m.file as string).startsWith(`${split}/`)).length);
    }
    expect(s.imagesBySplit.train).toBeGreaterThan(s.imagesBySplit.valid);
    expect(s.imagesBySplit.valid + s.imagesBySplit.test).toBeGreaterThan(0);
    expect(s.images).toBe(40);
    const recorded = JSON.parse(await readFile(join(dirs.a!, 'synthetic.json'), 'utf8')) as { params: Record<string, unknown>; summary: unknown };
    expect(recorded.params).toMatchObject({ seed: 42, size: 'tiny', images: 40, 'fusion-rows': 2000, 'image-width': 160, brightness: 1, 'novel-lesion': false });
    expect(recorded.summary).toEqual(s);
    expect(logger.progressDone.find((p) => p.label === 'synthetic images')).toEqual({ label: 'synthetic images', done: 40, total: 40 });
  });

  it('writes a fusion table with the original schema, ids and no-detection share', async () => {
    const lines = (await readFile(join(dirs.a!, 'fusion.csv'), 'utf8')).trimEnd().split('\n');
    expect(lines[0]).toBe(RAW_COLUMNS.join(','));
    expect(lines).toHaveLength(2001);
    const ids = new Set(TARGET_IDS);
    const rows = lines.slice(1).map((l) => l.split(','));
    expect(rows.every((r) => r.length === RAW_COLUMNS.length && ids.has(Number(r[21])))).toBe(true);
    const none = rows.filter((r) => r.slice(8, 18).every((x) => x === '0')).length / rows.length;
    expect(none).toBeGreaterThan(0.26);
    expect(none).toBeLessThan(0.36);
    expect(summaries.a!.fusionNoDetectionFraction).toBeCloseTo(none, 6);
  });

  it('knobs shift the decoded images: darker, softer, smaller files', async () => {
    const base = { images: 8, 'fusion-rows': 10, 'image-width': 320, 'image-height': 240 };
    const plain = await imageStats(await run('plain', { ...base, 'jpeg-quality': '90' }));
    const dark = await imageStats(await run('dark', { ...base, 'jpeg-quality': '90', brightness: 0.6 }));
    const soft = await imageStats(await run('soft', { ...base, 'jpeg-quality': '90', blur: 4 }));
    const lowq = await imageStats(await run('lowq', { ...base, 'jpeg-quality': '30' }));
    expect(dark.brightness / plain.brightness).toBeGreaterThan(0.5);
    expect(dark.brightness / plain.brightness).toBeLessThan(0.7);
    expect(soft.sharpness).toBeLessThan(0.8 * plain.sharpness);
    expect(lowq.bytes).toBeLessThan(0.7 * plain.bytes);
    const toneVI = await metadataOf(await run('vi', { ...base, 'tone-mix': { VI: 1 } }));
    expect(toneVI.every((m) => m.skin_tone === 'VI')).toBe(true);
  });

  it('image n and fusion row n do not depend on how many are generated', async () => {
    const dir = await run('prefix', { seed: 42, images: 5, 'fusion-rows': 100 });
    const small = await hashes(dir);
    const full = await hashes(dirs.a!);
    const images = [...small].filter(([f]) => /\/(images|labels)\//.test(f));
    expect(images).toHaveLength(10);
    for (const [f, h] of images) expect(full.get(f), f).toBe(h);
    const head = (await readFile(join(dirs.a!, 'fusion.csv'), 'utf8')).split('\n').slice(0, 101).join('\n') + '\n';
    expect(await readFile(join(dir, 'fusion.csv'), 'utf8')).toBe(head);
    const meta = (await readFile(join(dirs.a!, 'metadata.jsonl'), 'utf8')).split('\n').slice(0, 5).join('\n') + '\n';
    expect(await readFile(join(dir, 'metadata.jsonl'), 'utf8')).toBe(meta);
  });

  it('refuses a non-empty directory and bad params, and stops when aborted', async () => {
    const busy = join(root, 'busy');
    await run('busy', { images: 1, 'fusion-rows': 1 });
    await expect(synthesize(busy, params({}), { logger: new RecordingLogger() })).rejects.toThrow(/not empty/);
    await expect(synthesize(join(root, 'bad'), params({ 'tone-mix': { VII: 1 } }), { logger: new RecordingLogger() })).rejects.toMatchObject({
      name: 'ConfigurationError',
    });
    const controller = new AbortController();
    controller.abort();
    await expect(synthesize(join(root, 'stopped'), params({}), { logger: new RecordingLogger(), signal: controller.signal })).rejects.toMatchObject({
      name: 'InterruptedError',
    });
  });
});
