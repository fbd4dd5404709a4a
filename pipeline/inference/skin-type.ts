// Skin-type classifier output handling: probabilities as the original chain reported them
// (softmax over Dry, Normal, Oily), whether the model ends in a Softmax or outputs logits.

export const SKIN_TYPE_LABELS = ['Dry', 'Normal', 'Oily'] as const;
export type SkinTypeLabel = (typeof SKIN_TYPE_LABELS)[number];

/** Numerically stable softmax. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) max = Math.max(max, logits[i]!);
  const out = new Float64Array(logits.length);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += out[i] = Math.exp(logits[i]! - max);
  for (let i = 0; i < out.length; i++) out[i] = out[i]! / sum;
  return out;
}

/** Whether a row already is a probability vector (each in [0, 1], summing to 1 within float32 error). */
export function isProbabilities(row: ArrayLike<number>): boolean {
  let sum = 0;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (!(v >= 0 && v <= 1)) return false;
    sum += v;
  }
  return Math.abs(sum - 1) <= 1e-4 * Math.max(1, row.length);
}

/** `sk_p0..sk_p2` for one image: kept when already probabilities, else softmax of the logits. */
export function skinTypeProbabilities(row: ArrayLike<number>): Float64Array {
  if (row.length !== SKIN_TYPE_LABELS.length) {
    throw new RangeError(`skin-type output has ${row.length} values per image, expected ${SKIN_TYPE_LABELS.length} (${SKIN_TYPE_LABELS.join(', ')})`);
  }
  return isProbabilities(row) ? Float64Array.from(row) : softmax(row);
}

/** Per-image probabilities from a batched `[B, 3]` output. */
export function skinTypeBatch(data: Float32Array, dims: readonly number[]): Float64Array[] {
  if (dims.length !== 2 || dims[1] !== SKIN_TYPE_LABELS.length) {
    throw new RangeError(`skin-type output has shape [${dims.join(', ')}], expected [batch, ${SKIN_TYPE_LABELS.length}]`);
  }
  const k = SKIN_TYPE_LABELS.length;
  return Array.from({ length: dims[0]! }, (_, i) => skinTypeProbabilities(data.subarray(i * k, i * k + k)));
}

/** The most probable label (first on ties). */
export function skinTypeLabel(probs: ArrayLike<number>): SkinTypeLabel {
  let best = 0;
  for (let i = 1; i < probs.length; i++) if (probs[i]! > probs[best]!) best = i;
  return SKIN_TYPE_LABELS[best]!;
}
