// Stage kind `fetch-dataset`: get a dataset source (Kaggle, HTTPS URL, local path or the synthetic
// generator), verify it, extract it safely and place it atomically with its dataset manifest.

import { mkdir, rename, rm } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { ConfigurationError, DataError } from '../core/errors.ts';
import { exists, sha256File } from '../core/fs.ts';
import type { ParamSpecs, ParamsOf } from '../core/params.ts';
import { defineStage, type StageContext, type StageResult } from '../core/stage.ts';
import { checkUrl, downloadUrl, realSleep, redactUrl, verifySha256, type HttpPolicy, type Sleep } from './fetch/download.ts';
import { extractArchive, sniffArchive, type ExtractLimits, type SkippedEntry } from './fetch/extract.ts';
import { downloadKaggleDataset, kaggleDatasetPage, parseDatasetRef } from './fetch/kaggle.ts';
import { copySingleFile, copyTree, statSource } from './fetch/local.ts';
import { detectLayout } from './layout/detect.ts';
import { MANIFEST_FILE, readDatasetManifest, writeDatasetManifest } from './layout/manifest.ts';
import type { DatasetManifest, SourceDescription } from './layout/types.ts';
import { MANIFEST_FILES } from './layout/walk.ts';
import { synthesize, synthParams, type SynthParams } from './synthetic/index.ts';

export const SOURCES = ['synthetic', 'kaggle', 'url', 'path'] as const;

export const fetchDatasetParams = {
  source: {
    type: 'string',
    description: 'Where the data comes from: `synthetic` (the embedded generator), `kaggle`, `url` (HTTPS) or `path` (local folder or archive)',
    choices: SOURCES,
    default: 'synthetic',
  },
  dataset: { type: 'string', description: 'Kaggle dataset `owner/slug` (source `kaggle`), e.g. `safabenammor/datasetam`' },
  version: { type: 'integer', description: 'Kaggle dataset version number to pin (source `kaggle`; latest when absent)', min: 1 },
  url: { type: 'string', description: 'HTTPS URL of a zip, tar, tar.gz or single data file (source `url`)' },
  path: { type: 'string', description: 'Local folder, archive or file, relative to the repository root (source `path`)' },
  sha256: {
    type: 'string',
    description: 'Pinned sha256 of the archive: required for `url`, verified when given for `kaggle` and `path` (the stage prints it on the first fetch)',
  },
  'max-bytes': { type: 'integer', description: 'Extraction limit: total uncompressed bytes', default: 16 * 1024 ** 3, min: 1 },
  'max-entries': { type: 'integer', description: 'Extraction limit: number of archive entries', default: 1_000_000, min: 1 },
  'max-ratio': { type: 'number', description: 'Extraction limit: uncompressed/compressed ratio, per entry and overall (zip bombs)', default: 100, min: 1 },
  ...synthParams,
} as const satisfies ParamSpecs;

export type FetchDatasetParams = ParamsOf<typeof fetchDatasetParams>;

const outputs = {
  'dataset-dir': 'Folder the dataset was placed in (the declared out), relative to the repository root',
  manifest: 'Path of the dataset manifest (manifest.json, next to files.jsonl)',
  files: 'Number of data files',
  'archive-sha256': 'sha256 of the downloaded or given archive (empty for folders and synthetic data): pin it as `sha256`',
  layout: 'Detected layout: synthetic, yolo, class-folders or csv',
} as const;

/** Seams that only code can set (tests): never reachable from pipeline.yaml. */
export interface FetchDatasetSeams {
  /** Accept `http://127.0.0.1` for `url` and KAGGLE_API_URL (loopback stand-ins). */
  policy?: HttpPolicy;
  /** Backoff sleep between download retries. */
  sleep?: Sleep;
}

const SHA256 = /^[0-9a-fA-F]{64}$/;

/** Params that only make sense with one source: set with another, they are a mistake. */
const ONLY_FOR: Record<string, (typeof SOURCES)[number]> = { dataset: 'kaggle', version: 'kaggle', url: 'url', path: 'path' };

export function createFetchDatasetStage(seams: FetchDatasetSeams = {}) {
  return defineStage({
    kind: 'fetch-dataset',
    title: 'Get a dataset source (Kaggle, HTTPS URL, local path or synthetic), verify it and write its manifest',
    params: fetchDatasetParams,
    outputs,
    codePaths: ['data'],
    validate(params, stage) {
      const errors: ConfigurationError[] = [];
      const err = (field: string, message: string, hint?: string): void => {
        errors.push(new ConfigurationError(`stage \`${stage.name}\`: ${message}`, hint ? { field, hint } : { field }));
      };
      if (stage.outs.length !== 1) err('outs', `fetch-dataset writes exactly one out (the dataset folder), got ${stage.outs.length}`, 'e.g. outs: [data/raw/synthetic]');
      for (const [field, only] of Object.entries(ONLY_FOR)) {
        if (params[field as keyof FetchDatasetParams] !== undefined && params.source !== only) err(field, `\`${field}\` is only used with \`source: ${only}\` (source is \`${params.source}\`)`);
      }
      if (params.sha256 !== undefined && !SHA256.test(params.sha256)) err('sha256', `\`sha256\` must be 64 hex digits, got \`${params.sha256}\``);
      if (params.sha256 !== undefined && params.source === 'synthetic') err('sha256', '`sha256` is not used with `source: synthetic` (generated data has no archive)');
      switch (params.source) {
        case 'kaggle':
          if (!params.dataset) err('dataset', '`source: kaggle` needs `dataset: owner/slug`', 'e.g. dataset: safabenammor/datasetam');
          else {
            try {
              parseDatasetRef(params.dataset);
            } catch (error) {
              err('dataset', (error as Error).message);
            }
          }
          break;
        case 'url':
          if (!params.url) err('url', '`source: url` needs `url`');
          else {
            try {
              checkUrl(params.url, '`url`', seams.policy);
            } catch (error) {
              err('url', (error as Error).message);
            }
          }
          if (!params.sha256) err('sha256', '`source: url` needs a pinned `sha256` of the file', 'download it once and run `sha256sum` on it');
          break;
        case 'path':
          if (!params.path) err('path', '`source: path` needs `path` (a folder, an archive or a file)');
          break;
      }
      if (errors.length) throw ConfigurationError.all(errors);
    },
    run: (ctx) => runFetch(ctx, seams),
  });
}

export const fetchDatasetStage = createFetchDatasetStage();

interface Fetched {
  source: SourceDescription;
  archiveSha256: string | null;
  skipped: SkippedEntry[];
  notes: string[];
}

async function runFetch(ctx: StageContext<FetchDatasetParams>, seams: FetchDatasetSeams): Promise<StageResult> {
  const p = ctx.params;
  const out = ctx.outs[0];
  if (!out || ctx.outs.length !== 1) throw new ConfigurationError(`stage \`${ctx.name}\`: fetch-dataset writes exactly one out, got ${ctx.outs.length}`);
  const limits: ExtractLimits = { maxBytes: p['max-bytes'], maxEntries: p['max-entries'], maxRatio: p['max-ratio'] };
  const work = join(ctx.tmpDir, 'fetch');
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  let data = join(work, 'data');
  const io = { logger: ctx.logger, signal: ctx.signal, sleep: seams.sleep ?? realSleep, ...(seams.policy ? { policy: seams.policy } : {}) };

  let fetched: Fetched;
  switch (p.source) {
    case 'synthetic': {
      const params = Object.fromEntries(Object.keys(synthParams).map((k) => [k, p[k as keyof FetchDatasetParams]])) as SynthParams;
      await synthesize(data, params, { logger: ctx.logger, signal: ctx.signal });
      fetched = {
        source: { type: 'synthetic', description: `synthetic Skin-Twin dataset (size ${params.size}, seed ${params.seed})`, params: definedOnly(params) },
        archiveSha256: null,
        skipped: [],
        notes: [],
      };
      break;
    }
    case 'kaggle': {
      const dataset = p.dataset!;
      const archive = join(work, 'kaggle.zip');
      const options: Parameters<typeof downloadKaggleDataset>[1] = { ...io, dataset, env: ctx.env };
      if (p.version !== undefined) options.version = p.version;
      const result = await downloadKaggleDataset(archive, options);
      const label = `Kaggle dataset ${dataset}${p.version !== undefined ? ` version ${p.version}` : ''}`;
      verifySha256(p.sha256, result.sha256, label);
      const notes = [];
      if (p.version === undefined) {
        ctx.logger.warn(`${label}: no \`version\` pinned, so the latest version was fetched; pin one for reproducible runs`);
        notes.push('version not pinned (latest at fetch time)');
      }
      if (!p.sha256) {
        ctx.logger.info(`${label}: archive sha256 ${result.sha256}; pin it with \`sha256: ${result.sha256}\` to verify later fetches`);
        notes.push('sha256 not pinned: recorded here and in the lock');
      } else ctx.logger.info(`${label}: archive sha256 matches the pinned value`);
      const report = await extractArchive(archive, data, { limits, signal: ctx.signal });
      await rm(archive, { force: true });
      const source: SourceDescription = { type: 'kaggle', description: label, dataset, url: kaggleDatasetPage(dataset, p.version) };
      if (p.version !== undefined) source.version = p.version;
      fetched = { source, archiveSha256: result.sha256, skipped: report.skipped, notes };
      break;
    }
    case 'url': {
      const url = p.url!;
      const file = join(work, 'download');
      const result = await downloadUrl(url, file, { ...io, label: redactUrl(url), ...(p.sha256 ? { sha256: p.sha256 } : {}) });
      let skipped: SkippedEntry[] = [];
      if (await sniffArchive(file)) skipped = (await extractArchive(file, data, { limits, signal: ctx.signal })).skipped;
      else await copySingleFile(file, data, fileNameFromUrl(url));
      await rm(file, { force: true });
      fetched = { source: { type: 'url', description: `HTTPS download ${redactUrl(url)}`, url: redactUrl(url) }, archiveSha256: result.sha256, skipped, notes: [] };
      break;
    }
    case 'path': {
      const shown = p.path!;
      const abs = isAbsolute(shown) ? shown : ctx.path(shown);
      const kind = await statSource(abs, shown);
      let archiveSha256: string | null = null;
      let skipped: SkippedEntry[] = [];
      if (kind === 'directory') {
        if (p.sha256) throw new ConfigurationError(`stage \`${ctx.name}\`: \`sha256\` pins an archive, but \`${shown}\` is a folder`, { field: 'sha256' });
        skipped = (await copyTree(abs, data, { limits, signal: ctx.signal })).skipped;
      } else {
        archiveSha256 = await sha256File(abs);
        verifySha256(p.sha256, archiveSha256, `\`${shown}\``);
        if (await sniffArchive(abs)) skipped = (await extractArchive(abs, data, { limits, signal: ctx.signal })).skipped;
        else await copySingleFile(abs, data);
      }
      const rel = relative(ctx.root, resolve(abs));
      fetched = {
        source: { type: 'path', description: `local ${kind} ${shown}`, path: shown },
        archiveSha256,
        skipped,
        notes: rel.startsWith('..') ? [] : [`list \`${rel}\` in this stage's deps so changes to it make the stage stale`],
      };
      break;
    }
  }

  for (const s of fetched.skipped.slice(0, 20)) ctx.logger.warn(`skipped ${s.type} \`${s.path}\`: ${s.reason}`);
  if (fetched.skipped.length > 20) ctx.logger.warn(`… and ${fetched.skipped.length - 20} more skipped entries`);

  // Kaggle zips often wrap everything in one folder: place its contents, so the dataset folder is the dataset.
  let layout = await detectLayout(data);
  if (layout.root) {
    const inner = join(work, 'unwrapped');
    await rename(join(data, layout.root), inner);
    await rm(data, { recursive: true, force: true });
    data = inner;
    ctx.logger.info(`unwrapped the single top folder \`${layout.root}\``);
    layout = await detectLayout(data);
  }
  await refuseForeignManifest(data);

  const manifest = await writeDatasetManifest(data, {
    name: ctx.name,
    source: fetched.source,
    archiveSha256: fetched.archiveSha256,
    layout,
    logger: ctx.logger,
    signal: ctx.signal,
  });

  const dest = ctx.out(out);
  await rm(dest, { recursive: true, force: true });
  await rename(data, dest);
  await rm(work, { recursive: true, force: true });

  const manifestPath = `${out}/${MANIFEST_FILE}`;
  ctx.logger.info(`${fetched.source.description}: ${manifest.counts.files} files, ${manifest.layout.kind} layout, placed in ${out}`);
  return {
    outputs: {
      'dataset-dir': out,
      manifest: manifestPath,
      files: String(manifest.counts.files),
      'archive-sha256': fetched.archiveSha256 ?? '',
      layout: manifest.layout.kind,
    },
    summary: summarise(out, manifest, fetched),
    reports: [manifestPath],
  };
}

/** A source that already carries a manifest.json / files.jsonl of its own would be overwritten. */
async function refuseForeignManifest(dir: string): Promise<void> {
  const present = [];
  for (const name of MANIFEST_FILES) if (await exists(join(dir, name))) present.push(name);
  if (!present.length) return;
  // One of ours (a fetched dataset used as a path source) is simply rewritten.
  if (await readDatasetManifest(dir).then(() => true, () => false)) return;
  throw new DataError(`the source has its own \`${present.join('` and `')}\` at its root, where the dataset manifest goes`, {
    file: present[0]!,
    hint: 'move it into a subfolder of the source',
  });
}

function fileNameFromUrl(raw: string): string {
  const last = new URL(raw).pathname.split('/').filter(Boolean).at(-1);
  const name = last ? decodeURIComponent(last).replace(/[^\w.-]/g, '_') : '';
  return name && name !== '.' && name !== '..' && !MANIFEST_FILES.has(name) ? name : 'download';
}

function definedOnly(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, v]) => v !== undefined));
}

function summarise(out: string, m: DatasetManifest, fetched: Fetched): string {
  const lines = [
    `### Dataset \`${m.name}\``,
    '',
    '| | |',
    '|---|---|',
    `| source | ${m.source.description}${m.source.url ? ` (${m.source.url})` : ''} |`,
    `| placed in | \`${out}\` |`,
    `| layout | ${m.layout.kind} (${m.layout.components.join(', ')}) |`,
    `| files | ${m.counts.files} (${m.counts.images} images), ${formatBytes(m.totalBytes)} |`,
    `| archive sha256 | ${m.archiveSha256 ? `\`${m.archiveSha256}\`` : '—'} |`,
    `| file list sha256 | \`${m.filesSha256}\` |`,
  ];
  const det = m.labelCounts.detection;
  if (det && m.layout.yolo) {
    const splits = Object.keys(det);
    lines.push('', `| class | ${splits.join(' | ')} |`, `|---|${splits.map(() => '---:').join('|')}|`);
    for (const name of m.layout.yolo.names) lines.push(`| ${name} | ${splits.map((s) => det[s]?.[name] ?? 0).join(' | ')} |`);
  }
  const cls = m.labelCounts.classification;
  if (cls && m.layout.classFolders) {
    const splits = Object.keys(cls);
    lines.push('', `| class | ${splits.join(' | ')} |`, `|---|${splits.map(() => '---:').join('|')}|`);
    for (const name of m.layout.classFolders.classes) lines.push(`| ${name} | ${splits.map((s) => cls[s]?.[name] ?? 0).join(' | ')} |`);
  }
  if (m.layout.tables?.length) {
    lines.push('', ...m.layout.tables.map((t) => `- table \`${t.path}\`: ${t.rows} rows × ${t.columns.length} columns`));
  }
  if (fetched.skipped.length) lines.push('', `${fetched.skipped.length} archive entries skipped (links, special files): ${fetched.skipped.slice(0, 5).map((s) => `\`${s.path}\` (${s.type})`).join(', ')}${fetched.skipped.length > 5 ? ', …' : ''}`);
  for (const note of fetched.notes) lines.push('', `Note: ${note}.`);
  return lines.join('\n') + '\n';
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}
