// Text generation from a causal model: temperature, top-k, top-p (nucleus), a token budget,
// stop sequences and a seed. Streams decoded text piece by piece.

import type { Tokenizer } from '@crucible/model-files';
import { isCausal } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { KvCache } from './kv-cache';
import type { Transformer } from './model';
import { Rng } from './rng';

export interface SampleOptions {
  maxNewTokens: number;
  /** 0 means greedy. Default 1. */
  temperature?: number;
  /** Keep only the k most likely tokens. Default: all. */
  topK?: number;
  /** Keep the smallest set of tokens whose probability reaches p. Default 1. */
  topP?: number;
  /** Generation stops before any of these strings would appear; they are not returned. */
  stop?: string[];
  seed?: number;
  signal?: AbortSignal;
  /** Token ids that end generation (not returned). Default: end-of-text. */
  stopTokens?: number[];
  /** Report each generated token's log-probability and the `logprobs` most likely alternatives. */
  logprobs?: number;
  /** Decode through a KV cache (the prompt read once, then one position per token). Default true; false recomputes the whole context each step. */
  kvCache?: boolean;
  /**
   * Encode the prompt as transformers' tokenizer(prompt) does, with the tokens its post-processor
   * adds (TinyLlama's <s>). Default true; false for a prompt a chat template rendered (it holds them as text).
   */
  addSpecialTokens?: boolean;
}

/** A token's log-probability under the model (temperature 1, before top-k / top-p filtering). */
export interface TokenLogprob {
  id: number;
  logprob: number;
  top: Array<{ id: number; logprob: number }>;
}

export interface SampleResult {
  text: string;
  tokens: number[];
  finishReason: 'stop' | 'length';
  promptTokens: number;
  /** One entry per generated token, when logprobs were asked for. */
  logprobs?: TokenLogprob[];
}

/** log-softmax of one row of logits, and the `k` most likely ids. */
export function logprobsOf(logits: Float32Array, id: number, k: number): TokenLogprob {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of logits) if (v > max) max = v;
  let z = 0;
  for (const v of logits) z += Math.exp(v - max);
  const lse = max + Math.log(z);
  const top = k > 0 ? topIndices(logits, k).map((j) => ({ id: j, logprob: (logits[j] as number) - lse })) : [];
  return { id, logprob: (logits[id] as number) - lse, top };
}

/**
 * The indices of the k largest values, largest first (ties: lower index first), with a size-k heap:
 * O(V log k), so a 151k vocabulary is never sorted.
 */
export function topIndices(values: ArrayLike<number>, k: number): number[] {
  const n = Math.min(k, values.length);
  if (n <= 0) return [];
  // most of a flat distribution: one sort is cheaper than a heap this large
  if (n > values.length / 4)
    return Array.from({ length: values.length }, (_, i) => i)
      .sort((a, b) => (values[b] as number) - (values[a] as number) || a - b)
      .slice(0, n);
  // min-heap on (value, -index): the root is the weakest of the best n so far
  const heap: number[] = [];
  const weaker = (a: number, b: number) => (values[a] as number) < (values[b] as number) || ((values[a] as number) === (values[b] as number) && a > b);
  const up = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!weaker(heap[i] as number, heap[p] as number)) break;
      [heap[i], heap[p]] = [heap[p] as number, heap[i] as number];
      i = p;
    }
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && weaker(heap[l] as number, heap[m] as number)) m = l;
      if (r < heap.length && weaker(heap[r] as number, heap[m] as number)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m] as number, heap[i] as number];
      i = m;
    }
  };
  for (let i = 0; i < values.length; i++) {
    if (heap.length < n) {
      heap.push(i);
      up(heap.length - 1);
    } else if (weaker(heap[0] as number, i)) {
      heap[0] = i;
      down(0);
    }
  }
  return heap.sort((a, b) => (values[b] as number) - (values[a] as number) || a - b);
}

/**
 * Log-probabilities of each prompt token given the tokens before it (the first has none), for
 * `echo` with `logprobs`. Prompts longer than the context are scored over their last window.
 * `tokenizerIds`: ids at or past it (an embedding padded past the tokenizer) are never alternatives.
 */
export function promptLogprobs(model: Transformer, ids: number[], k: number, tokenizerIds = model.config.vocabSize): Array<TokenLogprob | null> {
  const T = model.config.blockSize;
  const start = Math.max(0, ids.length - T);
  const ctx = ids.slice(start);
  const out: Array<TokenLogprob | null> = ids.map(() => null);
  if (ctx.length < 2) return out;
  const logits = tf.tidy(() => model.forward(tf.tensor2d(ctx, [1, ctx.length], 'int32')).dataSync() as Float32Array);
  const V = model.config.vocabSize;
  for (let t = 1; t < ctx.length; t++) {
    const row = logits.subarray((t - 1) * V, t * V);
    for (let id = tokenizerIds; id < V; id++) row[id] = Number.NEGATIVE_INFINITY; // padded embedding rows are no tokens
    out[start + t] = logprobsOf(row, ctx[t] as number, k);
  }
  return out;
}

/**
 * Picks one token id from logits with the given filters: temperature, then the k most likely, then
 * the smallest most-likely set whose probability reaches top_p. Only the candidates are ordered
 * (a heap selection, widened until it holds top_p of the mass): the vocabulary is never sorted.
 */
export function pickToken(logits: Float32Array, rng: Rng, o: Pick<SampleOptions, 'temperature' | 'topK' | 'topP'>): number {
  const temperature = o.temperature ?? 1;
  const V = logits.length;
  let best = 0;
  for (let i = 1; i < V; i++) if ((logits[i] as number) > (logits[best] as number)) best = i;
  if (temperature <= 0) return best;
  const max = logits[best] as number;
  const weight = (i: number) => Math.exp(((logits[i] as number) - max) / temperature);
  const k = o.topK && o.topK > 0 ? Math.min(o.topK, V) : V;
  const topP = o.topP ?? 1;
  if (k === V && topP >= 1) {
    // no filter: a draw over the whole distribution, in index order
    let z = 0;
    for (let i = 0; i < V; i++) z += weight(i);
    let r = rng.next() * z;
    for (let i = 0; i < V; i++) {
      r -= weight(i);
      if (r <= 0) return i;
    }
    return V - 1;
  }
  let order: number[];
  let z: number;
  if (k < V) {
    order = topIndices(logits, k);
    z = order.reduce((a, i) => a + weight(i), 0);
  } else {
    z = 0;
    for (let i = 0; i < V; i++) z += weight(i);
    // widen the selection until it holds top_p of the mass
    let m = Math.min(64, V);
    for (;;) {
      order = topIndices(logits, m);
      const mass = order.reduce((a, i) => a + weight(i), 0);
      if (mass >= topP * z || m === V) break;
      m = Math.min(V, m * 4);
    }
  }
  const probs = order.map(weight);
  let keep = order.length;
  if (topP < 1) {
    let acc = 0;
    for (let j = 0; j < order.length; j++) {
      acc += (probs[j] as number) / z;
      if (acc >= topP) {
        keep = j + 1;
        break;
      }
    }
  }
  const mass = probs.slice(0, keep).reduce((a, b) => a + b, 0);
  let r = rng.next() * mass;
  for (let j = 0; j < keep; j++) {
    r -= probs[j] as number;
    if (r <= 0) return order[j] as number;
  }
  return order[keep - 1] as number;
}

/** What one token's logits did to a generation: a piece of text to hand out, and the result once it ended. */
export interface GenerationStep {
  piece?: string;
  result?: SampleResult;
}

/**
 * One request's text generation, fed the next token's logits one step at a time (by sampleStream,
 * or by a ContinuousBatcher with others): its ids, random stream, stop tokens and sequences,
 * log-probabilities, and the text handed out so far. Every decoding path shares it, so a request's
 * tokens depend only on its logits.
 */
export class Generation {
  /** The prompt's ids, then every sampled token (the sequence the model reads). */
  readonly ids: number[];
  readonly promptTokens: number;
  /** Tokens sampled so far (each step samples one). */
  sampled = 0;
  private readonly rng: Rng;
  private readonly stops: string[];
  private readonly stopIds: Set<number>;
  private readonly suppressed: number[];
  private readonly logprobs: TokenLogprob[] | undefined;
  private readonly generated: number[] = [];
  private emitted = 0; // characters of the decoded output already handed out

  constructor(
    private readonly tokenizer: Tokenizer,
    prompt: string,
    private readonly o: SampleOptions,
  ) {
    this.rng = new Rng(o.seed ?? 0);
    const promptIds = o.addSpecialTokens !== false && tokenizer.encodePrompt ? tokenizer.encodePrompt(prompt) : tokenizer.encode(prompt);
    this.promptTokens = promptIds.length;
    this.ids = promptIds.length ? [...promptIds] : [tokenizer.special('eot') ?? 0];
    this.stops = (o.stop ?? []).filter((x) => x.length > 0);
    const eot = tokenizer.special('eot');
    this.stopIds = new Set(o.stopTokens ?? (eot === undefined ? [] : [eot]));
    // generation never emits the other special tokens (pad, mask, unk, ...); a stop token ends it
    this.suppressed = [...tokenizer.specialTokens.values()].filter((id) => !this.stopIds.has(id));
    this.logprobs = o.logprobs === undefined ? undefined : [];
  }

  /** Whether the token budget is spent (or was 0). */
  get exhausted(): boolean {
    return this.sampled >= this.o.maxNewTokens;
  }

  /** Tokens it may still sample. */
  get remaining(): number {
    return Math.max(0, this.o.maxNewTokens - this.sampled);
  }

  /** Samples the next token from its logits (which it may change): the text it adds, and the result if that ended the generation. */
  step(data: Float32Array): GenerationStep {
    const { tokenizer, generated, logprobs } = this;
    this.sampled++;
    for (const id of this.suppressed) data[id] = Number.NEGATIVE_INFINITY;
    // an embedding padded past the tokenizer (Qwen's 151,936 rows for 151,665 ids): those rows are no tokens
    for (let id = tokenizer.vocabSize; id < data.length; id++) data[id] = Number.NEGATIVE_INFINITY;
    const next = pickToken(data, this.rng, this.o);
    if (this.stopIds.has(next)) {
      const text = tokenizer.decode(generated);
      return { ...(text.length > this.emitted ? { piece: text.slice(this.emitted) } : {}), result: this.result(text, 'stop') };
    }
    logprobs?.push(logprobsOf(data, next, this.o.logprobs ?? 0));
    this.ids.push(next);
    generated.push(next);
    const text = tokenizer.decode(generated);
    const hit = firstStop(text, this.stops);
    if (hit >= 0) {
      const piece = hit > this.emitted ? text.slice(this.emitted, hit) : undefined;
      // drop the tokens that belong to the stop sequence (and their logprobs)
      while (generated.length > 0 && tokenizer.decode(generated).length > hit) {
        generated.pop();
        logprobs?.pop();
      }
      return { ...(piece ? { piece } : {}), result: this.result(text.slice(0, hit), 'stop') };
    }
    // hold back a tail that could still grow into a stop sequence, and an unfinished UTF-8 char
    const safe = safeLength(text, this.stops);
    if (safe > this.emitted) {
      const piece = text.slice(this.emitted, safe);
      this.emitted = safe;
      return { piece };
    }
    return {};
  }

  /** Ends the generation where it stands (its budget spent, or the client gone): the rest of its text, and the result. */
  end(): GenerationStep & { result: SampleResult } {
    const text = this.tokenizer.decode(this.generated);
    return { ...(text.length > this.emitted ? { piece: text.slice(this.emitted) } : {}), result: this.result(text, 'length') };
  }

  private result(text: string, finishReason: 'stop' | 'length'): SampleResult {
    return {
      text,
      tokens: this.generated,
      finishReason,
      promptTokens: this.promptTokens,
      ...(this.logprobs ? { logprobs: this.logprobs } : {}),
    };
  }
}

/** Yields text pieces as they are generated; returns the finish reason. */
export async function* sampleStream(model: Transformer, tokenizer: Tokenizer, prompt: string, o: SampleOptions): AsyncGenerator<string, SampleResult> {
  if (!isCausal(model.config.arch)) throw new Error('text generation needs a causal (gpt or llama) model');
  const g = new Generation(tokenizer, prompt, o);
  const ids = g.ids;
  const T = model.config.blockSize;
  // the cache holds the positions of ids[start..start + cache.length); a context that slides past
  // block_size is read again from its new start (positions restart, as a full recompute sees them)
  const cache = o.kvCache === false ? undefined : new KvCache();
  let start = 0;
  try {
    while (!g.exhausted) {
      if (o.signal?.aborted) break;
      let feed: number[];
      if (!cache) feed = ids.slice(-T);
      else {
        if (ids.length - start > T) {
          cache.reset();
          start = ids.length - T;
        }
        feed = ids.slice(start + cache.length);
      }
      const logits = tf.tidy(() => model.forwardLast(tf.tensor2d(feed, [1, feed.length], 'int32'), { cache }).reshape([-1]));
      const data = (await logits.data()) as Float32Array;
      logits.dispose();
      const step = g.step(data);
      if (step.piece) yield step.piece;
      if (step.result) return step.result;
    }
    const end = g.end();
    if (end.piece) yield end.piece;
    return end.result;
  } finally {
    cache?.dispose();
  }
}

export async function sample(model: Transformer, tokenizer: Tokenizer, prompt: string, o: SampleOptions): Promise<SampleResult> {
  const it = sampleStream(model, tokenizer, prompt, o);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}

function firstStop(text: string, stops: string[]): number {
  let at = -1;
  for (const s of stops) {
    const i = text.indexOf(s);
    if (i >= 0 && (at < 0 || i < at)) at = i;
  }
  return at;
}

function safeLength(text: string, stops: string[]): number {
  let n = text.length;
  if (text.endsWith('\uFFFD')) n -= 1;
  for (const s of stops) {
    for (let k = Math.min(s.length - 1, text.length); k > 0; k--) {
      if (text.endsWith(s.slice(0, k))) {
        n = Math.min(n, text.length - k);
        break;
      }
    }
  }
  return n;
}
