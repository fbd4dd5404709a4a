// A thread of the preprocessing pool (preprocess-pool.ts): reads a file, decodes it with
// libjpeg-turbo on this thread, once per DCT scale its specs call for, and resamples it for each
// requested input size, or probes it for prepare-data's validation. Images only sharp can decode
// (or that libjpeg-turbo refuses) are sent back for the parent to decode.

import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { sha256 } from '../../core/fs.ts';
import { readJpegHeader, type JpegHeader } from './jpeg-header.ts';
import { useTurboJpeg, type DraftScale, type TurboJpegLocation } from './jpeg.ts';
import { probeJpeg, type ProbeBad, type ProbeOk } from './probe.ts';
import { decodeJpeg, decodeScale, normalizeToCHW, preprocessDecoded, type DecodedImage, type PreprocessedImage, type PreprocessSpec } from './preprocess.ts';

/** A model input: its size and resize mode, and when given, the normalisation of a float CHW tensor. */
export interface PoolSpec extends PreprocessSpec {
  normalize?: {
    mean: readonly number[];
    std: readonly number[];
    /**
     * Where the tensor goes (a batch, at the image's place in it). The worker's buffer then goes
     * back to the worker for the next image: no fresh 0.6–4.9 MB per image for the calling
     * thread's garbage collector. Never sent to the worker.
     */
    into?: { array: Float32Array; offset: number };
  };
}

/**
 * preprocessImage's result for one spec: the uint8 pixels, or, when the spec asks for
 * normalisation, the float CHW tensor instead.
 */
export type PoolImage = Omit<PreprocessedImage, 'pixels'> & { pixels?: Buffer; tensor?: Float32Array };

export interface WorkerRequest {
  id: number;
  /** A file to read, or the image's bytes. */
  path?: string;
  bytes?: Uint8Array;
  /** Sizes to preprocess it for; none when probing. */
  specs: PoolSpec[];
  /** Probe instead (probe.ts): validation facts, thumbnail statistics and the file's sha256. */
  probe?: true;
}

/** A probe by a worker: probe.ts's result and the bytes' sha256. */
export interface PoolProbe {
  probe: ProbeOk | ProbeBad;
  sha256: string;
}

export type WorkerReply =
  | { id: number; ok: true; images: PoolImage[] }
  | ({ id: number; ok: true } & PoolProbe)
  | { id: number; ok: false; fallback: true; bytes?: Uint8Array }
  | { id: number; ok: false; fallback: false; message: string; code?: string };

export interface WorkerOptions {
  /** Marks a thread started by the pool: this module is also imported elsewhere for preprocessSpec. */
  preprocessWorker: true;
  /** Where koffi and libturbojpeg are (the bundle may live where node_modules is not above it). */
  turboJpeg: TurboJpegLocation | undefined;
  /** Set to 1 by the pool when it closes: requests still queued are then dropped unread. */
  stopping: Int32Array;
}

/** Sent by the pool after setting `stopping`: the thread closes its port and ends on its own. */
export interface WorkerStop {
  stop: true;
}

/** Tensor memory the pool has copied out of and hands back (transferred) for later images. */
export interface WorkerRecycle {
  recycle: ArrayBuffer[];
}

// One decode buffer per thread, grown to the largest image seen.
let decodeBuffer: Buffer = Buffer.allocUnsafeSlow(0);

// Tensor buffers handed back by the pool, by size; a few per size cover the images in flight.
const spareTensors: ArrayBuffer[] = [];
const MAX_SPARE_TENSORS = 8;

function tensorMemory(bytes: number): ArrayBuffer {
  const i = spareTensors.findIndex((b) => b.byteLength === bytes);
  return i >= 0 ? spareTensors.splice(i, 1)[0]! : new ArrayBuffer(bytes);
}

function handle(request: WorkerRequest): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  let bytes: Buffer;
  try {
    bytes = request.bytes ? Buffer.from(request.bytes.buffer, request.bytes.byteOffset, request.bytes.byteLength) : readFileSync(request.path!);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    return { reply: { id: request.id, ok: false, fallback: false, message: e.message, ...(e.code ? { code: e.code } : {}) }, transfer: [] };
  }
  if (request.probe) {
    const probe = probeJpeg(bytes);
    return probe ? { reply: { id: request.id, ok: true, probe, sha256: sha256(bytes) }, transfer: [] } : sharpsTurn(request.id, bytes);
  }
  const header = readJpegHeader(bytes);
  const images = header ? decodeEachScale(bytes, header, request.specs) : undefined;
  if (!images) return sharpsTurn(request.id, bytes);
  const transfer = images.map((i) => (i.tensor ?? i.pixels!).buffer as ArrayBuffer);
  return { reply: { id: request.id, ok: true, images }, transfer };
}

/** sharp's turn, in the parent: the bytes go back so the file is not read twice. */
function sharpsTurn(id: number, bytes: Buffer): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  const copy = new Uint8Array(bytes);
  return { reply: { id, ok: false, fallback: true, bytes: copy }, transfer: [copy.buffer as ArrayBuffer] };
}

/** Each spec's image, decoded once per distinct DCT scale; undefined when libjpeg-turbo cannot decode it. */
function decodeEachScale(bytes: Buffer, header: JpegHeader, specs: PoolSpec[]): PoolImage[] | undefined {
  const scales = specs.map((spec) => decodeScale(header, spec));
  const images: PoolImage[] = [];
  for (const scale of new Set<DraftScale>(scales)) {
    const decoded = decodeJpeg(bytes, header, scale, decodeBuffer);
    if (!decoded) return undefined;
    decodeBuffer = decoded.buffer;
    specs.forEach((spec, i) => {
      if (scales[i] === scale) images[i] = preprocessSpec(decoded, spec, tensorMemory);
    });
  }
  return images;
}

/**
 * preprocessDecoded, then the normalised tensor instead of the pixels when asked for: on this
 * thread, not the parent's. `memory` gives the tensor's buffer.
 */
export function preprocessSpec(image: DecodedImage, spec: PoolSpec, memory = (bytes: number) => new ArrayBuffer(bytes)): PoolImage {
  const { pixels, ...pre } = preprocessDecoded(image, spec);
  if (!spec.normalize) return { ...pre, pixels };
  const tensor = new Float32Array(memory(12 * spec.size * spec.size));
  normalizeToCHW(pixels, spec.size, spec.size, spec.normalize.mean, spec.normalize.std, tensor);
  return { ...pre, tensor };
}

if (parentPort && (workerData as WorkerOptions | undefined)?.preprocessWorker) {
  const options = workerData as WorkerOptions;
  useTurboJpeg(options.turboJpeg);
  const port = parentPort;
  // The pool never terminates a thread mid-decode (a native call cut short can take the process
  // down): it raises `stopping`, the queue drains without work, and the stop message closes the port.
  port.on('message', (request: WorkerRequest | WorkerStop | WorkerRecycle) => {
    if ('stop' in request) return port.close();
    if ('recycle' in request) {
      for (const buffer of request.recycle) if (spareTensors.length < MAX_SPARE_TENSORS) spareTensors.push(buffer);
      return;
    }
    if (Atomics.load(options.stopping, 0) === 1) return;
    let out: { reply: WorkerReply; transfer: ArrayBuffer[] };
    try {
      out = handle(request);
    } catch (error) {
      out = { reply: { id: request.id, ok: false, fallback: false, message: (error as Error).message }, transfer: [] };
    }
    port.postMessage(out.reply, out.transfer);
  });
}
