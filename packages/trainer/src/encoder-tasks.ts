// What a trained model does besides generating: sentence embeddings (any architecture) and
// masked-token prediction (bert). Both run one forward pass per input, without gradients.

import type { Tokenizer } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import type { Transformer } from './model';

export type Pooling = 'mean' | 'cls';

export class InputError extends Error {
  constructor(
    message: string,
    readonly index: number,
  ) {
    super(message);
  }
}

/**
 * One vector per input: the mean of the final hidden states over the input's tokens, or (bert,
 * `cls`) the hidden state of a <|cls|> token put in front of it. Inputs longer than the model's
 * context are an error (InputError), never silently cut.
 */
export function embed(model: Transformer, tokenizer: Tokenizer, inputs: string[], pooling: Pooling): { vectors: number[][]; tokens: number } {
  const cls = tokenizer.special('cls');
  if (pooling === 'cls' && (model.config.arch !== 'bert' || cls === undefined)) throw new InputError('cls pooling needs a bert model with a <|cls|> token', -1);
  let tokens = 0;
  const vectors = inputs.map((text, i) => {
    const ids = pooling === 'cls' ? [cls as number, ...tokenizer.encode(text)] : tokenizer.encode(text);
    if (ids.length === 0) throw new InputError(`input ${i} is empty`, i);
    if (ids.length > model.config.blockSize) throw new InputError(`input ${i} has ${ids.length} tokens; this model's context is ${model.config.blockSize}`, i);
    tokens += ids.length;
    return tf.tidy(() => {
      const h = model.hidden(tf.tensor2d(ids, [1, ids.length], 'int32')).reshape([ids.length, -1]);
      const v = pooling === 'cls' ? h.slice([0, 0], [1, -1]).reshape([-1]) : tf.mean(h, 0);
      return Array.from(v.dataSync());
    });
  });
  return { vectors, tokens };
}

export interface MaskPrediction {
  /** Index of the mask among the input's tokens. */
  position: number;
  candidates: Array<{ tokenId: number; token: string; score: number }>;
}

/** The `topK` most likely tokens (softmax probabilities) at each <|mask|> of each input. */
export function fillMask(model: Transformer, tokenizer: Tokenizer, inputs: string[], topK: number): { results: MaskPrediction[][]; tokens: number } {
  const maskId = tokenizer.special('mask');
  if (model.config.arch !== 'bert' || maskId === undefined) throw new InputError('fill-mask needs a bert (masked LM) model', -1);
  const specials = new Set(tokenizer.specialTokens.values());
  let tokens = 0;
  const results = inputs.map((text, i) => {
    const ids = tokenizer.encode(text);
    const masks = ids.flatMap((id, pos) => (id === maskId ? [pos] : []));
    if (masks.length === 0) throw new InputError(`input ${i} has no <|mask|> token`, i);
    if (ids.length > model.config.blockSize) throw new InputError(`input ${i} has ${ids.length} tokens; this model's context is ${model.config.blockSize}`, i);
    tokens += ids.length;
    const probs = tf.tidy(() => tf.softmax(model.forward(tf.tensor2d(ids, [1, ids.length], 'int32')).reshape([ids.length, -1])).dataSync() as Float32Array);
    const V = model.config.vocabSize;
    return masks.map((pos) => {
      const row = probs.subarray(pos * V, (pos + 1) * V);
      const order = Array.from(row.keys())
        .filter((id) => !specials.has(id))
        .sort((a, b) => (row[b] as number) - (row[a] as number))
        .slice(0, topK);
      return { position: pos, candidates: order.map((id) => ({ tokenId: id, token: tokenizer.decode([id]), score: row[id] as number })) };
    });
  });
  return { results, tokens };
}
