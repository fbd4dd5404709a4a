// Kaggle dataset download: POST DownloadDataset on the API host, then a 302 to a signed
// storage URL on another host that serves the zip. Credentials go to the API host only.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigurationError, DataError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';
import {
  checkUrl,
  downloadResumable,
  redactUrl,
  rangeHeaders,
  type DownloadOptions,
  type DownloadResult,
  type HttpPolicy,
  type OpenRange,
} from './download.ts';

export const DEFAULT_KAGGLE_API_URL = 'https://api.kaggle.com';

export interface KaggleAuth {
  /** The Authorization header value. */
  header: string;
  /** Where it came from, for messages (never the value). */
  via: 'KAGGLE_API_TOKEN' | 'KAGGLE_USERNAME/KAGGLE_KEY' | 'kaggle.json';
}

/**
 * Find Kaggle credentials: `KAGGLE_API_TOKEN` (Bearer), else `KAGGLE_USERNAME` + `KAGGLE_KEY`
 * (Basic), else `kaggle.json` in `KAGGLE_CONFIG_DIR` or `$HOME/.kaggle`. Every secret part is
 * registered with the logger before anything can print it.
 */
export async function kaggleAuth(env: Readonly<Record<string, string | undefined>>, logger: Logger): Promise<KaggleAuth> {
  const token = env.KAGGLE_API_TOKEN?.trim();
  if (token) {
    logger.secret(token);
    return { header: `Bearer ${token}`, via: 'KAGGLE_API_TOKEN' };
  }
  const user = env.KAGGLE_USERNAME?.trim();
  const key = env.KAGGLE_KEY?.trim();
  if (user && key) return basic(user, key, 'KAGGLE_USERNAME/KAGGLE_KEY', logger);
  if (user || key) {
    throw new ConfigurationError(`${user ? 'KAGGLE_USERNAME' : 'KAGGLE_KEY'} is set but ${user ? 'KAGGLE_KEY' : 'KAGGLE_USERNAME'} is not: set both, or use KAGGLE_API_TOKEN`);
  }
  const home = env.HOME ?? env.USERPROFILE;
  const dir = env.KAGGLE_CONFIG_DIR ?? (home ? join(home, '.kaggle') : undefined);
  if (dir) {
    const file = join(dir, 'kaggle.json');
    let text: string | undefined;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigurationError(`cannot read Kaggle credentials: ${(error as Error).message}`, { file });
    }
    if (text !== undefined) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new ConfigurationError('Kaggle credentials file is not valid JSON', { file });
      }
      const p = parsed as { username?: unknown; key?: unknown };
      if (typeof p.username !== 'string' || typeof p.key !== 'string' || !p.username || !p.key) {
        throw new ConfigurationError('Kaggle credentials file must hold {"username": "…", "key": "…"}', { file, field: typeof p.username === 'string' && p.username ? 'key' : 'username' });
      }
      return basic(p.username, p.key, 'kaggle.json', logger);
    }
  }
  throw new ConfigurationError('no Kaggle credentials found', {
    hint: 'set KAGGLE_API_TOKEN, or KAGGLE_USERNAME and KAGGLE_KEY, or create ~/.kaggle/kaggle.json (Kaggle → Settings → API)',
  });
}

function basic(user: string, key: string, via: KaggleAuth['via'], logger: Logger): KaggleAuth {
  const encoded = Buffer.from(`${user}:${key}`).toString('base64');
  logger.secret(key);
  logger.secret(encoded);
  return { header: `Basic ${encoded}`, via };
}

/** `owner/slug` → parts, or a ConfigurationError naming the param. */
export function parseDatasetRef(ref: string): { owner: string; slug: string } {
  const m = /^([A-Za-z0-9][\w.-]*)\/([A-Za-z0-9][\w.-]*)$/.exec(ref.trim());
  if (!m) throw new ConfigurationError(`\`dataset\` must be \`owner/slug\` (as in kaggle.com/datasets/owner/slug), got \`${ref}\``, { field: 'dataset' });
  return { owner: m[1]!, slug: m[2]! };
}

/** The public page of a dataset version: what the manifest records (never the signed URL). */
export function kaggleDatasetPage(ref: string, version?: number): string {
  return `https://www.kaggle.com/datasets/${ref}${version !== undefined ? `/versions/${version}` : ''}`;
}

export interface KaggleDownloadOptions extends Omit<DownloadOptions, 'label' | 'httpError'> {
  dataset: string;
  version?: number;
  env: Readonly<Record<string, string | undefined>>;
  policy?: HttpPolicy;
}

export interface KaggleDownloadResult extends DownloadResult {
  auth: KaggleAuth['via'];
}

/** Download a Kaggle dataset archive into `dest` (a temp file the caller owns). */
export async function downloadKaggleDataset(dest: string, options: KaggleDownloadOptions): Promise<KaggleDownloadResult> {
  const { owner, slug } = parseDatasetRef(options.dataset);
  const ref = `${owner}/${slug}`;
  const { logger, signal, policy } = options;
  const auth = await kaggleAuth(options.env, logger);
  const apiBase = checkUrl(options.env.KAGGLE_API_URL || DEFAULT_KAGGLE_API_URL, 'KAGGLE_API_URL', policy);
  const endpoint = new URL(`${apiBase.pathname.replace(/\/$/, '')}/v1/datasets.DatasetApiService/DownloadDataset`, apiBase);
  const body: Record<string, unknown> = { ownerSlug: owner, datasetSlug: slug };
  if (options.version !== undefined) body.datasetVersionNumber = options.version;
  const label = `Kaggle dataset ${ref}${options.version !== undefined ? ` v${options.version}` : ''}`;
  const notAccessible = (status: number): ConfigurationError =>
    new ConfigurationError(`dataset \`${ref}\`${options.version !== undefined ? ` version ${options.version}` : ''} not found or not accessible with these credentials (HTTP ${status}, credentials from ${auth.via})`, {
      field: 'dataset',
      hint: 'check the slug on kaggle.com, accept the dataset rules there if it has any, and check the credentials',
    });

  let storage: URL | undefined;
  let refreshes = 0;
  const openRange: OpenRange = async (offset) => {
    if (storage) {
      // Never send the credentials here: the storage URL is signed and lives on another host.
      const init: RequestInit = { headers: { 'user-agent': 'skin-twin-mlops', ...rangeHeaders(offset) }, redirect: 'manual' };
      if (signal) init.signal = signal;
      const response = await fetch(storage, init);
      // An expired signature: ask the API for a fresh URL (a couple of times at most).
      if ([400, 401, 403, 410].includes(response.status) && refreshes < 2) {
        await response.body?.cancel();
        refreshes++;
        storage = undefined;
        logger.debug(`${label}: storage answered ${response.status}, asking for a fresh download URL`);
      } else {
        return response;
      }
    }
    const init: RequestInit = {
      method: 'POST',
      headers: { authorization: auth.header, 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'skin-twin-mlops', ...rangeHeaders(offset) },
      body: JSON.stringify(body),
      redirect: 'manual',
    };
    if (signal) init.signal = signal;
    const response = await fetch(endpoint, init);
    if (response.status === 401 || response.status === 403 || response.status === 404) {
      await response.body?.cancel();
      throw notAccessible(response.status);
    }
    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      storage = checkUrl(new URL(location, endpoint), `${label} (storage redirect)`, policy);
      logger.debug(`${label}: downloading from ${redactUrl(storage)}`);
      return openRange(offset);
    }
    return response;
  };

  logger.info(`${label}: requesting the archive from ${apiBase.origin} (credentials from ${auth.via})`);
  const result = await downloadResumable(dest, openRange, {
    ...options,
    label,
    httpError: (r) =>
      r.status === 401 || r.status === 403 || r.status === 404
        ? notAccessible(r.status)
        : new DataError(`${label}: HTTP ${r.status} ${r.statusText} from ${redactUrl(r.url || String(storage ?? endpoint))}`),
  });
  return { ...result, auth: auth.via };
}
