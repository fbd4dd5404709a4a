// The WebAssembly pixel kernels (resample.c: resampling and normalisation), instantiated once per thread on first use, and
// their linear memory: one scratch region from __heap_base that grows to the largest call seen.

import { WASM_BASE64 } from './module.ts';

// The few WebAssembly JS API members used here (the project's type libraries leave them out).
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { exports: unknown };
}

interface Exports {
  memory: WasmMemory;
  __heap_base: { value: number };
  rgb_to_rgbx(src: number, n: number, dst: number): void;
  rgbx_to_rgb(src: number, n: number, dst: number): void;
  reduce2x2(src: number, width: number, height: number, dst: number): void;
  reduce_blocks(src: number, width: number, x0: number, y0: number, bw: number, bh: number, nx: number, ny: number, ox: number, oy: number, multiplier: number, dst: number, outW: number): void;
  resample_h(src: number, srcWidth: number, firstRow: number, rows: number, outWidth: number, start: number, count: number, weights: number, taps: number, dst: number): void;
  resample_v(src: number, rowBytes: number, rowOffset: number, outHeight: number, start: number, count: number, weights: number, taps: number, dst: number): void;
  normalize_chw(rgb: number, n: number, tables: number, out: number): void;
}

export interface ResampleKernels extends Exports {
  /**
   * Scratch memory of at least `bytes` bytes: its offset in linear memory, and a fresh byte view of
   * the whole memory (growing detaches earlier views, so take views only after the last call).
   */
  scratch(bytes: number): { base: number; heap: Uint8Array };
}

let kernels: ResampleKernels | undefined;

const PAGE = 65536;

export function resampleKernels(): ResampleKernels {
  if (kernels) return kernels;
  // A few KB: compiling synchronously costs well under a millisecond.
  const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;
  const module = new wasm.Module(Buffer.from(WASM_BASE64, 'base64'));
  const exports = new wasm.Instance(module, {}).exports as Exports;
  const base = Number(exports.__heap_base.value);
  kernels = Object.assign(Object.create(null) as object, exports, {
    scratch(bytes: number) {
      const memory = exports.memory;
      const needed = base + bytes - memory.buffer.byteLength;
      if (needed > 0) memory.grow(Math.ceil(needed / PAGE));
      return { base, heap: new Uint8Array(memory.buffer) };
    },
  }) as ResampleKernels;
  return kernels;
}
