import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { gzipSync } from 'node:zlib';
import yazl from 'yazl';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parseParams } from '../../pipeline/core/params.ts';
import type { StageContext, StageResult } from '../../pipeline/core/stage.ts';
import { createFetchDatasetStage, fetchDatasetParams, fetchDatasetStage, type FetchDatasetParams } from '../../pipeline/data/fetch-dataset.ts';
import { readDatasetManifest, verifyDatasetManifest } from '../../pipeline/data/layout/index.ts';
import { startKaggleStandIn, type KaggleStandIn } from '../support/kaggle/stand-in.ts';
import { RecordingLogger } from '../support/logger.ts';
import { makeTar } from '../support/archives.ts';

const TOKEN = 'kgat_stage_test_token_4f9a1c';
const seams = { policy: { allowInsecureLoopback: true }, sleep: async () => {} };
const stage = createFetchDatasetStage(seams);
const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

let root: string;
let logger: RecordingLogger;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'fetch-stage-'));
  logger = new RecordingLogger();
});
afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

const OUT = 'data/raw/test';

function load(raw: Record<string, unknown>, outs = [OUT], kind = stage): FetchDatasetParams {
  const params = parseParams(fetchDatasetParams, raw, { what: 'stage `fetch-test`' });
  kind.validate!(params, { name: 'fetch-test', deps: [], outs });
  return params;
}

async function run(raw: Record<string, unknown>, env: Record<string, string> = {}): Promise<{ result: StageResult; dest: string }> {
  const params = load(raw);
  const staging = join(root, '.staging');
  const tmp = join(staging, 'tmp');
  await mkdir(tmp, { recursive: true });
  const ctx: StageContext<FetchDatasetParams> = {
    name: 'fetch-test',
    kind: 'fetch-dataset',
    params,
    settings: { seed: 42, cacheDir: '.skintwin/cache', jobs: 1 },
    root,
    deps: [],
    outs: [OUT],
    path: (rel) => resolve(root, rel),
    out: (rel) => {
      expect(rel).toBe(OUT);
      const staged = join(staging, 'outs', rel);
      return staged;
    },
    tmpDir: tmp,
    logger,
    now: () => new Date('2026-01-01T00:00:00Z'),
    signal: new AbortController().signal,
    env: { HOME: join(root, 'home'), ...env },
  };
  await mkdir(dirname(ctx.out(OUT)), { recursive: true });
  const result = await stage.run!(ctx);
  return { result, dest: ctx.out(OUT) };
}

const staged = (): string => join(root, '.staging', 'outs', OUT);
const placed = async (): Promise<boolean> => stat(staged()).then(() => true, () => false);

async function zipOf(files: Record<string, Buffer | string>, patch?: [string, string]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, body] of Object.entries(files)) zip.addBuffer(Buffer.from(body), name);
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  let buf = Buffer.concat(chunks);
  if (patch) buf = Buffer.from(buf.toString('latin1').split(patch[0]).join(patch[1]), 'latin1');
  return buf;
}

function yolo(prefix: string): Record<string, string> {
  return {
    [`${prefix}data.yaml`]: 'nc: 2\nnames: [Acne, Wrinkles]\n',
    [`${prefix}train/images/a.jpg`]: 'a',
    [`${prefix}train/labels/a.txt`]: '0 0.5 0.5 0.1 0.1\n1 0.5 0.5 0.2 0.2\n',
    [`${prefix}valid/images/b.jpg`]: 'b',
    [`${prefix}valid/labels/b.txt`]: '1 0.5 0.5 0.1 0.1\n',
  };
}

describe('fetch-dataset params', () => {
  it('is the kind registered for pipelines, with the synthetic params spread in', () => {
    expect(fetchDatasetStage.kind).toBe('fetch-dataset');
    expect(Object.keys(fetchDatasetStage.outputs).sort()).toEqual(['archive-sha256', 'dataset-dir', 'files', 'layout', 'manifest']);
    for (const p of ['source', 'dataset', 'version', 'url', 'path', 'sha256', 'max-bytes', 'max-entries', 'max-ratio', 'size', 'seed']) {
      expect(fetchDatasetStage.params).toHaveProperty(p);
    }
    expect(load({ source: 'synthetic', size: 'tiny' })).toMatchObject({ source: 'synthetic', size: 'tiny', 'max-ratio': 100 });
  });

  it.each([
    [{ source: 'kaggle' }, /`source: kaggle` needs `dataset: owner\/slug`/],
    [{ source: 'kaggle', dataset: 'not-a-slug' }, /`dataset` must be `owner\/slug`/],
    [{ source: 'url', url: 'https://example.org/d.zip' }, /`source: url` needs a pinned `sha256`/],
    [{ source: 'url', sha256: 'a'.repeat(64) }, /`source: url` needs `url`/],
    [{ source: 'path' }, /`source: path` needs `path`/],
    [{ source: 'kaggle', dataset: 'o/s', url: 'https://x.org/a.zip' }, /`url` is only used with `source: url`/],
    [{ source: 'synthetic', version: 3 }, /`version` is only used with `source: kaggle`/],
    [{ source: 'kaggle', dataset: 'o/s', sha256: 'xyz' }, /`sha256` must be 64 hex digits/],
  ])('rejects %j', (raw, message) => {
    expect(() => load(raw)).toThrow(message);
  });

  it('requires https for real configs; plain http only through the code seam', () => {
    const raw = { source: 'url', url: 'http://127.0.0.1:9/d.zip', sha256: 'a'.repeat(64) };
    expect(() => load(raw, [OUT], fetchDatasetStage)).toThrow(/only https URLs are accepted/);
    expect(() => load(raw, [OUT], stage)).not.toThrow();
    expect(() => load({ ...raw, url: 'http://example.org/d.zip' }, [OUT], stage)).toThrow(/only https/);
  });

  it('reports every problem at once and needs exactly one out', () => {
    const error = (() => {
      try {
        load({ source: 'url', path: 'x' }, ['a', 'b']);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(error?.name).toBe('ConfigurationError');
    expect(error?.message).toMatch(/4 problems/);
    expect(error?.message).toMatch(/exactly one out/);
  });
});

describe('fetch-dataset: kaggle source', () => {
  let kaggle: KaggleStandIn;
  let archive: Buffer;
  beforeAll(async () => {
    archive = await zipOf(yolo('datasetam/'));
    kaggle = await startKaggleStandIn({ datasets: { 'safabenammor/datasetam': { 3: archive } }, token: TOKEN });
  });
  afterAll(async () => {
    await kaggle.close();
  });
  beforeEach(() => {
    kaggle.faults = {};
    kaggle.requests.length = 0;
    kaggle.storageSawAuthorization = false;
  });
  const env = (): Record<string, string> => ({ KAGGLE_API_URL: kaggle.apiUrl, KAGGLE_API_TOKEN: TOKEN });

  it('downloads, unwraps, writes the manifest and records the archive sha256; a re-run pinned to it passes', async () => {
    const { result, dest } = await run({ source: 'kaggle', dataset: 'safabenammor/datasetam', version: 3 }, env());
    expect(result.outputs).toEqual({ 'dataset-dir': OUT, manifest: `${OUT}/manifest.json`, files: '5', 'archive-sha256': sha(archive), layout: 'yolo' });
    expect((await readdir(dest)).sort()).toEqual(['data.yaml', 'files.jsonl', 'manifest.json', 'train', 'valid']);
    const manifest = await readDatasetManifest(dest);
    expect(manifest.source).toEqual({
      type: 'kaggle',
      description: 'Kaggle dataset safabenammor/datasetam version 3',
      dataset: 'safabenammor/datasetam',
      version: 3,
      url: 'https://www.kaggle.com/datasets/safabenammor/datasetam/versions/3',
    });
    expect(manifest.archiveSha256).toBe(sha(archive));
    expect(manifest.labelCounts.detection).toEqual({ train: { Acne: 1, Wrinkles: 1 }, valid: { Wrinkles: 1 } });
    expect((await verifyDatasetManifest(dest)).ok).toBe(true);
    expect(kaggle.storageSawAuthorization).toBe(false);
    expect(logger.messages().join('\n')).not.toContain(TOKEN);
    expect(logger.messages('info').join('\n')).toContain(`pin it with \`sha256: ${sha(archive)}\``);
    expect(result.summary).toContain('| Acne | 1 | 0 |');

    await rm(join(root, '.staging'), { recursive: true });
    const again = await run({ source: 'kaggle', dataset: 'safabenammor/datasetam', version: 3, sha256: sha(archive) }, env());
    expect(again.result.outputs['archive-sha256']).toBe(sha(archive));
    expect((await readDatasetManifest(again.dest)).filesSha256).toBe(manifest.filesSha256);
  });

  it('a pinned sha256 that does not match names both hashes and places nothing', async () => {
    const wrong = 'f'.repeat(64);
    const error = (await run({ source: 'kaggle', dataset: 'safabenammor/datasetam', version: 3, sha256: wrong }, env()).catch((e: Error) => e)) as Error;
    expect(error.name).toBe('DataError');
    expect(error.message).toContain(`expected ${wrong}`);
    expect(error.message).toContain(`got ${sha(archive)}`);
    expect(await placed()).toBe(false);
  });

  it('a corrupted download places nothing', async () => {
    kaggle.faults.corrupt = true;
    await expect(run({ source: 'kaggle', dataset: 'safabenammor/datasetam', version: 3 }, env())).rejects.toThrow(/MD5 mismatch/);
    expect(await placed()).toBe(false);
  });

  it('an inaccessible dataset is a clear error', async () => {
    await expect(run({ source: 'kaggle', dataset: 'safabenammor/private' }, env())).rejects.toThrow(
      /dataset `safabenammor\/private` not found or not accessible with these credentials/,
    );
  });
});

describe('fetch-dataset: url source', () => {
  let server: Server;
  let base: string;
  const files = new Map<string, Buffer>();
  let dropOnce = false;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url === '/moved.tgz') {
        res.writeHead(302, { location: '/files/classes.tar.gz' });
        return res.end();
      }
      const body = files.get(req.url ?? '');
      if (!body) {
        res.writeHead(404);
        return res.end();
      }
      const start = Number(/bytes=(\d+)-/.exec(req.headers.range ?? '')?.[1] ?? 0);
      res.writeHead(start ? 206 : 200, {
        'content-length': String(body.length - start),
        ...(start ? { 'content-range': `bytes ${start}-${body.length - 1}/${body.length}` } : {}),
      });
      if (dropOnce) {
        dropOnce = false;
        res.write(body.subarray(start, start + 100), () => res.destroy());
        return;
      }
      res.end(body.subarray(start));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  function classesTar(): Buffer {
    // A tar.gz of class-per-folder images: Dry/1.jpg, Oily/2.jpg (+ incompressible padding).
    return gzipSync(
      makeTar([
        { name: 'Dry/1.jpg', body: 'dry' },
        { name: 'Oily/2.jpg', body: 'oily' },
        { name: 'Oily/3.jpg', body: createHash('sha512').update('x').digest() },
      ]),
    );
  }

  it('follows a redirect, resumes after a drop, verifies the pinned sha256 and extracts', async () => {
    const tgz = classesTar();
    files.set('/files/classes.tar.gz', tgz);
    dropOnce = true;
    const { result, dest } = await run({ source: 'url', url: `${base}/moved.tgz`, sha256: sha(tgz) });
    expect(result.outputs).toMatchObject({ layout: 'class-folders', files: '3', 'archive-sha256': sha(tgz) });
    expect(await readFile(join(dest, 'Dry/1.jpg'), 'utf8')).toBe('dry');
    const manifest = await readDatasetManifest(dest);
    expect(manifest.labelCounts.classification).toEqual({ all: { Dry: 1, Oily: 2 } });
    expect(manifest.source).toMatchObject({ type: 'url', url: `${base}/moved.tgz` });
  });

  it('a single CSV file becomes a one-table dataset', async () => {
    const csv = 'age,target\n30,1\n40,2\n';
    files.set('/fusion.csv', Buffer.from(csv));
    const { result, dest } = await run({ source: 'url', url: `${base}/fusion.csv`, sha256: sha(csv) });
    expect(result.outputs).toMatchObject({ layout: 'csv', files: '1' });
    expect(await readFile(join(dest, 'fusion.csv'), 'utf8')).toBe(csv);
  });

  it('a sha256 mismatch places nothing', async () => {
    files.set('/x.csv', Buffer.from('a,b\n1,2\n'));
    await expect(run({ source: 'url', url: `${base}/x.csv`, sha256: '0'.repeat(64) })).rejects.toThrow(/sha256 mismatch: expected 0{64}/);
    expect(await placed()).toBe(false);
  });

  it('an HTTP error is reported with the status', async () => {
    await expect(run({ source: 'url', url: `${base}/nothing.zip`, sha256: '0'.repeat(64) })).rejects.toThrow(/HTTP 404/);
  });
});

describe('fetch-dataset: path source', () => {
  it('copies a folder, skipping and reporting symlinks', async () => {
    const src = join(root, 'incoming');
    for (const [p, body] of Object.entries(yolo(''))) {
      await mkdir(dirname(join(src, p)), { recursive: true });
      await writeFile(join(src, p), body);
    }
    await symlink('/etc/passwd', join(src, 'train/images/evil.jpg'));
    const { result, dest } = await run({ source: 'path', path: 'incoming' });
    expect(result.outputs).toMatchObject({ layout: 'yolo', files: '5', 'archive-sha256': '' });
    await expect(stat(join(dest, 'train/images/evil.jpg'))).rejects.toThrow();
    expect(logger.messages('warn')).toContain('skipped symlink `train/images/evil.jpg`: links are never followed');
    expect(result.summary).toContain('list `incoming` in this stage\'s deps');
  });

  it('extracts a local zip and verifies its sha256 when pinned', async () => {
    const zip = await zipOf(yolo('export/'));
    await writeFile(join(root, 'export.zip'), zip);
    const { result } = await run({ source: 'path', path: 'export.zip', sha256: sha(zip) });
    expect(result.outputs).toMatchObject({ layout: 'yolo', files: '5', 'archive-sha256': sha(zip) });
    await rm(join(root, '.staging'), { recursive: true });
    await expect(run({ source: 'path', path: 'export.zip', sha256: '1'.repeat(64) })).rejects.toThrow(/sha256 mismatch/);
    expect(await placed()).toBe(false);
  });

  it('an unsafe archive fails and places nothing', async () => {
    await writeFile(join(root, 'evil.zip'), await zipOf({ 'ok.csv': 'a\n1\n', 'xx/evil.csv': 'a\n1\n' }, ['xx/evil.csv', '../evil.csv']));
    await expect(run({ source: 'path', path: 'evil.zip' })).rejects.toThrow(/unsafe archive entry/);
    expect(await placed()).toBe(false);
    await expect(stat(join(root, '.staging', 'tmp', 'evil.csv'))).rejects.toThrow();
  });

  it('an unrecognised layout fails with what was found', async () => {
    await mkdir(join(root, 'junk'), { recursive: true });
    await writeFile(join(root, 'junk/readme.md'), 'hello');
    await expect(run({ source: 'path', path: 'junk' })).rejects.toThrow(/unrecognised dataset layout: top-level entries readme.md; 1 files by extension: .md 1/);
    expect(await placed()).toBe(false);
  });

  it('a missing path is a configuration error', async () => {
    await expect(run({ source: 'path', path: 'nowhere' })).rejects.toThrow(/`path`: `nowhere` does not exist/);
  });
});

describe('fetch-dataset: synthetic source', () => {
  it('generates a tiny dataset, recognised with all its components, deterministically', async () => {
    const { result, dest } = await run({ source: 'synthetic', size: 'tiny', seed: 7, images: 12, 'fusion-rows': 300 });
    expect(result.outputs.layout).toBe('synthetic');
    expect(result.outputs['archive-sha256']).toBe('');
    const manifest = await readDatasetManifest(dest);
    expect(manifest.layout.components).toEqual(['yolo', 'csv', 'metadata']);
    expect(manifest.layout.yolo?.names).toHaveLength(10);
    expect(manifest.counts.images).toBe(12);
    expect(manifest.source).toMatchObject({ type: 'synthetic', params: { size: 'tiny', seed: 7 } });
    expect(Object.keys(manifest.labelCounts.skinType ?? {}).length).toBeGreaterThan(0);
    expect((await verifyDatasetManifest(dest)).ok).toBe(true);

    await rm(join(root, '.staging'), { recursive: true });
    const again = await run({ source: 'synthetic', size: 'tiny', seed: 7, images: 12, 'fusion-rows': 300 });
    expect((await readDatasetManifest(again.dest)).filesSha256).toBe(manifest.filesSha256);
  }, 60_000);
});
