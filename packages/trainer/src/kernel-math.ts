// Backend-independent pieces of the kernels the trainer registers (wasm's and the native backend's):
// the shape of a batched matrix product, and the scatter-add of rows behind an embedding gradient.

import type * as tf from '@tensorflow/tfjs';

export interface ProductShape {
  batchShape: number[];
  batch: number;
  M: number;
  K: number;
  N: number;
}

/**
 * op(a) x op(b) for float32 operands with the same batch dimensions, else undefined (broadcast
 * batches and other dtypes are left to the backend's own kernel).
 */
export function productShape(a: tf.TensorInfo, b: tf.TensorInfo, transposeA: boolean, transposeB: boolean): ProductShape | undefined {
  const r = a.shape.length;
  const batchShape = a.shape.slice(0, -2);
  const sameBatch = b.shape.length === r && batchShape.every((d, i) => d === b.shape[i]);
  if (a.dtype !== 'float32' || b.dtype !== 'float32' || !sameBatch) return undefined;
  return {
    batchShape,
    batch: batchShape.reduce((x, y) => x * y, 1),
    M: (transposeA ? a.shape[r - 1] : a.shape[r - 2]) as number,
    K: (transposeA ? a.shape[r - 2] : a.shape[r - 1]) as number,
    N: (transposeB ? b.shape[r - 2] : b.shape[r - 1]) as number,
  };
}

/** UnsortedSegmentSum: row r of xs is added to output row ids[r] (ids outside [0, numSegments) are dropped). */
export function scatterAddRows(xs: Float32Array, ids: Int32Array, numSegments: number): Float32Array {
  const inner = xs.length / Math.max(ids.length, 1);
  const out = new Float32Array(numSegments * inner);
  for (let r = 0; r < ids.length; r++) {
    const seg = ids[r] as number;
    if (seg < 0 || seg >= numSegments) continue;
    const o = seg * inner;
    const s = r * inner;
    for (let j = 0; j < inner; j++) out[o + j] = (out[o + j] as number) + (xs[s + j] as number);
  }
  return out;
}
