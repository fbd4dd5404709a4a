// Small training utilities shared by the head trainers: Adam with L2 weight decay, inverse-frequency
// class weights, feature standardisation and a seeded shuffle. Float64 throughout: the heads are
// small, and the exported weights are rounded to float32 once, at the end.

import { Rng } from '../../data/synthetic/rng.ts';

/** A named flat parameter block; `decay` says whether L2 weight decay applies (weights, not biases). */
export interface ParamBlock {
  name: string;
  value: Float64Array;
  grad: Float64Array;
  decay: boolean;
}

export function paramBlock(name: string, size: number, decay: boolean): ParamBlock {
  return { name, value: new Float64Array(size), grad: new Float64Array(size), decay };
}

/** Adam (Kingma & Ba) with classic L2 decay added to the gradient of the decayed blocks. */
export class Adam {
  private readonly m: Float64Array[];
  private readonly v: Float64Array[];
  private t = 0;
  constructor(
    private readonly blocks: readonly ParamBlock[],
    private readonly lr: number,
    private readonly weightDecay: number,
    private readonly beta1 = 0.9,
    private readonly beta2 = 0.999,
    private readonly eps = 1e-8,
  ) {
    this.m = blocks.map((b) => new Float64Array(b.value.length));
    this.v = blocks.map((b) => new Float64Array(b.value.length));
  }
  /** One step from the accumulated gradients, which are then zeroed. */
  step(): void {
    this.t++;
    const c1 = 1 - this.beta1 ** this.t;
    const c2 = 1 - this.beta2 ** this.t;
    this.blocks.forEach((b, k) => {
      const m = this.m[k]!;
      const v = this.v[k]!;
      const wd = b.decay ? this.weightDecay : 0;
      for (let i = 0; i < b.value.length; i++) {
        const g = b.grad[i]! + wd * b.value[i]!;
        m[i] = this.beta1 * m[i]! + (1 - this.beta1) * g;
        v[i] = this.beta2 * v[i]! + (1 - this.beta2) * g * g;
        b.value[i] = b.value[i]! - (this.lr * (m[i]! / c1)) / (Math.sqrt(v[i]! / c2) + this.eps);
        b.grad[i] = 0;
      }
    });
  }
}

/** n / (K · n_k) per class: every class weighs the same in total; a class absent from training weighs 0. */
export function inverseFrequencyWeights(y: Int32Array, classes: number): Float64Array {
  const counts = new Float64Array(classes);
  for (const k of y) counts[k]!++;
  const present = counts.filter((c) => c > 0).length;
  return counts.map((c) => (c > 0 ? y.length / (present * c) : 0));
}

/** Per-column mean and standard deviation of row-major `x` [n, f]; a constant column gets std 1. */
export function standardisation(x: Float64Array, n: number, f: number): { mean: Float64Array; std: Float64Array } {
  const mean = new Float64Array(f);
  const std = new Float64Array(f);
  for (let i = 0; i < n; i++) for (let j = 0; j < f; j++) mean[j]! += x[i * f + j]!;
  for (let j = 0; j < f; j++) mean[j] = mean[j]! / n;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < f; j++) {
      const d = x[i * f + j]! - mean[j]!;
      std[j]! += d * d;
    }
  for (let j = 0; j < f; j++) {
    const s = Math.sqrt(std[j]! / n);
    // Float32 must be able to divide by it exactly enough: tiny spreads are treated as constant.
    std[j] = s > 1e-6 * Math.max(1, Math.abs(mean[j]!)) ? s : 1;
  }
  return { mean, std };
}

/** Seeded Fisher–Yates shuffle of 0..n−1 in place. */
export function shuffle(order: Int32Array, rng: Rng): void {
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
}

export { Rng };

/** Round every value to float32, as the ONNX file stores it. */
export function toFloat32(values: Float64Array): Float64Array {
  return values.map((v) => Math.fround(v));
}
