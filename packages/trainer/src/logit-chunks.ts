// The logits of a forward pass, a chunk of rows at a time: where a batch's [B T, V] logits would pass
// a size (CHUNKED_HEAD_BYTES in training and evaluation), the model stops at the head's input and
// the head runs over chunks of rows, so no more than that many bytes of logits exist at once (a
// Qwen-vocabulary batch of 4,096 tokens has 2.5 GB of them). Models without a separate head input
// (BERT's MLM head) give their whole logits as one chunk.
import * as tf from '@tensorflow/tfjs';
import type { ForwardOptions, Transformer } from './model';
import { linear } from './ops';

/** Logits larger than this (bytes) are never held: the head runs in chunks of rows. */
export const CHUNKED_HEAD_BYTES = 256 * 2 ** 20;

/** The head's input (Transformer.headInput) where idx's logits would pass maxBytes; undefined where they are held whole. */
export function largeHeadInput(model: Transformer, idx: tf.Tensor2D, opts: ForwardOptions, maxBytes = CHUNKED_HEAD_BYTES) {
  const [B, T] = idx.shape;
  return B * T * model.config.vocabSize * 4 > maxBytes ? model.headInput(idx, opts) : undefined;
}

/**
 * Calls visit(logits [n, V], first row, n) for consecutive chunks of the B T rows of idx's
 * logits, each in its own scope (what visit returns is kept; its tensors are freed after it).
 */
export function forEachLogitChunk<R extends tf.TensorContainer>(
  model: Transformer,
  idx: tf.Tensor2D,
  opts: ForwardOptions,
  visit: (logits: tf.Tensor2D, first: number, n: number) => R,
  maxBytes = CHUNKED_HEAD_BYTES,
): R[] {
  const [B, T] = idx.shape;
  const N = B * T;
  const V = model.config.vocabSize;
  return tf.tidy(() => {
    const viaHead = largeHeadInput(model, idx, opts, maxBytes);
    if (!viaHead) return [visit(model.forward(idx, opts).reshape([N, -1]) as tf.Tensor2D, 0, N)];
    const rows = Math.max(1, Math.floor(maxBytes / (V * 4)));
    const out: R[] = [];
    for (let r0 = 0; r0 < N; r0 += rows) {
      const n = Math.min(rows, N - r0);
      out.push(tf.tidy(() => visit(linear(tf.slice(viaHead.h, [r0, 0], [n, -1]), viaHead.head, undefined, true) as tf.Tensor2D, r0, n)));
    }
    return out;
  });
}
