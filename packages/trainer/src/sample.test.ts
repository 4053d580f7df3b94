import { CharTokenizer, decoderConfigFromHf } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { type ModelConfig, modelConfig } from './config';
import { KvCache } from './kv-cache';
import { Transformer } from './model';
import { Rng } from './rng';
import { pickToken, sample, topIndices } from './sample';
import { useBackend } from './test-helpers';

beforeAll(useBackend);

describe('pickToken', () => {
  const logits = Float32Array.from([1, 3, 2, 0.5]);
  it('temperature 0 is greedy', () => {
    expect(pickToken(logits, new Rng(1), { temperature: 0 })).toBe(1);
  });
  it('top-k 1 is greedy at any temperature', () => {
    for (let s = 0; s < 20; s++) expect(pickToken(logits, new Rng(s), { temperature: 5, topK: 1 })).toBe(1);
  });
  it('top-k 2 only ever picks the two most likely tokens, in proportion e^3 : e^2', () => {
    const rng = new Rng(4);
    const counts = [0, 0, 0, 0];
    for (let i = 0; i < 20000; i++) {
      const k = pickToken(logits, rng, { topK: 2 });
      counts[k] = (counts[k] as number) + 1;
    }
    expect(counts[0]).toBe(0);
    expect(counts[3]).toBe(0);
    expect((counts[1] as number) / 20000).toBeCloseTo(Math.E / (Math.E + 1), 1);
  });
  it('top-p keeps the smallest set reaching p', () => {
    // probabilities: e^3, e^2, e^1, e^0.5 normalized ~ 0.63, 0.23, 0.09, 0.05
    const rng = new Rng(9);
    const seen = new Set<number>();
    for (let i = 0; i < 5000; i++) seen.add(pickToken(logits, rng, { topP: 0.8 }));
    expect([...seen].sort()).toEqual([1, 2]);
  });
});

describe('sample', () => {
  const tok = CharTokenizer.train('abcdefgh ', ['<|endoftext|>']);
  const model = Transformer.create(modelConfig({ arch: 'gpt', nLayer: 1, nHead: 1, dModel: 8, blockSize: 8 }, tok.vocabSize), 4);

  it('is reproducible with a seed and respects max new tokens', async () => {
    const a = await sample(model, tok, 'abc', { maxNewTokens: 12, seed: 42 });
    const b = await sample(model, tok, 'abc', { maxNewTokens: 12, seed: 42 });
    expect(a.text).toBe(b.text);
    expect(a.tokens.length).toBeLessThanOrEqual(12);
    expect(a.promptTokens).toBe(3);
  });

  it('never emits special tokens other than end-of-text', async () => {
    const tok2 = CharTokenizer.train('ab', ['<|endoftext|>', '<|pad|>', '<|mask|>']);
    const m = Transformer.create(modelConfig({ arch: 'gpt', nLayer: 1, nHead: 1, dModel: 8, blockSize: 8 }, tok2.vocabSize), 4);
    // make <|pad|> (id 3) by far the likeliest token: its embedding row (tied head) gets a large norm
    const pad = tok2.specialTokens.get('<|pad|>') as number;
    const w = m.param('wte.weight');
    const rows = w.arraySync() as number[][];
    rows[pad] = rows[pad]?.map(() => 50) ?? [];
    w.assign(tf.tensor2d(rows));
    const r = await sample(m, tok2, 'ab', { maxNewTokens: 30, seed: 3, temperature: 1 });
    expect(r.text).not.toContain('<|pad|>');
    expect(r.text).not.toContain('<|mask|>');
  });

  it("never emits an id past the tokenizer's (an embedding padded past it, as Qwen's)", async () => {
    const m = Transformer.create(modelConfig({ arch: 'gpt', nLayer: 1, nHead: 1, dModel: 8, blockSize: 8 }, tok.vocabSize + 6), 4);
    const w = m.param('wte.weight');
    const rows = w.arraySync() as number[][];
    rows[tok.vocabSize + 2] = rows[tok.vocabSize + 2]?.map(() => 50) ?? []; // a padding row by far the likeliest
    w.assign(tf.tensor2d(rows));
    for (const temperature of [0, 1]) {
      const r = await sample(m, tok, 'ab', { maxNewTokens: 12, seed: 5, temperature, logprobs: 3 });
      expect(r.tokens.length).toBe(12);
      expect(Math.max(...r.tokens, ...(r.logprobs ?? []).flatMap((l) => l.top.map((t) => t.id)))).toBeLessThan(tok.vocabSize);
    }
    m.dispose();
  });

  it('stops before a stop sequence and reports finish_reason stop', async () => {
    const free = await sample(model, tok, 'a', { maxNewTokens: 40, seed: 1, temperature: 2 });
    const stopAt = free.text.slice(3, 5);
    const stopped = await sample(model, tok, 'a', { maxNewTokens: 40, seed: 1, temperature: 2, stop: [stopAt] });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(stopAt)));
  });
});

describe('topIndices', () => {
  it('gives the k largest, largest first, ties in index order, as a full sort does', () => {
    const r = new Rng(7);
    for (let trial = 0; trial < 50; trial++) {
      const v = Float32Array.from({ length: 300 }, () => Math.round(r.next() * 40)); // many ties
      const k = 1 + Math.floor(r.next() * 40);
      const sorted = Array.from(v.keys()).sort((a, b) => (v[b] as number) - (v[a] as number) || a - b);
      expect(topIndices(v, k)).toEqual(sorted.slice(0, k));
    }
  });
});

describe('top-p without sorting the vocabulary', () => {
  it('keeps exactly the smallest most-likely set reaching p, over a 151,936-token vocabulary', () => {
    const V = 151_936;
    const r = new Rng(3);
    const logits = Float32Array.from({ length: V }, () => r.next()); // a long flat tail under a peaked head, as language models give
    for (let i = 0; i < 30; i++) logits[(i * 4099) % V] = 15 - i * 0.1; // a head of 30 likely tokens holding 99% of the mass
    // the nucleus, from a full sort written here
    const order = Array.from(logits.keys()).sort((a, b) => (logits[b] as number) - (logits[a] as number));
    const w = order.map((i) => Math.exp((logits[i] as number) - (logits[order[0] as number] as number)));
    const z = w.reduce((a, b) => a + b, 0);
    let acc = 0;
    let keep = 0;
    while (acc < 0.9 * z) acc += w[keep++] as number;
    const nucleus = new Set(order.slice(0, keep));
    const rng = new Rng(11);
    const seen = new Set<number>();
    for (let i = 0; i < 300; i++) {
      const id = pickToken(logits, rng, { topP: 0.9 });
      expect(nucleus.has(id)).toBe(true);
      seen.add(id);
    }
    expect(seen.size).toBeGreaterThan(5); // a draw among the nucleus, not the top token only
  });
});

describe('decoding through a KV cache', () => {
  const tok = CharTokenizer.train('abcdefghij klmnop', ['<|endoftext|>']);
  const cases: Array<[string, ModelConfig]> = [
    ['gpt', modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 16, blockSize: 24 }, tok.vocabSize)],
    [
      'llama (GQA, RoPE)',
      decoderConfigFromHf({
        model_type: 'llama',
        hidden_size: 32,
        intermediate_size: 48,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        num_hidden_layers: 2,
        vocab_size: tok.vocabSize,
        max_position_embeddings: 24,
        rope_theta: 10000,
      }),
    ],
  ];
  it.each(cases)('%s: the same tokens and log-probabilities as a full recompute, past block_size too', async (_name, config) => {
    const model = Transformer.create(config, 5);
    for (const [, p] of model.params) if (p.rank === 2) p.assign(tf.mul(p, 8)); // confident, varied predictions
    for (const temperature of [0, 1]) {
      const o = { maxNewTokens: 40, temperature, seed: 9, logprobs: 3 }; // 40 > block_size 24: the window slides
      const cached = await sample(model, tok, 'abc de', o);
      const full = await sample(model, tok, 'abc de', { ...o, kvCache: false });
      expect(cached.tokens).toEqual(full.tokens);
      cached.logprobs?.forEach((lp, i) => {
        expect(lp.logprob).toBeCloseTo(full.logprobs?.[i]?.logprob as number, 4);
        expect(lp.top.map((t) => t.id)).toEqual(full.logprobs?.[i]?.top.map((t) => t.id));
      });
    }
    model.dispose();
  });

  it('reads a prompt once, then one position per new token', () => {
    const model = Transformer.create(cases[1]?.[1] as ModelConfig, 5);
    const cache = new KvCache();
    const ids = [1, 2, 3, 4, 5, 6];
    const full = tf.tidy(() => model.forward(tf.tensor2d([ids], [1, 6], 'int32')).arraySync() as number[][][]);
    const prefill = tf.tidy(() => model.forwardLast(tf.tensor2d([ids.slice(0, 4)], [1, 4], 'int32'), { cache }).arraySync() as number[][]);
    expect(cache.length).toBe(4);
    const step = tf.tidy(() => model.forwardLast(tf.tensor2d([[5]], [1, 1], 'int32'), { cache }).arraySync() as number[][]);
    const step2 = tf.tidy(() => model.forwardLast(tf.tensor2d([[6]], [1, 1], 'int32'), { cache }).arraySync() as number[][]);
    expect(cache.length).toBe(6);
    const close = (a: number[], b: number[]) => {
      for (const [i, x] of a.entries()) expect(x).toBeCloseTo(b[i] as number, 4);
    };
    close(prefill[0] as number[], full[0]?.[3] as number[]);
    close(step[0] as number[], full[0]?.[4] as number[]);
    close(step2[0] as number[], full[0]?.[5] as number[]);
    cache.dispose();
    model.dispose();
  });
});
