// Scoring a whole token stream with a model (evaluations): every position is predicted exactly
// once. Causal models read consecutive windows of up to block_size tokens and predict each next
// token; masked models mask a seeded 15% of each window and predict those. Per-position
// log-probabilities are summed in float64, so the mean loss is exact over the whole stream (not
// a mean of batch means), and perplexity = exp(mean loss).
import * as tf from '@tensorflow/tfjs';
import { applyMasking, type MaskingConfig } from './data';
import { forEachLogitChunk } from './logit-chunks';
import type { Transformer } from './model';
import { Rng } from './rng';

export interface ScoreOptions {
  /** Windows per forward pass. */
  batchSize: number;
  /** Window length (at most the model's block size). */
  seqLen: number;
  /** Masked models: which tokens are masked. */
  masking?: MaskingConfig;
  seed?: number;
  /** Called after each batch with positions done and total. */
  onProgress?: (done: number, total: number) => void | Promise<void>;
  signal?: AbortSignal;
  /** Logits larger than this (bytes) are never held: the head runs over chunks of rows (default CHUNKED_HEAD_BYTES). */
  chunkedHeadBytes?: number;
}

export interface ScoreSums {
  /** Positions scored (causal: every next token; masked: the masked tokens). */
  tokens: number;
  lossSum: number;
  correct: number;
}

export interface ScoreResult {
  all: ScoreSums;
  /** Only positions whose weight is 1 (the answers of prompt/completion and chat data). */
  weighted?: ScoreSums;
}

interface Window {
  x: Int32Array;
  y: Int32Array;
  w?: Float32Array;
  T: number;
}

/** Mean loss, perplexity and accuracy of sums (NaN when nothing was scored). */
export function summarize(s: ScoreSums): { loss: number; perplexity: number; accuracy: number; tokens: number } {
  const loss = s.tokens > 0 ? s.lossSum / s.tokens : Number.NaN;
  return { loss, perplexity: Math.exp(loss), accuracy: s.tokens > 0 ? s.correct / s.tokens : Number.NaN, tokens: s.tokens };
}

/** The stream as windows: causal windows overlap by one token (input i predicts token i + 1). */
function windows(tokens: Int32Array, weights: Float32Array | undefined, T: number, masking: MaskingConfig | undefined, rng: Rng): Window[] {
  const out: Window[] = [];
  if (!masking) {
    for (let s = 0; s + 1 < tokens.length; s += T) {
      const n = Math.min(T, tokens.length - 1 - s);
      out.push({ x: tokens.slice(s, s + n), y: tokens.slice(s + 1, s + n + 1), w: weights?.slice(s + 1, s + n + 1), T: n });
    }
    return out;
  }
  for (let s = 0; s < tokens.length; s += T) {
    const n = Math.min(T, tokens.length - s);
    const b = applyMasking(tokens.slice(s, s + n), masking, rng, 1, n);
    out.push({ x: b.x, y: b.y, w: b.w, T: n });
  }
  return out;
}

/**
 * Scores every position of `tokens`. `weights` (aligned with tokens, causal only) selects the
 * positions of the `weighted` sums. Masked models score only their masked positions.
 */
export async function scoreTokens(model: Transformer, tokens: Int32Array, weights: Float32Array | undefined, o: ScoreOptions): Promise<ScoreResult> {
  const T = Math.min(o.seqLen, model.config.blockSize);
  const all: ScoreSums = { tokens: 0, lossSum: 0, correct: 0 };
  const weighted: ScoreSums | undefined = weights && !o.masking ? { tokens: 0, lossSum: 0, correct: 0 } : undefined;
  const list = windows(tokens, weights, T, o.masking, new Rng(o.seed ?? 0));
  const total = list.reduce((a, w) => a + w.T, 0);
  let done = 0;
  // windows of one length go together (only the last one is shorter)
  for (let i = 0; i < list.length; ) {
    if (o.signal?.aborted) break;
    const first = list[i] as Window;
    const group: Window[] = [];
    while (i < list.length && group.length < o.batchSize && (list[i] as Window).T === first.T) group.push(list[i++] as Window);
    const B = group.length;
    const t = first.T;
    const x = new Int32Array(B * t);
    const y = new Int32Array(B * t);
    group.forEach((g, b) => {
      x.set(g.x, b * t);
      y.set(g.y, b * t);
    });
    // each position's loss and hit, the head over chunks of rows where the logits would be large
    const nll = new Float32Array(B * t);
    const hit = new Uint8Array(B * t);
    const idx = tf.tensor2d(x, [B, t], 'int32');
    forEachLogitChunk(
      model,
      idx,
      {},
      (logits, r0, n) => {
        const logp = tf.logSoftmax(logits);
        const yT = tf.tensor1d(y.subarray(r0, r0 + n), 'int32');
        const picked = tf.sum(tf.mul(logp, tf.oneHot(yT, logits.shape[1])), -1);
        nll.set(tf.neg(picked).dataSync() as Float32Array, r0);
        hit.set(tf.equal(tf.argMax(logits, -1), yT).dataSync() as Uint8Array, r0);
      },
      o.chunkedHeadBytes,
    );
    idx.dispose();
    group.forEach((g, b) => {
      for (let j = 0; j < t; j++) {
        const k = b * t + j;
        const counted = o.masking ? (g.w?.[j] ?? 0) > 0 : true;
        if (!counted) continue;
        all.tokens++;
        all.lossSum += nll[k] as number;
        all.correct += hit[k] as number;
        if (weighted && (g.w?.[j] ?? 0) > 0) {
          weighted.tokens++;
          weighted.lossSum += nll[k] as number;
          weighted.correct += hit[k] as number;
        }
      }
    });
    done += B * t;
    await o.onProgress?.(done, total);
    await new Promise((r) => setImmediate(r));
  }
  return weighted ? { all, weighted } : { all };
}
