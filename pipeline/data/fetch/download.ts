// Resumable HTTP downloads for dataset sources: Range resume after a dropped connection,
// retries with exponential backoff on 5xx and connection loss, MD5 from `x-goog-hash` and
// sha256 computed while streaming, progress in bytes, manual redirects (so credentials never
// follow a redirect to another host) and an https-only policy with one explicit test seam.

import { createHash, type Hash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { ConfigurationError, DataError, InterruptedError } from '../../core/errors.ts';
import type { Logger } from '../../core/logger.ts';

export type Sleep = (ms: number) => Promise<void>;

export const realSleep: Sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Where plain http may be used. Only tests set this: pipeline.yaml cannot reach it. */
export interface HttpPolicy {
  /** Accept `http://127.0.0.1` / `http://localhost` URLs (loopback stand-ins in tests). */
  allowInsecureLoopback?: boolean;
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]']);

/** Parse and check a URL against the policy: https, or http on loopback when the seam allows it. */
export function checkUrl(raw: string | URL, what: string, policy: HttpPolicy = {}): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigurationError(`${what}: \`${String(raw)}\` is not a valid URL`);
  }
  if (url.protocol === 'https:') return url;
  if (url.protocol === 'http:' && policy.allowInsecureLoopback && LOOPBACK.has(url.hostname)) return url;
  throw new ConfigurationError(`${what}: only https URLs are accepted, got \`${redactUrl(url)}\``);
}

/** A URL safe to log: signed query strings (storage URLs) carry credentials. */
export function redactUrl(url: string | URL): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}${u.search ? '?…' : ''}`;
  } catch {
    return '<invalid url>';
  }
}

export interface FollowOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
  policy?: HttpPolicy;
  maxRedirects?: number;
  what: string;
}

/**
 * fetch with redirects followed by hand: every hop is checked against the policy, a POST
 * becomes a GET without body (as browsers do for 301/302/303), and `authorization` is dropped
 * as soon as the origin changes.
 */
export async function fetchFollowing(start: URL, options: FollowOptions): Promise<{ response: Response; url: URL }> {
  let url = start;
  let method = options.method ?? 'GET';
  let body = options.body;
  const headers = { ...options.headers };
  for (let hop = 0; ; hop++) {
    const init: RequestInit = { method, headers, redirect: 'manual' };
    if (body !== undefined) init.body = body;
    if (options.signal) init.signal = options.signal;
    const response = await fetch(url, init);
    const location = response.headers.get('location');
    if (![301, 302, 303, 307, 308].includes(response.status) || !location) return { response, url };
    await response.body?.cancel();
    if (hop >= (options.maxRedirects ?? 5)) throw new DataError(`${options.what}: too many redirects (last: ${redactUrl(url)})`);
    const next = checkUrl(new URL(location, url), `${options.what} (redirect)`, options.policy);
    if (next.origin !== url.origin) {
      for (const key of Object.keys(headers)) if (key.toLowerCase() === 'authorization') delete headers[key];
    }
    if (response.status === 303 || ((response.status === 301 || response.status === 302) && method === 'POST')) {
      method = 'GET';
      body = undefined;
      for (const key of Object.keys(headers)) if (key.toLowerCase() === 'content-type') delete headers[key];
    }
    url = next;
  }
}

export interface DownloadOptions {
  logger: Logger;
  /** What is downloaded, for messages (`Kaggle dataset owner/slug`). */
  label: string;
  signal?: AbortSignal;
  sleep?: Sleep;
  /** Consecutive failed attempts (no new bytes) before giving up. */
  maxAttempts?: number;
  /** First backoff delay; doubles after each consecutive failure (capped at 60 s). */
  baseDelayMs?: number;
  /** Turn a non-retryable HTTP status into the error the user sees. */
  httpError?: (response: Response) => Error;
}

export interface DownloadResult {
  file: string;
  bytes: number;
  sha256: string;
  md5: string;
  /** The MD5 the server announced (`x-goog-hash`), verified; undefined when none was sent. */
  serverMd5?: string;
  /** Requests made, and how many of them resumed a partial download. */
  attempts: number;
  resumes: number;
}

/** Opens the body from byte `offset` (sends `Range` when > 0); returns the final response. */
export type OpenRange = (offset: number) => Promise<Response>;

class RetryableError extends Error {}

/** `x-goog-hash: crc32c=…,md5=<base64>` → md5 as hex. */
export function md5FromGoogHash(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const [key, ...rest] = part.trim().split('=');
    if (key === 'md5') return Buffer.from(rest.join('='), 'base64').toString('hex');
  }
  return undefined;
}

export function rangeHeaders(offset: number): Record<string, string> {
  return offset > 0 ? { range: `bytes=${offset}-` } : {};
}

/**
 * Download into `dest` (created or truncated), resuming with Range after a dropped or
 * truncated stream and retrying 5xx / 429 / connection loss with exponential backoff.
 * Verifies the announced MD5; the caller checks the sha256 it pinned.
 */
export async function downloadResumable(dest: string, openRange: OpenRange, options: DownloadOptions): Promise<DownloadResult> {
  const { logger, label, signal } = options;
  const sleep = options.sleep ?? realSleep;
  const maxAttempts = options.maxAttempts ?? 5;
  const baseDelay = options.baseDelayMs ?? 1000;
  const handle = await open(dest, 'w');
  let md5: Hash = createHash('md5');
  let sha: Hash = createHash('sha256');
  let offset = 0;
  let total: number | undefined;
  let serverMd5: string | undefined;
  let failures = 0;
  let attempts = 0;
  let resumes = 0;
  const progress = logger.progress(`download ${label}`, undefined, 'bytes');

  const restart = async (why: string): Promise<void> => {
    logger.warn(`${label}: ${why}; starting over from byte 0`);
    await handle.truncate(0);
    md5 = createHash('md5');
    sha = createHash('sha256');
    offset = 0;
    total = undefined;
    progress.set(0);
  };

  try {
    for (;;) {
      if (signal?.aborted) throw new InterruptedError();
      const startOffset = offset;
      attempts++;
      if (offset > 0) resumes++;
      try {
        let response: Response;
        try {
          response = await openRange(offset);
        } catch (error) {
          throw asRetryable(error, signal);
        }
        if (response.status === 416 && offset > 0 && total === offset) {
          await response.body?.cancel();
          break;
        }
        if (response.status >= 500 || response.status === 429 || response.status === 408) {
          await response.body?.cancel();
          throw new RetryableError(`HTTP ${response.status}`);
        }
        if (response.status !== 200 && response.status !== 206) {
          const error = options.httpError ? options.httpError(response) : new DataError(`${label}: HTTP ${response.status} ${response.statusText}`);
          await response.body?.cancel();
          throw error;
        }
        const announced = md5FromGoogHash(response.headers.get('x-goog-hash'));
        if (response.status === 206) {
          const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(response.headers.get('content-range') ?? '');
          if (!range || Number(range[1]) !== offset) {
            await response.body?.cancel();
            await restart(`server answered the range request with \`${response.headers.get('content-range') ?? 'no Content-Range'}\``);
            continue;
          }
          if (range[3] !== '*') total = Number(range[3]);
        } else {
          if (offset > 0) await restart('server ignored the Range request');
          const length = response.headers.get('content-length');
          total = length !== null ? Number(length) : undefined;
        }
        if (announced) {
          if (serverMd5 && serverMd5 !== announced) {
            await response.body?.cancel();
            await restart('the file changed on the server during the download');
            serverMd5 = announced;
            continue;
          }
          serverMd5 = announced;
        }
        if (!response.body) throw new RetryableError('empty response body');
        try {
          for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
            await handle.write(chunk, 0, chunk.length, offset);
            md5.update(chunk);
            sha.update(chunk);
            offset += chunk.length;
            progress.set(offset);
          }
        } catch (error) {
          throw asRetryable(error, signal, `connection lost after ${offset} bytes`);
        }
        if (total !== undefined && offset < total) throw new RetryableError(`stream ended after ${offset} of ${total} bytes`);
        if (total !== undefined && offset > total) throw new DataError(`${label}: received ${offset} bytes, more than the ${total} announced`);
        break;
      } catch (error) {
        if (!(error instanceof RetryableError)) throw error;
        failures = offset > startOffset ? 1 : failures + 1;
        if (failures >= maxAttempts || attempts >= maxAttempts * 4) {
          throw new DataError(`${label}: download failed after ${attempts} attempts: ${error.message}`, {
            hint: 'the server or the connection kept failing; nothing was placed',
          });
        }
        const delay = Math.min(baseDelay * 2 ** (failures - 1), 60_000);
        logger.warn(`${label}: ${error.message}; ${offset > 0 ? `resuming from byte ${offset}` : 'retrying'} in ${(delay / 1000).toFixed(1)} s (attempt ${attempts + 1})`);
        await sleep(delay);
      }
    }
  } finally {
    await handle.close();
    progress.done();
  }

  const result: DownloadResult = { file: dest, bytes: offset, sha256: sha.digest('hex'), md5: md5.digest('hex'), attempts, resumes };
  if (serverMd5) {
    result.serverMd5 = serverMd5;
    if (serverMd5 !== result.md5) {
      throw new DataError(`${label}: MD5 mismatch: the server announced ${serverMd5} (x-goog-hash), the ${offset} bytes received hash to ${result.md5}; the download is corrupt and nothing was placed`);
    }
  }
  return result;
}

function asRetryable(error: unknown, signal: AbortSignal | undefined, what?: string): Error {
  if (signal?.aborted) return new InterruptedError();
  const e = error as Error & { cause?: { code?: string; message?: string } };
  if (e.name === 'AbortError') return e;
  if (e instanceof RetryableError || e.name === 'DataError' || e.name === 'ConfigurationError') return e;
  // undici reports network trouble as TypeError (`fetch failed`, `terminated`) with the socket error as cause.
  const cause = e.cause?.code ?? e.cause?.message ?? e.message;
  return new RetryableError(what ? `${what} (${cause})` : `connection failed (${cause})`);
}

/** Throw a DataError when `actual` differs from the pinned `expected` sha256. */
export function verifySha256(expected: string | undefined, actual: string, what: string): void {
  if (expected && expected.toLowerCase() !== actual) {
    throw new DataError(`${what}: sha256 mismatch: expected ${expected.toLowerCase()} (pinned \`sha256\` param), got ${actual}; nothing was placed`, {
      field: 'sha256',
      hint: 'if the source changed on purpose, update `sha256` in pipeline.yaml',
    });
  }
}

/** The `url` source: GET with redirects (each hop https), Range resume, pinned sha256. */
export async function downloadUrl(
  rawUrl: string,
  dest: string,
  options: DownloadOptions & { policy?: HttpPolicy; sha256?: string },
): Promise<DownloadResult> {
  const url = checkUrl(rawUrl, '`url`', options.policy);
  const openRange: OpenRange = async (offset) => {
    const follow: FollowOptions = { headers: { 'user-agent': 'skin-twin-mlops', ...rangeHeaders(offset) }, what: options.label };
    if (options.signal) follow.signal = options.signal;
    if (options.policy) follow.policy = options.policy;
    return (await fetchFollowing(url, follow)).response;
  };
  const result = await downloadResumable(dest, openRange, {
    httpError: (r) => new DataError(`${options.label}: HTTP ${r.status} ${r.statusText} from ${redactUrl(url)}`),
    ...options,
  });
  verifySha256(options.sha256, result.sha256, options.label);
  return result;
}
