// Keys and values of the positions a causal model has already read, per layer, so that decoding
// reads a prompt once and then costs one position per new token. The tensors are kept outside
// tf.tidy scopes and replaced as the cache grows; `dispose` frees them.

import * as tf from '@tensorflow/tfjs';

export class KvCache {
  /** Positions held (the next token's position). */
  length = 0;
  private readonly keys: Array<tf.Tensor | undefined> = [];
  private readonly values: Array<tf.Tensor | undefined> = [];

  /**
   * Appends a layer's new keys and values and answers the whole sequence's: positions lie along
   * `axis` (2 for [B, heads, T, hd], GPT's; 1 for [B, T, heads * hd], the llama architecture's).
   * Call once per layer per forward; `advance` after the last layer.
   */
  append<R extends tf.Rank>(layer: number, k: tf.Tensor<R>, v: tf.Tensor<R>, axis = 2): { k: tf.Tensor<R>; v: tf.Tensor<R> } {
    const oldK = this.keys[layer] as tf.Tensor<R> | undefined;
    const oldV = this.values[layer] as tf.Tensor<R> | undefined;
    const allK = oldK ? tf.concat([oldK, k], axis) : k;
    const allV = oldV ? tf.concat([oldV, v], axis) : v;
    this.keys[layer] = tf.keep(allK.clone());
    this.values[layer] = tf.keep(allV.clone());
    oldK?.dispose();
    oldV?.dispose();
    return { k: allK, v: allV };
  }

  advance(n: number): void {
    this.length += n;
  }

  /** Empties the cache (a context that slid past block_size is read again from its new start). */
  reset(): void {
    for (const t of [...this.keys, ...this.values]) t?.dispose();
    this.keys.length = 0;
    this.values.length = 0;
    this.length = 0;
  }

  dispose(): void {
    this.reset();
  }
}

/** The additive mask [T, offset + T] of T new queries at positions offset.. over every key before them; undefined for one query (it sees all). */
export function cachedCausalMask(offset: number, T: number): tf.Tensor2D | undefined {
  if (T === 1) return undefined;
  const S = offset + T;
  const data = new Float32Array(T * S);
  for (let i = 0; i < T; i++) for (let j = offset + i + 1; j < S; j++) data[i * S + j] = -1e9;
  return tf.tensor2d(data, [T, S]);
}

/**
 * Several sequences decoded in one forward pass (continuous batching): idx [1, N] holds consecutive
 * spans of new tokens, span s (lengths[s] of them) continuing the sequence in caches[s]. Each span
 * attends to its own cache only; every other layer runs on all N tokens at once.
 */
export interface DecodeSegments {
  caches: KvCache[];
  lengths: number[];
  /**
   * Each span's LoRA fine-tune of the model (Transformer.withLora on it), or undefined for the
   * model itself: the spans of several adapters share the base's products (span-lora.ts).
   */
  adapters?: Array<import('./model').Transformer | undefined>;
}

/** Each token's position (its cache's length, then on) and each span's first token. */
export function segmentPositions(seg: DecodeSegments): { positions: Int32Array; starts: number[] } {
  const total = seg.lengths.reduce((a, b) => a + b, 0);
  const positions = new Int32Array(total);
  const starts: number[] = [];
  let at = 0;
  seg.lengths.forEach((n, s) => {
    starts.push(at);
    const from = (seg.caches[s] as KvCache).length;
    for (let i = 0; i < n; i++) positions[at + i] = from + i;
    at += n;
  });
  return { positions, starts };
}
