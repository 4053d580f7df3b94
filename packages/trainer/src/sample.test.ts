import { CharTokenizer } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelConfig } from './config';
import { Transformer } from './model';
import { Rng } from './rng';
import { pickToken, sample } from './sample';
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

  it('stops before a stop sequence and reports finish_reason stop', async () => {
    const free = await sample(model, tok, 'a', { maxNewTokens: 40, seed: 1, temperature: 2 });
    const stopAt = free.text.slice(3, 5);
    const stopped = await sample(model, tok, 'a', { maxNewTokens: 40, seed: 1, temperature: 2, stop: [stopAt] });
    expect(stopped.finishReason).toBe('stop');
    expect(stopped.text).toBe(free.text.slice(0, free.text.indexOf(stopAt)));
  });
});
