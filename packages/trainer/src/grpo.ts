// Group Relative Policy Optimization (Shao et al., 2024), the loss behind OpenAI's reinforcement
// method. For each prompt the current model samples a group of G answers; a grader scores each;
// an answer's advantage is its score against its group's, A = (r - mean) / (std + 1e-4). The loss
// of the answer tokens is the clipped policy gradient of PPO plus a KL penalty to the reference
// (the starting model), per token:
//   -min(rho A, clip(rho, 1 - eps, 1 + eps) A) + beta (exp(ref - lp) - (ref - lp) - 1)
// with rho = exp(lp - lp_old), the answer's probability now over when it was sampled (1 in value
// with one update per batch, as TRL's default: its gradient is A x the gradient of lp), averaged
// over each answer's tokens, then over the answers.

import type { Tokenizer } from '@crucible/model-files';
import type { GrpoConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { KvCache } from './kv-cache';
import type { Transformer } from './model';
import { fillRow, maskedLogProbs } from './preference';
import type { Rng } from './rng';
import { pickToken } from './sample';

/** What a reinforcement run trains on: its prompts, how an answer is scored, and how answers end. */
export interface ReinforcementData {
  /** Prompts (the conversation rendered with the chat template, up to the answer). */
  train: Int32Array[];
  val: Int32Array[];
  /** The grader's score of `answer` to prompt `index` of a set. */
  grade: (set: 'train' | 'val', index: number, answer: string) => number;
  /** The frozen starting model, for the KL penalty (needed when klBeta > 0). */
  reference?: Transformer;
  /** Token ids that end an answer (the template's end of turn, end of text). */
  stopTokens: number[];
  /** Text that ends an answer where the tokenizer has no token for it (Crucible's <|im_end|> in a character vocabulary). */
  stopText?: string;
}

/** One sampled answer: its tokens (with the one that ended it), its text (without), and how likely the model found it. */
export interface Rollout {
  tokens: number[];
  text: string;
  /** Sum of the sampled tokens' log-probabilities (temperature 1). */
  logprob: number;
  /** How many of the sampled tokens were the most likely one. */
  argmaxHits: number;
}

export interface RolloutOptions {
  count: number;
  maxNewTokens: number;
  temperature: number;
  stopTokens: readonly number[];
  stopText?: string;
  rng: Rng;
}

/**
 * Samples `count` answers to one prompt together (one batch row each, through one KV cache). The
 * prompt keeps its last tokens so that prompt + answer fit the model's context.
 */
export function sampleGroup(model: Transformer, tokenizer: Tokenizer, prompt: Int32Array, o: RolloutOptions): Rollout[] {
  const G = o.count;
  const T = model.config.blockSize;
  const budget = Math.max(1, Math.min(o.maxNewTokens, T - 1));
  const context = Array.from(prompt.subarray(Math.max(0, prompt.length - (T - budget))));
  if (context.length === 0) context.push(tokenizer.special('eot') ?? 0);
  const stops = new Set(o.stopTokens);
  const suppressed = [...tokenizer.specialTokens.values()].filter((id) => !stops.has(id));
  const out: Rollout[] = Array.from({ length: G }, () => ({ tokens: [], text: '', logprob: 0, argmaxHits: 0 }));
  const done = new Array<boolean>(G).fill(false);
  const cache = new KvCache();
  try {
    let feed = tf.tensor2d(Array.from({ length: G }, () => context).flat(), [G, context.length], 'int32');
    for (let n = 0; n < budget && done.includes(false); n++) {
      const logits = tf.tidy(() => model.forwardLast(feed, { cache }));
      feed.dispose();
      const all = logits.dataSync() as Float32Array;
      logits.dispose();
      const V = all.length / G;
      const next: number[] = [];
      for (let g = 0; g < G; g++) {
        const row = all.subarray(g * V, (g + 1) * V);
        for (const id of suppressed) row[id] = Number.NEGATIVE_INFINITY;
        for (let id = tokenizer.vocabSize; id < V; id++) row[id] = Number.NEGATIVE_INFINITY;
        const r = out[g] as Rollout;
        if (done[g]) {
          next.push(r.tokens.at(-1) ?? (context.at(-1) as number));
          continue;
        }
        const id = pickToken(row, o.rng, { temperature: o.temperature });
        const { logprob, argmax } = tokenStats(row, id);
        r.tokens.push(id);
        r.logprob += logprob;
        if (argmax) r.argmaxHits++;
        next.push(id);
        if (stops.has(id)) done[g] = true;
        else if (o.stopText && tokenizer.decode(r.tokens).includes(o.stopText)) done[g] = true;
      }
      feed = tf.tensor2d(next, [G, 1], 'int32');
    }
    feed.dispose();
  } finally {
    cache.dispose();
  }
  for (const r of out) r.text = answerText(tokenizer, r.tokens, stops, o.stopText);
  return out;
}

/** The answer as text: its tokens up to the stop token or the stop text. */
function answerText(tokenizer: Tokenizer, tokens: number[], stops: ReadonlySet<number>, stopText?: string): string {
  const last = tokens.at(-1);
  const text = tokenizer.decode(last !== undefined && stops.has(last) ? tokens.slice(0, -1) : tokens);
  const at = stopText ? text.indexOf(stopText) : -1;
  return at >= 0 ? text.slice(0, at) : text;
}

/** The log-probability of `id` in a row of logits (temperature 1), and whether it is the most likely. */
function tokenStats(row: Float32Array, id: number): { logprob: number; argmax: boolean } {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of row) if (v > max) max = v;
  let z = 0;
  for (const v of row) z += Math.exp(v - max);
  return { logprob: (row[id] as number) - max - Math.log(z), argmax: (row[id] as number) === max };
}

/** Group-normalised advantages: (r - mean) / (std + 1e-4) within each consecutive group of G (std unbiased, as TRL's). */
export function groupAdvantages(rewards: readonly number[], G: number): { advantages: Float32Array; stds: number[] } {
  const advantages = new Float32Array(rewards.length);
  const stds: number[] = [];
  for (let start = 0; start < rewards.length; start += G) {
    const group = rewards.slice(start, start + G);
    const mean = group.reduce((a, b) => a + b, 0) / group.length;
    const variance = group.length > 1 ? group.reduce((a, b) => a + (b - mean) ** 2, 0) / (group.length - 1) : 0;
    const std = Math.sqrt(variance);
    stds.push(std);
    group.forEach((r, i) => {
      advantages[start + i] = (r - mean) / (std + 1e-4);
    });
  }
  return { advantages, stds };
}

/** Rows of prompt + answer, as a PairBatch's: inputs x, targets y and m = 1 on the answer's tokens. */
export interface RolloutBatch {
  rows: number;
  T: number;
  x: Int32Array;
  y: Int32Array;
  m: Float32Array;
  /** Tokens in the rows (prompts and answers). */
  tokens: number;
}

export function rolloutBatch(prompts: readonly Int32Array[], answers: readonly number[][], T: number): RolloutBatch {
  const rows = answers.length;
  const G = rows / prompts.length;
  const x = new Int32Array(rows * T);
  const y = new Int32Array(rows * T);
  const m = new Float32Array(rows * T);
  let tokens = 0;
  answers.forEach((a, r) => {
    const prompt = prompts[Math.floor(r / G)] as Int32Array;
    fillRow(prompt, Int32Array.from(a), T, r * T, x, y, m);
    tokens += Math.min(T + 1, prompt.length + a.length);
  });
  return { rows, T, x, y, m, tokens };
}

/** Per-token log-probabilities of a batch's targets under `model`, [rows, T] (0 off the answers). */
export function rolloutLogProbs(model: Transformer, b: RolloutBatch, opts: { training?: boolean; seed?: number } = {}): tf.Tensor2D {
  return tf.tidy(() => maskedLogProbs(model, b.x, b.y, b.m, b.rows, b.T, opts).lp);
}

export interface GrpoTerms {
  loss: tf.Scalar;
  /** Mean per-token KL to the reference over the answers' tokens (0 without a reference). */
  kl: tf.Scalar;
}

/**
 * The GRPO loss of a batch from the policy's per-token log-probabilities `lp` ([rows, T], with
 * gradient), those when the answers were sampled `old`, the reference's `ref` (null: no KL term),
 * the answers' advantages and the answer-token mask.
 */
export function grpoTerms(lp: tf.Tensor2D, old: Float32Array, ref: Float32Array | null, advantages: Float32Array, m: Float32Array, cfg: GrpoConfig): GrpoTerms {
  const [rows, T] = lp.shape;
  const mask = tf.tensor2d(m, [rows, T]);
  const counts = tf.maximum(tf.sum(mask, 1), 1);
  const A = tf.tensor2d(advantages, [rows, 1]);
  const ratio = tf.exp(tf.sub(lp, tf.tensor2d(old, [rows, T])));
  const surrogate = tf.minimum(tf.mul(ratio, A), tf.mul(tf.clipByValue(ratio, 1 - cfg.clipEpsilon, 1 + cfg.clipEpsilon), A));
  let perToken = tf.neg(surrogate);
  let kl: tf.Tensor = tf.zeros([rows, T]);
  if (ref) {
    const d = tf.sub(tf.tensor2d(ref, [rows, T]), lp);
    kl = tf.mul(tf.sub(tf.sub(tf.exp(d), d), 1), mask);
    if (cfg.klBeta > 0) perToken = tf.add(perToken, tf.mul(kl, cfg.klBeta));
  }
  const perAnswer = tf.div(tf.sum(tf.mul(perToken, mask), 1), counts);
  return { loss: tf.mean(perAnswer) as tf.Scalar, kl: tf.div(tf.sum(kl), tf.maximum(tf.sum(mask), 1)) as tf.Scalar };
}

/** A step's or an evaluation's reinforcement metrics, under TRL's names. */
export interface ReinforcementMetrics {
  reward: number;
  rewardStd: number;
  kl: number;
  /** Share of groups whose rewards differ. */
  fracNonzeroStd: number;
  completionLength: number;
}

/** Running sums of reinforcement metrics over micro-batches. */
export class ReinforcementTally {
  /** Tokens of the rows trained on (prompts and answers). */
  tokens = 0;
  private rewards = 0;
  private answers = 0;
  private stdSum = 0;
  private groups = 0;
  private varied = 0;
  private klSum = 0;
  private klBatches = 0;
  private lengths = 0;

  addGroups(rewards: readonly number[], stds: readonly number[], lengths: readonly number[]): void {
    for (const r of rewards) this.rewards += r;
    this.answers += rewards.length;
    for (const s of stds) {
      this.stdSum += s;
      if (s > 0) this.varied++;
    }
    this.groups += stds.length;
    for (const l of lengths) this.lengths += l;
  }

  addKl(kl: number): void {
    this.klSum += kl;
    this.klBatches++;
  }

  metrics(): ReinforcementMetrics {
    const n = Math.max(1, this.answers);
    const g = Math.max(1, this.groups);
    return {
      reward: this.rewards / n,
      rewardStd: this.stdSum / g,
      kl: this.klBatches > 0 ? this.klSum / this.klBatches : 0,
      fracNonzeroStd: this.varied / g,
      completionLength: this.lengths / n,
    };
  }
}

/** Mean-pooled final hidden states of each text under `model`: the cosine metric's embeddings. */
export function meanPooledEmbeddings(model: Transformer, tokenizer: Tokenizer, texts: readonly string[]): Float32Array[] {
  const T = model.config.blockSize;
  return texts.map((text) => {
    const ids = tokenizer.encode(text).slice(-T);
    if (ids.length === 0) return new Float32Array(model.config.dModel);
    return tf.tidy(() => tf.mean(model.hidden(tf.tensor2d(ids, [1, ids.length], 'int32')), [0, 1]).dataSync() as Float32Array);
  });
}
