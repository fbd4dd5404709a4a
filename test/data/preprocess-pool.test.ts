// PreprocessPool: worker threads give exactly preprocessImage's pixels (and normalizeToCHW's
// tensor), hand images only sharp decodes back to the caller, and report bad input clearly.

import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PreprocessPool } from '../../pipeline/data/images/preprocess-pool.ts';
import { probeImage } from '../../pipeline/data/images/probe.ts';
import { IMAGENET_MEAN, IMAGENET_STD, normalizeToCHW, preprocessImage, type PreprocessSpec } from '../../pipeline/data/images/preprocess.ts';
import { pictureImage } from '../support/pictures.ts';
import { scratchDir } from '../support/scratch-dir.ts';

const scratch = scratchDir('preprocess-pool');
const saved = scratch.save;
let pool: PreprocessPool;
beforeAll(async () => {
  pool = await PreprocessPool.create(2);
});
afterAll(async () => {
  await pool.close();
});

const rgb = pictureImage;

describe('PreprocessPool', () => {
  it('gives preprocessImage\'s bytes for every kind of image, one decode for several sizes', async () => {
    const inputs = [
      await saved('plain.jpg', await rgb(640, 480, 1).jpeg({ quality: 85 }).toBuffer()),
      await saved('gray.jpg', await rgb(300, 500, 2).toColourspace('b-w').jpeg().toBuffer()),
      await saved('rotated.jpg', await rgb(480, 320, 3).jpeg().withMetadata({ orientation: 6 }).toBuffer()),
      await saved('cmyk.jpg', await rgb(320, 240, 4).toColourspace('cmyk').jpeg().toBuffer()),
      await saved('p3.jpg', await rgb(320, 240, 5).withIccProfile('p3').jpeg().toBuffer()),
      await saved('alpha.png', await rgb(200, 150, 6).ensureAlpha(0.5).png().toBuffer()),
    ];
    const specs: PreprocessSpec[] = [
      { size: 224, resize: 'fill' },
      { size: 160, resize: 'letterbox' },
    ];
    const results = await Promise.all(inputs.map((path) => pool.preprocess(path, specs)));
    for (const [i, path] of inputs.entries()) {
      for (const [j, spec] of specs.entries()) {
        const want = await preprocessImage(path, spec);
        const got = results[i]![j]!;
        expect(got.geometry, `${path} ${spec.resize}`).toEqual(want.geometry);
        expect([got.width, got.height]).toEqual([want.width, want.height]);
        expect(Buffer.compare(got.pixels!, want.pixels), `${path} ${spec.resize}`).toBe(0);
      }
    }
  });

  it('normalises on the worker exactly as normalizeToCHW does, from a path or from bytes', async () => {
    const bytes = await rgb(640, 480, 7).jpeg().toBuffer();
    const path = await saved('n.jpg', bytes);
    const spec = { size: 224, resize: 'fill' as const, normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD } };
    const [fromPath] = await pool.preprocess(path, [spec]);
    const [fromBytes] = await pool.preprocess(bytes, [spec]);
    const want = new Float32Array(3 * 224 * 224);
    normalizeToCHW((await preprocessImage(path, spec)).pixels, 224, 224, IMAGENET_MEAN, IMAGENET_STD, want);
    expect(fromPath!.tensor).toEqual(want);
    expect(fromBytes!.tensor).toEqual(want);
  });

  it('writes tensors into a given array (sharp\'s images too) and reuses the worker\'s memory for later images', async () => {
    const spec = { size: 96, resize: 'letterbox' as const, normalize: { mean: IMAGENET_MEAN, std: IMAGENET_STD } };
    const plane = 3 * 96 * 96;
    const paths = [
      ...(await Promise.all([1, 2, 3, 4, 5, 6].map(async (k) => saved(`into-${k}.jpg`, await rgb(200 + 8 * k, 150, k).jpeg().toBuffer())))),
      await saved('into.png', await rgb(120, 90, 9).png().toBuffer()),
    ];
    const batch = new Float32Array(paths.length * plane + 3).fill(-9);
    // Two rounds: the second runs on buffers the first handed back.
    for (let round = 0; round < 2; round++) {
      const results = await Promise.all(paths.map((path, k) => pool.preprocess(path, [{ ...spec, normalize: { ...spec.normalize, into: { array: batch, offset: k * plane } } }])));
      for (const [k, path] of paths.entries()) {
        const want = new Float32Array(plane);
        normalizeToCHW((await preprocessImage(path, spec)).pixels, 96, 96, IMAGENET_MEAN, IMAGENET_STD, want);
        expect(batch.subarray(k * plane, (k + 1) * plane), `${path} round ${round}`).toEqual(want);
        const [image] = results[k]!;
        expect(image!.tensor!.buffer).toBe(batch.buffer);
        expect(image!.tensor!.byteOffset).toBe(k * plane * 4);
        expect(image!.pixels).toBeUndefined();
      }
      expect([...batch.subarray(paths.length * plane)]).toEqual([-9, -9, -9]);
    }
  });

  it('probes on a worker exactly as probeImage does, with the file\'s sha256', async () => {
    const good = await rgb(320, 240, 11).jpeg().toBuffer();
    const inputs = [
      await saved('probe.jpg', good),
      await saved('probe-turned.jpg', await rgb(240, 320, 12).jpeg().withMetadata({ orientation: 6 }).toBuffer()),
      await saved('probe-gray.jpg', await rgb(200, 100, 13).toColourspace('b-w').jpeg().toBuffer()),
      await saved('probe.png', await rgb(320, 240, 11).png().toBuffer()),
      await saved('probe-cmyk.jpg', await rgb(100, 80, 14).toColourspace('cmyk').jpeg().toBuffer()),
      await saved('probe-truncated.jpg', good.subarray(0, good.length >> 1)),
      await saved('probe-empty.jpg', Buffer.alloc(0)),
      await saved('probe.txt', Buffer.from('not an image')),
    ];
    for (const path of inputs) {
      const bytes = await readFile(path);
      const got = await pool.probe(path);
      expect(got.probe, path).toEqual(await probeImage(bytes));
      expect(got.sha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    }
    expect((await pool.probe(inputs[1]!)).probe).toMatchObject({ ok: true, width: 320, height: 240, orientation: 6, notes: ['exif-orientation'] });
    expect((await pool.probe(inputs[5]!)).probe).toMatchObject({ ok: false, problem: 'truncated' });
    await expect(pool.probe(join(scratch.path, 'absent.jpg'))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('rejects a missing file with its code and a corrupt one with sharp\'s explanation, and keeps working', async () => {
    await expect(pool.preprocess(join(scratch.path, 'absent.jpg'), [{ size: 64, resize: 'fill' }])).rejects.toMatchObject({ code: 'ENOENT' });
    const bytes = await rgb(320, 240, 8).jpeg().toBuffer();
    const truncated = await saved('truncated.jpg', bytes.subarray(0, bytes.length >> 1));
    await expect(pool.preprocess(truncated, [{ size: 64, resize: 'fill' }])).rejects.toThrow(/premature|truncat|end of/i);
    const [ok] = await pool.preprocess(await saved('ok.jpg', bytes), [{ size: 64, resize: 'fill' }]);
    expect(ok!.pixels).toHaveLength(64 * 64 * 3);
  });

  it('rejects what is still pending when closed, and everything after', async () => {
    const own = await PreprocessPool.create(1);
    const path = await saved('c.jpg', await rgb(640, 480, 9).jpeg().toBuffer());
    const pending = Array.from({ length: 6 }, () => own.preprocess(path, [{ size: 224, resize: 'fill' }]));
    const settling = Promise.allSettled(pending);
    await own.close();
    const settled = await settling;
    expect(settled.some((s) => s.status === 'rejected')).toBe(true);
    await expect(own.preprocess(path, [{ size: 224, resize: 'fill' }])).rejects.toThrow(/closed/);
  });

  it('built as in dist/ (worker script found beside the bundle), keeps a process alive until closed', async () => {
    // A top-level await on close() used to end the process with code 13 while the workers stopped.
    const { build } = await import('esbuild');
    // Inside node_modules/.cache so that the bundle resolves sharp and the decoder as dist/ does.
    await mkdir(join(process.cwd(), 'node_modules', '.cache'), { recursive: true });
    const out = await mkdtemp(join(process.cwd(), 'node_modules', '.cache', 'preprocess-pool-'));
    await build({
      entryPoints: { pool: 'pipeline/data/images/preprocess-pool.ts', 'workers/preprocess': 'pipeline/data/images/preprocess-worker.ts' },
      outdir: out,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      format: 'esm',
      platform: 'node',
      external: ['sharp', 'onnxruntime-node', '@julusian/jpeg-turbo', 'esbuild'],
      logLevel: 'error',
    });
    // The pool looks for workers/preprocess.js; this bundle names it .mjs, so link the name.
    await writeFile(join(out, 'workers', 'preprocess.js'), `import './preprocess.mjs';\n`);
    const path = await saved('alive.jpg', await rgb(320, 240, 10).jpeg().toBuffer());
    // Workers stop in any order; a few rounds with four of them make a bad order likely.
    const script = `import { PreprocessPool } from ${JSON.stringify(join(out, 'pool.mjs'))};
let bytes = 0;
for (let round = 0; round < 8; round++) {
  const pool = await PreprocessPool.create(4);
  const images = await Promise.all([0, 1, 2, 3].map(() => pool.preprocess(${JSON.stringify(path)}, [{ size: 32, resize: 'fill' }])));
  await pool.close();
  bytes = images[0][0].pixels.length;
}
console.log('closed', bytes);`;
    await writeFile(join(out, 'main.mjs'), script);
    const r = spawnSync(process.execPath, [join(out, 'main.mjs')], { cwd: process.cwd(), encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe(`closed ${32 * 32 * 3}`);
    await rm(out, { recursive: true, force: true });
  });
});
