// Continuous batching: the requests generating from one loaded model are decoded together, one
// forward pass per step over every active request's new tokens (Transformer.forwardSegments).
// A request joins the batch at the next step and leaves as soon as it ends or its client goes; its
// prompt is read in chunks of `prefillChunk` tokens, a chunk per step, so that a long prompt does
// not stall the others' decoding. Each request keeps its own KV cache, sampling parameters, random
// stream, stop sequences and log-probabilities (sample.ts's Generation), and its chunks do not
// depend on the other requests: with products whose rows do not depend on the batch
// (withRowIndependentProducts), a request gets the tokens and log-probabilities it gets alone.
// Requests for LoRA fine-tunes of the model (served unmerged) share its steps: the base's products
// run once over every request's tokens, and each adds its own adapter's low-rank product.

import type { Tokenizer } from '@crucible/model-files';
import { isCausal } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { withRowIndependentProducts } from './backend';
import { KvCache } from './kv-cache';
import type { Transformer } from './model';
import { Generation, type SampleOptions, type SampleResult } from './sample';

export interface BatcherOptions {
  /** Requests decoded in one step at most; the others wait for a place, first come first served. Default 32. */
  maxBatch?: number;
  /** Prompt tokens a request reads per step. Default 64. */
  prefillChunk?: number;
  /**
   * Memory for the running requests' KV caches, in bytes: a request joins the running ones only
   * when the caches it and they may grow to (prompt plus token budget, at most the context) fit;
   * otherwise it waits, first come first served. One request always runs. Default: unlimited.
   */
  maxCacheBytes?: number;
}

/** Bytes a KV cache holds per position: keys and values of every layer, float32. */
export function kvBytesPerPosition(model: Transformer): number {
  const c = model.config;
  const width = c.arch === 'llama' && c.decoder ? c.decoder.nKvHead * c.decoder.headDim : c.dModel;
  return c.nLayer * 2 * width * 4;
}

/** What a step reports, for benchmarks and tests. */
export interface BatchStep {
  /** Requests in the step. */
  requests: number;
  /** Tokens the forward pass read. */
  tokens: number;
}

interface Request {
  g: Generation;
  /** The LoRA fine-tune of the batcher's model the request is for, or undefined: the model itself. */
  adapter?: Transformer;
  cache: KvCache;
  /** The cache holds the positions of g.ids[start..start + cache.length). */
  start: number;
  signal?: AbortSignal;
  /** Pieces and the result, waiting for the request's reader. */
  out: Array<{ piece?: string; result?: SampleResult; error?: unknown }>;
  wake?: () => void;
}

export class ContinuousBatcher {
  private readonly maxBatch: number;
  private readonly prefillChunk: number;
  private readonly maxCacheBytes: number;
  private readonly bytesPerPosition: number;
  private readonly active: Request[] = [];
  private running = false;
  /** Called after every step (benchmarks, tests). */
  onStep?: (s: BatchStep) => void;

  constructor(
    private readonly model: Transformer,
    private readonly tokenizer: Tokenizer,
    opts: BatcherOptions = {},
  ) {
    if (!isCausal(model.config.arch)) throw new Error('text generation needs a causal (gpt or llama) model');
    this.maxBatch = Math.max(1, opts.maxBatch ?? 32);
    this.prefillChunk = Math.max(1, opts.prefillChunk ?? 64);
    this.maxCacheBytes = opts.maxCacheBytes ?? Number.POSITIVE_INFINITY;
    this.bytesPerPosition = kvBytesPerPosition(model);
  }

  /** The bytes a request's cache may grow to: its prompt and token budget, at most the context. */
  private cacheBytes(r: Request): number {
    return Math.min(this.model.config.blockSize, r.g.ids.length + r.g.remaining) * this.bytesPerPosition;
  }

  /** Requests being decoded or waiting for a place. */
  get size(): number {
    return this.active.length;
  }

  /**
   * Yields the request's text pieces as they are generated; returns its result (as sampleStream).
   * `adapter`: a LoRA fine-tune of the batcher's model (Transformer.withLora on it) to generate
   * from; its requests share steps with the model's and with other adapters' (span-lora.ts).
   * `tokenizer`: the request's model's, when it is not the batcher's object (the same vocabulary).
   */
  async *stream(prompt: string, o: SampleOptions, adapter?: Transformer, tokenizer = this.tokenizer): AsyncGenerator<string, SampleResult> {
    if (adapter && adapter.loraBase !== this.model) throw new Error("a batcher's adapters must be LoRA models on its own model");
    const r: Request = { g: new Generation(tokenizer, prompt, o), adapter, cache: new KvCache(), start: 0, signal: o.signal, out: [] };
    this.active.push(r);
    this.run();
    try {
      for (;;) {
        const next = r.out.shift();
        if (!next) {
          await new Promise<void>((wake) => {
            r.wake = wake;
          });
          continue;
        }
        if (next.error) throw next.error;
        if (next.piece) yield next.piece;
        if (next.result) return next.result;
      }
    } finally {
      // a reader that stops early (its client gone) takes the request out at the next step
      this.leave(r);
    }
  }

  private leave(r: Request): void {
    const i = this.active.indexOf(r);
    if (i >= 0) this.active.splice(i, 1);
    r.cache.dispose();
  }

  private send(r: Request, item: { piece?: string; result?: SampleResult; error?: unknown }): void {
    r.out.push(item);
    const wake = r.wake;
    r.wake = undefined;
    wake?.();
  }

  /** The step loop: runs while any request is active, yielding to the event loop between steps. */
  private run(): void {
    if (this.running) return;
    this.running = true;
    const loop = () => {
      try {
        this.step();
      } catch (err) {
        for (const r of this.active.splice(0)) {
          r.cache.dispose();
          this.send(r, { error: err });
        }
      }
      if (this.active.length) setImmediate(loop);
      else this.running = false;
    };
    setImmediate(loop);
  }

  private step(): void {
    // requests that ended without a step (no budget) or whose client left end where they stand
    for (const r of [...this.active]) {
      if (r.g.exhausted || r.signal?.aborted) {
        this.leave(r);
        this.send(r, r.g.end());
      }
    }
    // the first requests that fit (in arrival order: a later one never overtakes a waiting one)
    const batch: Request[] = [];
    let bytes = 0;
    for (const r of this.active) {
      if (batch.length >= this.maxBatch) break;
      const need = this.cacheBytes(r);
      if (batch.length && bytes + need > this.maxCacheBytes) break;
      batch.push(r);
      bytes += need;
    }
    if (!batch.length) return;
    const T = this.model.config.blockSize;
    const feeds = batch.map((r) => {
      const ids = r.g.ids;
      // a context that slides past block_size is read again from its new start
      if (ids.length - r.start > T) {
        r.cache.reset();
        r.start = ids.length - T;
      }
      const unread = ids.slice(r.start + r.cache.length);
      return { tokens: unread.slice(0, this.prefillChunk), last: unread.length <= this.prefillChunk };
    });
    const tokens = feeds.flatMap((f) => f.tokens);
    const logits = withRowIndependentProducts(() =>
      tf.tidy(() =>
        this.model.forwardSegments(tf.tensor2d(tokens, [1, tokens.length], 'int32'), {
          caches: batch.map((r) => r.cache),
          lengths: feeds.map((f) => f.tokens.length),
          ...(batch.some((r) => r.adapter) ? { adapters: batch.map((r) => r.adapter) } : {}),
        }),
      ),
    );
    const data = logits.dataSync() as Float32Array;
    logits.dispose();
    this.onStep?.({ requests: batch.length, tokens: tokens.length });
    const V = this.model.config.vocabSize;
    batch.forEach((r, i) => {
      if (!(feeds[i] as { last: boolean }).last) return; // its prompt is still being read
      const step = r.g.step(data.subarray(i * V, (i + 1) * V)); // (its own row: step may change it)
      if (step.result) {
        this.leave(r);
        this.send(r, step);
      } else if (r.g.exhausted) {
        const end = r.g.end();
        this.leave(r);
        this.send(r, { piece: [step.piece, end.piece].filter(Boolean).join('') || undefined, result: end.result });
      } else if (step.piece) this.send(r, step);
    });
  }
}

/** The whole result of a batcher's stream (as sample). */
export async function batchedSample(b: ContinuousBatcher, prompt: string, o: SampleOptions, adapter?: Transformer): Promise<SampleResult> {
  const it = b.stream(prompt, o, adapter);
  for (;;) {
    const r = await it.next();
    if (r.done) return r.value;
  }
}
