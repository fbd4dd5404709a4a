// The one place sharp is loaded and tuned. Loaded lazily so stages without images never pay for it.

import type { Sharp, SharpOptions } from 'sharp';

type SharpFactory = (input?: Buffer | string, options?: SharpOptions) => Sharp;

let loaded: Promise<SharpFactory> | undefined;

export interface SharpTuning {
  /** libvips worker threads per image (sharp.concurrency). */
  threads?: number;
}

/**
 * Load sharp once and tune it for streaming many small images: no operation cache (each image
 * is seen once; the cache only holds memory), and libvips threads set explicitly — on glibc
 * without jemalloc sharp defaults to 1 thread, and the parallelism must come from several
 * images in flight on libuv's pool instead.
 */
export async function loadSharp(tuning: SharpTuning = {}): Promise<SharpFactory> {
  loaded ??= import('sharp').then(({ default: sharp }) => {
    sharp.cache(false);
    return sharp as unknown as SharpFactory;
  });
  const sharp = await loaded;
  if (tuning.threads !== undefined) (sharp as unknown as { concurrency(n: number): number }).concurrency(tuning.threads);
  return sharp;
}

/** Options for decoding untrusted input: truncated or corrupt data fails instead of returning gray. */
export const DECODE_OPTIONS: SharpOptions = { failOn: 'warning', sequentialRead: true, autoOrient: true };
