import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { countParams, modelConfig } from './config';
import { Transformer } from './model';
import { gradCheck, lossOf, randomTokens, scaleParams, tinyConfig, useBackend } from './test-helpers';

beforeAll(useBackend);

describe('gradients match finite differences', () => {
  it('GPT: embeddings, attention, LayerNorm, MLP (untied head, with biases)', () => {
    const model = Transformer.create(tinyConfig({ tiedEmbeddings: false }), 5);
    scaleParams(model, 20);
    const n = gradCheck(
      model,
      [
        'wte.weight',
        'wpe.weight',
        'h.0.ln_1.weight',
        'h.0.ln_1.bias',
        'h.0.attn.c_attn.weight',
        'h.0.attn.c_attn.bias',
        'h.0.attn.c_proj.weight',
        'h.1.mlp.c_fc.weight',
        'h.1.mlp.c_proj.bias',
        'ln_f.weight',
        'lm_head.weight',
      ],
      2,
      6,
    );
    expect(n).toBe(33);
    model.dispose();
  });

  it('BERT: bidirectional attention and the MLM head, with a loss mask', () => {
    const model = Transformer.create(tinyConfig({ arch: 'bert' }), 6);
    scaleParams(model, 20);
    const w = Float32Array.from({ length: 12 }, (_, i) => (i % 3 === 0 ? 1 : 0));
    gradCheck(model, ['wte.weight', 'h.0.attn.c_attn.weight', 'mlm_head.dense.weight', 'mlm_head.ln.weight', 'mlm_head.bias'], 2, 6, w);
    model.dispose();
  });
});

describe('forward', () => {
  it('causal mask: changing token t+1 leaves the logits at positions <= t unchanged', () => {
    const model = Transformer.create(tinyConfig(), 7);
    const T = 6;
    const a = Array.from(randomTokens(T, 11, 9));
    for (let t = 0; t < T - 1; t++) {
      const b = [...a];
      b[t + 1] = ((b[t + 1] as number) + 1) % 11;
      const [la, lb] = [a, b].map((ids) => model.forward(tf.tensor2d(ids, [1, T], 'int32')).arraySync()[0] as number[][]);
      for (let s = 0; s <= t; s++) expect(lb?.[s]).toEqual(la?.[s]);
      expect(lb?.[t + 1]).not.toEqual(la?.[t + 1]);
    }
    model.dispose();
  });

  it('bert attends both ways: changing the last token changes the first position', () => {
    const model = Transformer.create(tinyConfig({ arch: 'bert' }), 7);
    const a = Array.from(randomTokens(6, 11, 9));
    const b = [...a];
    b[5] = ((b[5] as number) + 1) % 11;
    const [la, lb] = [a, b].map((ids) => model.forward(tf.tensor2d(ids, [1, 6], 'int32')).arraySync()[0]?.[0]);
    expect(lb).not.toEqual(la);
    model.dispose();
  });

  it('loss at initialization is close to ln(vocab_size)', () => {
    const cfg = modelConfig('gpt-nano', 65);
    const model = Transformer.create(cfg, 1);
    const x = randomTokens(4 * 64, 65, 1);
    const y = randomTokens(4 * 64, 65, 2);
    expect(Math.abs(lossOf(model, x, y, 4, 64) - Math.log(65))).toBeLessThan(0.05);
    model.dispose();
  });

  it('has the parameter count of the config, with GPT-2 style names', () => {
    const cfg = modelConfig('gpt-nano', 65);
    const model = Transformer.create(cfg);
    expect(model.numParams()).toBe(countParams(cfg));
    expect(model.numParams()).toBe(809_856); // nanoGPT's 0.80M for this shape, position embeddings included
    expect([...model.params.keys()].slice(0, 4)).toEqual(['wte.weight', 'wpe.weight', 'h.0.ln_1.weight', 'h.0.ln_1.bias']);
    model.dispose();
  });

  it('freezing removes parameters from the trainable set', () => {
    const model = Transformer.create(tinyConfig());
    model.freeze('h.0.');
    expect([...model.trainable().keys()].some((n) => n.startsWith('h.0.'))).toBe(false);
    expect(model.trainable().has('h.1.attn.c_attn.weight')).toBe(true);
    model.unfreeze(/^h\.0\.ln/);
    expect(model.trainable().has('h.0.ln_1.weight')).toBe(true);
    model.dispose();
  });
});
