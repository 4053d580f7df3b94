// LoRA per span (continuous batching across adapters): the spans of a batched decoding step may
// each belong to another LoRA fine-tune of the same base. The base's products run once over every
// span's tokens; each span then adds its own adapter's low-rank product (x A scale) B to its rows,
// as that adapter's own forward pass does, so a request gets the numbers it gets served alone.

import * as tf from '@tensorflow/tfjs';
import type { DecodeSegments } from './kv-cache';
import type { Transformer } from './model';
import { linear } from './ops';

export interface SpanAdapters {
  /** Each span's first token and length, along axis 1 of [1, N, ...]. */
  starts: number[];
  lengths: number[];
  /** Each span's adapter (a LoRA model on the base: Transformer.withLora), or undefined: the base. */
  adapters: Array<Transformer | undefined>;
}

/** The spans of `segments` that name adapters (spans starting at `starts`); undefined when none do. */
export function spanAdapters(segments: DecodeSegments | undefined, starts: number[]): SpanAdapters | undefined {
  return segments?.adapters ? { starts, lengths: segments.lengths, adapters: segments.adapters } : undefined;
}

/**
 * y (the base's projection of `input`, [1, N, out]) plus, for each span whose adapter adapts
 * `target`, that adapter's low-rank product of the span's rows, computed as the architecture's own
 * forward pass computes it. `module` names the projection's parameters (`${module}.lora_A.weight`).
 * GPT: matrices [in, out], scale applied to x A; llama: [out, in] (nn.Linear's layout), scale
 * applied to the product.
 */
export function withSpanLora(y: tf.Tensor, input: tf.Tensor, spans: SpanAdapters, module: string, target: string, arch: 'gpt' | 'llama'): tf.Tensor {
  const transposed = arch === 'llama';
  const lora = (a: Transformer | undefined) => (a?.config.peft?.type === 'lora' && a.config.peft.targets.includes(target as never) ? a.config.peft : undefined);
  if (!spans.adapters.some((a) => lora(a))) return y;
  const out = y.shape[2] as number;
  const inDim = input.shape[2] as number;
  const parts = spans.lengths.map((n, s) => {
    const start = spans.starts[s] as number;
    const ys = y.slice([0, start, 0], [1, n, out]);
    const adapter = spans.adapters[s];
    const l = lora(adapter);
    if (!adapter || !l) return ys;
    const scale = l.alpha / l.rank;
    const xa = linear(input.slice([0, start, 0], [1, n, inDim]), adapter.param(`${module}.lora_A.weight`), undefined, transposed);
    if (transposed) return tf.add(ys, tf.mul(linear(xa, adapter.param(`${module}.lora_B.weight`), undefined, true), scale));
    return tf.add(ys, linear(tf.mul(xa, scale), adapter.param(`${module}.lora_B.weight`)));
  });
  return parts.length === 1 ? (parts[0] as tf.Tensor) : tf.concat(parts, 1);
}
