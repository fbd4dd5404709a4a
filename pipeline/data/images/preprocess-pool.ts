// Image preprocessing on worker threads, one per core: each reads, decodes (libjpeg-turbo) and
// resamples whole images, so decoding and resampling use every core and the calling thread only
// hands out paths and collects pixels. With decoding on libuv's pool and resampling on the
// calling thread instead, the two contended for the same cores and the calling thread became the
// bottleneck (docs/data-performance.md). Same results as preprocessImage (and probeImage, for
// prepare-data's validation), byte for byte: the workers run the same functions, and images only
// sharp decodes come back to this thread.

import { existsSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { turboJpegLocation } from './jpeg.ts';
import { decodeWithSharp } from './preprocess.ts';
import { probeWithSharp } from './probe.ts';
import { preprocessSpec, type PoolImage, type PoolProbe, type PoolSpec, type WorkerOptions, type WorkerRecycle, type WorkerReply, type WorkerRequest, type WorkerStop } from './preprocess-worker.ts';
import { sha256 } from '../../core/fs.ts';

export type { PoolImage, PoolProbe, PoolSpec } from './preprocess-worker.ts';

interface Pending {
  resolve: (result: PoolImage[] | PoolProbe) => void;
  reject: (error: Error) => void;
  input: string | Buffer;
  specs: PoolSpec[];
  probe?: true;
}

interface Thread {
  worker: Worker;
  pending: Map<number, Pending>;
}

export class PreprocessPool {
  private nextId = 0;
  private failure: Error | undefined;
  private closing = false;

  private constructor(
    private readonly threads: Thread[],
    private readonly stopping: Int32Array,
  ) {
    for (const thread of threads) {
      thread.worker.on('message', (reply: WorkerReply) => this.settle(thread, reply));
      thread.worker.on('error', (error) => this.fail(error));
      thread.worker.on('exit', (code) => {
        if (!this.closing) this.fail(new Error(`preprocessing worker exited with code ${code}`));
      });
      thread.worker.unref();
    }
  }

  /** Start `count` workers (default: the cores this process may use). */
  static async create(count = availableParallelism()): Promise<PreprocessPool> {
    const script = await workerScript();
    const stopping = new Int32Array(new SharedArrayBuffer(4));
    const workerData: WorkerOptions = { preprocessWorker: true, turboJpeg: turboJpegLocation(), stopping };
    const threads = Array.from({ length: Math.max(1, count) }, () => ({ worker: new Worker(script, { workerData, resourceLimits: WORKER_LIMITS }), pending: new Map() }));
    return new PreprocessPool(threads, stopping);
  }

  get size(): number {
    return this.threads.length;
  }

  /**
   * Decode `input` (a file path or its bytes) and bring it to each spec's input size: what
   * preprocessImage gives for each spec, or the normalised float CHW tensor instead where the
   * spec asks for one (computed on the worker too; written at `normalize.into` when given, and
   * `tensor` is then that part of it). Rejects with the read error (its `code` kept) or sharp's
   * decoding error.
   */
  preprocess(input: string | Buffer, specs: readonly PoolSpec[]): Promise<PoolImage[]> {
    // A destination array stays here: posted, it would be copied to the worker.
    const posted = specs.map(({ normalize, ...spec }) => (normalize ? { ...spec, normalize: { mean: normalize.mean, std: normalize.std } } : spec));
    return this.send(input, { specs: posted }, { specs: [...specs] });
  }

  /**
   * probe.ts's probeImage of `input` (a file path or its bytes) and its sha256, on a worker
   * (sharp's probe, for what libjpeg-turbo does not take, on this thread). Rejects with the read
   * error, its `code` kept.
   */
  probe(input: string | Buffer): Promise<PoolProbe> {
    return this.send(input, { specs: [], probe: true }, { specs: [], probe: true });
  }

  private send<T>(input: string | Buffer, body: Omit<WorkerRequest, 'id'>, pending: Pick<Pending, 'specs' | 'probe'>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    // The least busy thread; a worker holds its pending requests in arrival order.
    const thread = this.threads.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
    const id = this.nextId++;
    const request: WorkerRequest = { id, ...body };
    const transfer: ArrayBuffer[] = [];
    if (typeof input === 'string') request.path = input;
    else {
      const copy = new Uint8Array(input);
      request.bytes = copy;
      transfer.push(copy.buffer as ArrayBuffer);
    }
    return new Promise<T>((resolve, reject) => {
      if (thread.pending.size === 0) thread.worker.ref();
      thread.pending.set(id, { resolve: resolve as Pending['resolve'], reject, input, ...pending });
      thread.worker.postMessage(request, transfer);
    });
  }

  /**
   * Stop the workers; requests still pending are rejected. A worker finishes the image it holds
   * (cutting a native decode short can crash the process), drops its queue and ends; one that has
   * not ended after 30 s is terminated.
   */
  async close(): Promise<void> {
    this.fail(new Error('preprocessing pool closed'));
    this.closing = true;
    Atomics.store(this.stopping, 0, 1);
    await Promise.all(
      this.threads.map(async ({ worker }) => {
        if (worker.threadId < 0) return; // already ended
        // Referenced while it stops: whoever awaits close() must not see the process end first.
        worker.ref();
        const ended = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        worker.postMessage({ stop: true } satisfies WorkerStop);
        const overdue = setTimeout(() => void worker.terminate(), 30_000);
        overdue.unref();
        await ended;
        clearTimeout(overdue);
      }),
    );
  }

  private settle(thread: Thread, reply: WorkerReply): void {
    const p = thread.pending.get(reply.id);
    if (!p) return;
    thread.pending.delete(reply.id);
    if (thread.pending.size === 0) thread.worker.unref();
    if (reply.ok && 'probe' in reply) {
      p.resolve({ probe: reply.probe, sha256: reply.sha256 });
    } else if (reply.ok) {
      const recycle: ArrayBuffer[] = [];
      const images = reply.images.map((image, j) => {
        if (image.pixels) return { ...image, pixels: Buffer.from(image.pixels.buffer, image.pixels.byteOffset, image.pixels.byteLength) };
        const out = placed(image, p.specs[j]!);
        if (out !== image) recycle.push(image.tensor!.buffer as ArrayBuffer);
        return out;
      });
      if (recycle.length > 0 && !this.closing) thread.worker.postMessage({ recycle } satisfies WorkerRecycle, recycle);
      p.resolve(images);
    } else if (reply.fallback) {
      const input = reply.bytes ? Buffer.from(reply.bytes.buffer, reply.bytes.byteOffset, reply.bytes.byteLength) : p.input;
      const here = p.probe ? probeHere(input) : decodeHere(input, p.specs);
      void (here as Promise<PoolImage[] | PoolProbe>).then(p.resolve, p.reject);
    } else {
      p.reject(Object.assign(new Error(reply.message), reply.code ? { code: reply.code } : {}));
    }
  }

  private fail(error: Error): void {
    this.failure ??= error;
    if (this.closing) return;
    for (const thread of this.threads) {
      for (const p of thread.pending.values()) p.reject(error);
      thread.pending.clear();
      thread.worker.unref();
    }
  }
}

/** sharp's path, on this thread, for what the workers' libjpeg-turbo cannot decode. */
async function decodeHere(input: string | Buffer, specs: readonly PoolSpec[]): Promise<PoolImage[]> {
  const decoded = await decodeWithSharp(typeof input === 'string' ? await readFile(input) : input);
  return specs.map((spec) => placed(preprocessSpec(decoded, spec), spec));
}

/** sharp's probe, on this thread, for what the workers' libjpeg-turbo cannot decode. */
async function probeHere(input: string | Buffer): Promise<PoolProbe> {
  const bytes = typeof input === 'string' ? await readFile(input) : input;
  return { probe: await probeWithSharp(bytes), sha256: sha256(bytes) };
}

/** The image with its tensor copied to the spec's `into`, when it has one, and pointing there. */
function placed(image: PoolImage, spec: PoolSpec): PoolImage {
  const into = spec.normalize?.into;
  if (!into || !image.tensor) return image;
  into.array.set(image.tensor, into.offset);
  return { ...image, tensor: into.array.subarray(into.offset, into.offset + image.tensor.length) };
}

// A worker's pixels live outside the V8 heap; a small young generation keeps each thread's heap
// (and the process's peak RSS, two threads of it) from growing for nothing.
const WORKER_LIMITS = { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 128 };

let script: Promise<string> | undefined;

/**
 * The worker's script: dist/workers/preprocess.js next to the bundle this module was built into;
 * when running from the TypeScript sources (tests), a bundle made once per process with esbuild,
 * a development dependency, since a worker thread cannot load TypeScript.
 */
function workerScript(): Promise<string> {
  script ??= (async () => {
    const here = fileURLToPath(import.meta.url);
    if (!here.endsWith('.ts')) {
      for (let dir = dirname(here); ; dir = dirname(dir)) {
        const candidate = join(dir, 'workers', 'preprocess.js');
        if (existsSync(candidate)) return candidate;
        if (dirname(dir) === dir) throw new Error(`the preprocessing worker (dist/workers/preprocess.js) is missing beside ${here}: run npm run build`);
      }
    }
    const { build } = await import('esbuild');
    const outfile = join(tmpdir(), `skintwin-preprocess-worker-${process.pid}.mjs`);
    await build({
      entryPoints: [join(dirname(here), 'preprocess-worker.ts')],
      outfile,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node20',
      external: ['sharp', 'onnxruntime-node', '@julusian/jpeg-turbo', 'koffi'],
      logLevel: 'error',
    });
    process.once('exit', () => rmSync(outfile, { force: true }));
    return outfile;
  })();
  return script;
}
