// Direct Preference Optimization (Rafailov et al., 2023). A preference pair is a prompt with a
// preferred (chosen) and a non-preferred (rejected) answer. With log pi(y) the log-probability a
// model gives an answer's tokens after the prompt:
//   loss = -log sigmoid(beta * [(log pi(yw) - log ref(yw)) - (log pi(yl) - log ref(yl))])
// where ref is the frozen starting model, whose log-probabilities are computed once per pair
// (referenceLogProbs) and kept. Crucible extensions: rpoAlpha adds the mean NLL of the chosen
// answer tokens (RPO, as Together's rpo_alpha), and lengthNormalize compares log-probabilities per
// answer token. Rewards, under TRL's names, are beta * (log pi - log ref) of each answer.

import type { DpoConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import type { Transformer } from './model';
import { customGrad } from './ops';
import { Rng, type RngState } from './rng';

/** One pair, tokenized: the prompt (rendered with the chat template up to the answer) and the two answers. */
export interface PreferenceExample {
  prompt: Int32Array;
  chosen: Int32Array;
  rejected: Int32Array;
}

/**
 * B pairs as 2B rows of T positions: the chosen sequences, then the rejected ones. Row r holds
 * inputs x and targets y of prompt + answer (padded with 0 after its end: attention is causal, so
 * padding never reaches a real position), and m = 1 where the target is an answer token.
 */
export interface PairBatch {
  B: number;
  T: number;
  x: Int32Array;
  y: Int32Array;
  m: Float32Array;
}

/**
 * The pairs `ids` of `examples` as rows of at most T positions. A sequence longer than T + 1
 * tokens loses the start of its prompt (one prompt token is always kept), then the end of its
 * answer.
 */
export function pairBatch(examples: readonly PreferenceExample[], ids: readonly number[], T: number): PairBatch {
  const B = ids.length;
  const x = new Int32Array(2 * B * T);
  const y = new Int32Array(2 * B * T);
  const m = new Float32Array(2 * B * T);
  ids.forEach((id, b) => {
    const ex = examples[id] as PreferenceExample;
    fillRow(ex.prompt, ex.chosen, T, b * T, x, y, m);
    fillRow(ex.prompt, ex.rejected, T, (B + b) * T, x, y, m);
  });
  return { B, T, x, y, m };
}

export function fillRow(prompt: Int32Array, answer: Int32Array, T: number, at: number, x: Int32Array, y: Int32Array, m: Float32Array): void {
  const a = answer.subarray(0, Math.min(answer.length, T));
  const p = prompt.subarray(Math.max(0, prompt.length - Math.max(1, T + 1 - a.length)));
  const seq = new Int32Array(p.length + a.length);
  seq.set(p);
  seq.set(a, p.length);
  const n = seq.length - 1; // positions used
  x.set(seq.subarray(0, n), at);
  y.set(seq.subarray(1), at);
  // the target at position i is seq[i + 1]: an answer token from position p.length - 1 on
  for (let i = p.length - 1; i < n; i++) m[at + i] = 1;
}

/** Log-probability of each row's target: log softmax(logits)[i, targets[i]], [N, V] x [N] -> [N]. */
export function tokenLogProbs(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  const V = logits.shape[1];
  const f = customGrad<(lg: tf.Tensor2D, tg: tf.Tensor1D) => tf.Tensor1D>((lg: tf.Tensor, tg: tf.Tensor, save: tf.GradSaveFunc) => {
    const lse = tf.logSumExp(lg, -1, true);
    const picked = tf.sum(tf.mul(lg, tf.oneHot(tg as tf.Tensor1D, V)), -1);
    save([lg, lse, tg]);
    return {
      value: tf.sub(picked, lse.reshape([-1])),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) => {
        const [slg, slse, stg] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor1D];
        const softmax = tf.exp(tf.sub(slg, slse));
        const g = tf.mul(tf.sub(tf.oneHot(stg, V), softmax), (dy as tf.Tensor).reshape([-1, 1]));
        return [g, tf.zerosLike(stg)];
      },
    };
  });
  return f(logits, targets);
}

/**
 * Per-token log-probabilities of targets `y` where `m` > 0, as [rows, T] (0 elsewhere), with the
 * logits at those positions ([K, V], position `positions[k]` of the flat rows). The vocabulary-wide
 * head and log-softmax run only there (an answer is a few of a row's T positions): gathered from
 * the hidden states, then spread back by a gather whose gradient is a segment sum.
 */
export function maskedLogProbs(
  model: Transformer,
  x: Int32Array,
  y: Int32Array,
  m: Float32Array,
  rows: number,
  T: number,
  opts: { training?: boolean; seed?: number } = {},
): { lp: tf.Tensor2D; logits: tf.Tensor2D; positions: number[] } {
  const positions: number[] = [];
  for (let i = 0; i < m.length; i++) if ((m[i] as number) > 0) positions.push(i);
  const K = positions.length;
  const back = new Int32Array(rows * T).fill(K); // K: the zero slot
  positions.forEach((p, k) => {
    back[p] = k;
  });
  const hidden = model.hidden(tf.tensor2d(x, [rows, T], 'int32'), opts);
  const C = hidden.shape[2];
  const picked = tf.gather(hidden.reshape([rows * T, C]), tf.tensor1d(positions, 'int32'));
  const logits = model.head(picked.reshape([1, K, C]) as tf.Tensor3D).reshape([K, -1]) as tf.Tensor2D;
  const lpk = tokenLogProbs(
    logits,
    tf.tensor1d(
      Int32Array.from(positions, (p) => y[p] as number),
      'int32',
    ),
  );
  const lp = tf.gather(tf.concat([lpk, tf.zeros([1])]), tf.tensor1d(back, 'int32')).reshape([rows, T]) as tf.Tensor2D;
  return { lp, logits, positions };
}

/**
 * Per row: the answer's log-probability (summed, or per token) and its answer-token count, with
 * the logits at the answer positions (see maskedLogProbs).
 */
export function answerLogProbs(
  model: Transformer,
  batch: PairBatch,
  lengthNormalize: boolean,
): { seq: tf.Tensor1D; lp: tf.Tensor2D; counts: tf.Tensor1D; logits: tf.Tensor2D; positions: number[] } {
  const rows = 2 * batch.B;
  const { lp, logits, positions } = maskedLogProbs(model, batch.x, batch.y, batch.m, rows, batch.T);
  const counts = tf.maximum(tf.sum(tf.tensor2d(batch.m, [rows, batch.T]), 1), 1) as tf.Tensor1D;
  const sum = tf.sum(lp, 1) as tf.Tensor1D;
  return { seq: lengthNormalize ? tf.div(sum, counts) : sum, lp, counts, logits, positions };
}

export interface DpoTerms {
  /** The batch's loss: the mean DPO loss, plus rpoAlpha x the chosen answers' mean NLL. */
  loss: tf.Scalar;
  /** beta x (log pi - log ref) of each chosen answer, [B]. */
  chosen: tf.Tensor1D;
  rejected: tf.Tensor1D;
}

/**
 * The DPO loss of a batch from the policy's answer log-probabilities `policy` ([2B]: chosen rows,
 * then rejected) and the reference's `reference` (the same layout); `chosenNll` is the mean NLL
 * per chosen answer token (needed when rpoAlpha > 0).
 */
export function dpoTerms(policy: tf.Tensor1D, reference: Float32Array, cfg: DpoConfig, chosenNll?: tf.Scalar): DpoTerms {
  const B = policy.shape[0] / 2;
  const ratio = tf.sub(policy, tf.tensor1d(reference));
  const chosen = tf.mul(ratio.slice(0, B), cfg.beta) as tf.Tensor1D;
  const rejected = tf.mul(ratio.slice(B, B), cfg.beta) as tf.Tensor1D;
  // -log sigmoid(z) = softplus(-z)
  let loss = tf.mean(tf.softplus(tf.neg(tf.sub(chosen, rejected)))) as tf.Scalar;
  if (cfg.rpoAlpha > 0) {
    if (!chosenNll) throw new Error('rpoAlpha needs the chosen answers’ NLL');
    loss = tf.add(loss, tf.mul(chosenNll, cfg.rpoAlpha));
  }
  return { loss, chosen, rejected };
}

/** Mean NLL per answer token of the chosen rows (the first B of 2B). */
export function chosenNll(lp: tf.Tensor2D, counts: tf.Tensor1D): tf.Scalar {
  const B = lp.shape[0] / 2;
  return tf.div(tf.neg(tf.sum(lp.slice([0, 0], [B, -1]))), tf.sum(counts.slice(0, B)));
}

/** TRL's rewards/* for a batch (means over its pairs). */
export interface PreferenceMetrics {
  chosen: number;
  rejected: number;
  margins: number;
  /** Share of pairs whose chosen reward is above the rejected one. */
  accuracies: number;
}

/** Sums of a batch's rewards, to be averaged over batches by pairs. */
export function rewardSums(chosen: Float32Array, rejected: Float32Array): { chosen: number; rejected: number; accurate: number; pairs: number } {
  let c = 0;
  let r = 0;
  let accurate = 0;
  for (let i = 0; i < chosen.length; i++) {
    c += chosen[i] as number;
    r += rejected[i] as number;
    if ((chosen[i] as number) > (rejected[i] as number)) accurate++;
  }
  return { chosen: c, rejected: r, accurate, pairs: chosen.length };
}

export function preferenceMetrics(s: { chosen: number; rejected: number; accurate: number; pairs: number }): PreferenceMetrics {
  const n = Math.max(1, s.pairs);
  return { chosen: s.chosen / n, rejected: s.rejected / n, margins: (s.chosen - s.rejected) / n, accuracies: s.accurate / n };
}

/**
 * The reference log-probabilities of every pair with `model` as it is (no dropout): [2N], pair i's
 * chosen answer at 2i and its rejected one at 2i + 1. Run once, before training moves the model.
 */
export function referenceLogProbs(model: Transformer, examples: readonly PreferenceExample[], T: number, B: number, lengthNormalize: boolean): Float32Array {
  const out = new Float32Array(2 * examples.length);
  for (let start = 0; start < examples.length; start += B) {
    const ids = Array.from({ length: Math.min(B, examples.length - start) }, (_, i) => start + i);
    const seq = tf.tidy(() => answerLogProbs(model, pairBatch(examples, ids, T), lengthNormalize).seq.dataSync());
    ids.forEach((id, b) => {
      out[2 * id] = seq[b] as number;
      out[2 * id + 1] = seq[ids.length + b] as number;
    });
  }
  return out;
}

/** The reference values of `ids` in a batch's layout: chosen ones, then rejected ones. */
export function referenceFor(reference: Float32Array, ids: readonly number[]): Float32Array {
  const out = new Float32Array(2 * ids.length);
  ids.forEach((id, b) => {
    out[b] = reference[2 * id] as number;
    out[ids.length + b] = reference[2 * id + 1] as number;
  });
  return out;
}

/** Which examples (pairs, prompts) each micro-batch trains on: drawn at random (with replacement), resumable by its RNG state. */
export class PairSource {
  private readonly rng: Rng;

  constructor(
    private readonly n: number,
    private readonly B: number,
    seed: number | RngState,
  ) {
    if (n < 1) throw new RangeError('a run needs at least one example to draw');
    this.rng = new Rng(seed);
  }

  next(): number[] {
    return Array.from({ length: this.B }, () => this.rng.int(this.n));
  }

  state(): RngState {
    return this.rng.state();
  }
}
