// Sample packing: several short examples in one row of T positions, instead of one example per
// row padded to T. Each position carries its example's segment id (-1: padding) and its position
// within the example, so attention never crosses an example (a block-diagonal causal mask) and
// positions restart at 0 for each: every example's logits, and so its loss, are those it has alone.

import * as tf from '@tensorflow/tfjs';
import type { Batch } from './data';
import { fusedKernels } from './native-backend';
import { Rng, type RngState } from './rng';

/** Which example each position of a packed batch belongs to (-1: padding), and its position in it. */
export interface PackedRows {
  segments: Int32Array;
  positions: Int32Array;
}

/** One example: its tokens and (supervised data) their loss weights. */
export interface PackedExample {
  tokens: Int32Array;
  weights?: Float32Array;
}

/**
 * A stream's documents (starting at `docStarts`) as examples of at most T + 1 tokens: a longer one
 * is cut into pieces that overlap by one token, so each of its targets is trained once.
 */
export function streamExamples(tokens: Int32Array, docStarts: readonly number[], T: number, weights?: Float32Array): PackedExample[] {
  const out: PackedExample[] = [];
  const starts = docStarts.length > 0 ? docStarts : [0];
  starts.forEach((start, i) => {
    const end = starts[i + 1] ?? tokens.length;
    for (let at = start; at < end - 1; at += T) {
      const stop = Math.min(end, at + T + 1);
      out.push({ tokens: tokens.subarray(at, stop), weights: weights?.subarray(at, stop) });
    }
  });
  return out;
}

/** Rows of T positions holding the examples `ids` in order, each starting a new row when it does not fit; at most B rows. */
export function packRows(
  examples: readonly PackedExample[],
  ids: Iterable<number>,
  B: number,
  T: number,
  perRow = Number.POSITIVE_INFINITY,
): Batch & { packing: PackedRows; examples: number } {
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  const w = new Float32Array(B * T);
  const segments = new Int32Array(B * T).fill(-1);
  const positions = new Int32Array(B * T);
  let row = 0;
  let fill = 0;
  let inRow = 0;
  let placed = 0;
  for (const id of ids) {
    const ex = examples[id] as PackedExample;
    const n = ex.tokens.length - 1; // positions it takes
    if (n > T) throw new RangeError(`an example of ${n + 1} tokens does not fit a row of ${T} positions`);
    if (fill + n > T || inRow >= perRow) {
      row++;
      fill = 0;
      inRow = 0;
    }
    if (row >= B) break;
    const at = row * T + fill;
    x.set(ex.tokens.subarray(0, n), at);
    y.set(ex.tokens.subarray(1), at);
    if (ex.weights) w.set(ex.weights.subarray(1), at);
    else w.fill(1, at, at + n);
    segments.fill(placed, at, at + n);
    for (let i = 0; i < n; i++) positions[at + i] = i;
    fill += n;
    inRow++;
    placed++;
  }
  return { B, T, x, y, w, packing: { segments, positions }, examples: placed };
}

/** What attention needs of packed rows: each token's position in its example, each query's first key [B, T] (the fused kernel), the [B, 1, T, T] mask (the tfjs ops only). */
export interface PackedAttention {
  positions: tf.Tensor1D;
  keyStart: tf.Tensor2D;
  mask?: tf.Tensor;
}

/** PackedAttention of packed rows; the T x T mask only where the tfjs ops will read it. */
export function packedAttention(p: PackedRows, B: number, T: number): PackedAttention {
  return {
    positions: tf.tensor1d(p.positions, 'int32'),
    keyStart: tf.tensor2d(packedKeyStarts(p, B, T), [B, T], 'int32'),
    mask: fusedKernels() ? undefined : packedMask(p, B, T),
  };
}

/**
 * The first key each query of packed rows may read, [B * T]: its example's first position in the
 * row (padding reads itself only). With causality this is packedMask's block-diagonal mask, as the
 * flash kernel takes it (no T x T tensor).
 */
export function packedKeyStarts(p: PackedRows, B: number, T: number): Int32Array {
  const start = new Int32Array(B * T);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const si = p.segments[b * T + i] as number;
      const same = i > 0 && si >= 0 && p.segments[b * T + i - 1] === si;
      start[b * T + i] = same ? (start[b * T + i - 1] as number) : i;
    }
  }
  return start;
}

/** The additive attention mask of packed rows, [B, 1, T, T]: 0 where query i may read key j (same example, j <= i), -1e9 elsewhere. */
export function packedMask(p: PackedRows, B: number, T: number): tf.Tensor4D {
  const m = new Float32Array(B * T * T).fill(-1e9);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < T; i++) {
      const si = p.segments[b * T + i] as number;
      if (si < 0) {
        m[(b * T + i) * T + i] = 0; // padding reads itself (its rows carry no loss)
        continue;
      }
      for (let j = i; j >= 0 && p.segments[b * T + j] === si; j--) m[(b * T + i) * T + j] = 0;
    }
  }
  return tf.tensor4d(m, [B, 1, T, T]);
}

/** Training batches of packed examples drawn at random (with replacement); resumable by its RNG state. */
export class PackedSource {
  private readonly rng: Rng;

  constructor(
    private readonly examples: readonly PackedExample[],
    private readonly B: number,
    private readonly T: number,
    seed: number | RngState,
  ) {
    if (examples.length === 0) throw new RangeError('packing needs at least one example');
    this.rng = new Rng(seed);
  }

  next(): Batch {
    const { rng, examples } = this;
    const draws = function* () {
      for (;;) yield rng.int(examples.length);
    };
    return packRows(examples, draws(), this.B, this.T);
  }

  state(): RngState {
    return this.rng.state();
  }
}

/** A fixed set of evaluation batches: the examples in order, packed, at most `n` batches. */
export function packedEvalBatches(examples: readonly PackedExample[], B: number, T: number, n: number): Batch[] {
  const out: Batch[] = [];
  let next = 0;
  while (out.length < n && next < examples.length) {
    const ids = function* () {
      for (let i = next; i < examples.length; i++) yield i;
    };
    const batch = packRows(examples, ids(), B, T);
    out.push(batch);
    next += batch.examples;
  }
  return out;
}
