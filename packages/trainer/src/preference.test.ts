// DPO: the loss against its closed form on hand-picked numbers, gradients against finite
// differences (the per-token log-probability op alone, then the whole loss through a model), the
// pair layout, and a trainer run that learns a preference and resumes with its reference.
import { CharTokenizer } from '@crucible/model-files';
import type { PeftConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from './checkpoint';
import { Transformer } from './model';
import { answerLogProbs, chosenNll, dpoTerms, type PreferenceExample, pairBatch, referenceLogProbs, tokenLogProbs } from './preference';
import { expectGradientsMatch, scaleParams, tinyConfig, tinyLlamaConfig, useBackend } from './test-helpers';
import { defaultTrainConfig, Trainer } from './train';

beforeAll(useBackend);

const softplus = (x: number) => Math.log1p(Math.exp(x));

describe('the DPO loss', () => {
  it('equals -log sigmoid(beta x the log-ratio difference) on a hand-computed case, plus rpo_alpha x NLL', () => {
    // policy log-probabilities: chosen -2, -1; rejected -3, -0.5. Reference: -2.5, -1; -2.5, -1.
    const policy = tf.tensor1d([-2, -1, -3, -0.5]);
    const ref = Float32Array.from([-2.5, -1, -2.5, -1]);
    const t = dpoTerms(policy, ref, { beta: 0.5, rpoAlpha: 0, lengthNormalize: false });
    // pair 0: 0.5 x ((-2 + 2.5) - (-3 + 2.5)) = 0.5; pair 1: 0.5 x ((-1 + 1) - (-0.5 + 1)) = -0.25
    const expected = (softplus(-0.5) + softplus(0.25)) / 2;
    expect(t.loss.dataSync()[0]).toBeCloseTo(expected, 6);
    expect([...t.chosen.dataSync()]).toEqual([0.25, 0]);
    expect([...t.rejected.dataSync()]).toEqual([-0.25, 0.25]);
    const withRpo = dpoTerms(policy, ref, { beta: 0.5, rpoAlpha: 2, lengthNormalize: false }, tf.scalar(1.5));
    expect(withRpo.loss.dataSync()[0]).toBeCloseTo(expected + 3, 6);
  });

  it('per-token log-probabilities have the gradient finite differences give', () => {
    const logits = tf.tensor2d([0.3, -1.2, 2.0, 0.1, 0.5, -0.7, 1.1, 0.4, -0.2], [3, 3]);
    const targets = tf.tensor1d([2, 0, 1], 'int32');
    const coef = tf.tensor1d([0.7, -1.3, 2.1]); // a weighted sum exercises every row's dy
    const f = (lg: tf.Tensor) => tf.sum(tf.mul(tokenLogProbs(lg as tf.Tensor2D, targets), coef));
    const analytic = tf.grad(f)(logits).dataSync();
    const values = logits.dataSync().slice();
    const h = 1e-3;
    values.forEach((v, i) => {
      const at = (d: number) => {
        const copy = values.slice();
        copy[i] = v + d;
        return f(tf.tensor2d(copy, [3, 3])).dataSync()[0] as number;
      };
      expect(analytic[i]).toBeCloseTo((at(h) - at(-h)) / (2 * h), 3);
    });
    // and the value is log softmax at the target
    const lse = Math.log(Math.exp(0.3) + Math.exp(-1.2) + Math.exp(2.0));
    expect(tokenLogProbs(logits, targets).dataSync()[0]).toBeCloseTo(2.0 - lse, 5);
  });

  it('through a model: the gradient of the whole loss (with rpo_alpha) matches finite differences', () => {
    const model = Transformer.create(tinyConfig({ tiedEmbeddings: false }), 5);
    scaleParams(model, 3);
    const examples: PreferenceExample[] = [
      { prompt: Int32Array.from([1, 2]), chosen: Int32Array.from([3, 4]), rejected: Int32Array.from([5]) },
      { prompt: Int32Array.from([6]), chosen: Int32Array.from([7, 8, 9]), rejected: Int32Array.from([2, 3]) },
    ];
    const cfg = { beta: 0.7, rpoAlpha: 0.5, lengthNormalize: true };
    const batch = pairBatch(examples, [0, 1], 6);
    const ref = Float32Array.from([-2, -3, -2.5, -1.5]);
    const loss = () => {
      const { seq, lp, counts } = answerLogProbs(model, batch, cfg.lengthNormalize);
      return dpoTerms(seq, ref, cfg, chosenNll(lp, counts)).loss;
    };
    expectGradientsMatch(model, loss, ['wte.weight', 'h.0.attn.c_attn.weight', 'h.1.mlp.c_proj.weight', 'lm_head.weight']);
  });
});

describe('pairs as rows', () => {
  it('puts chosen rows first, marks the answer targets only, and cuts the prompt start of a long pair', () => {
    const ex: PreferenceExample = { prompt: Int32Array.from([1, 2, 3, 4]), chosen: Int32Array.from([5, 6]), rejected: Int32Array.from([7]) };
    const b = pairBatch([ex], [0], 4);
    // chosen: 4 + 2 tokens exceed T + 1 = 5, so the prompt keeps its last 3: [2,3,4,5,6]
    expect([...b.x.subarray(0, 4)]).toEqual([2, 3, 4, 5]);
    expect([...b.y.subarray(0, 4)]).toEqual([3, 4, 5, 6]);
    expect([...b.m.subarray(0, 4)]).toEqual([0, 0, 1, 1]);
    // rejected: [1,2,3,4,7] fits 5: x = 1 2 3 4, y = 2 3 4 7, loss on the last target only
    expect([...b.x.subarray(4)]).toEqual([1, 2, 3, 4]);
    expect([...b.y.subarray(4)]).toEqual([2, 3, 4, 7]);
    expect([...b.m.subarray(4)]).toEqual([0, 0, 0, 1]);
  });
});

describe('a dpo trainer', () => {
  // prompts "a?" or "b?"; the preferred answer repeats the prompt's letter in upper case
  const tok = new CharTokenizer([...'ab?ABxy']);
  const enc = (s: string) => Int32Array.from(tok.encode(s));
  const pairs = (n: number): PreferenceExample[] =>
    Array.from({ length: n }, (_, i) => {
      const c = i % 2 ? 'a' : 'b';
      return { prompt: enc(`${c}?`), chosen: enc(c.toUpperCase()), rejected: enc(i % 3 ? 'x' : 'y') };
    });
  const config = (model: Transformer, maxSteps: number) =>
    defaultTrainConfig(model.config, {
      objective: 'dpo',
      dpo: { beta: 0.5, rpoAlpha: 0, lengthNormalize: false },
      maxSteps,
      batchSize: 4,
      seqLen: 6,
      evalInterval: 0,
      evalBatches: 2,
      logInterval: 1,
      checkpointInterval: 0,
      schedule: { kind: 'constant', lr: 3e-2, minLr: 3e-2, warmupSteps: 0, decaySteps: maxSteps },
    });

  it('keeps the starting model as the reference (rewards start at 0) and learns the preference', async () => {
    const model = Transformer.create(tinyConfig({ vocabSize: tok.vocabSize }), 9);
    const data = { train: new Int32Array(0), val: new Int32Array(0), preference: { train: pairs(16), val: pairs(8) } };
    const trainer = new Trainer(model, tok, config(model, 40), data);
    const first = trainer.evaluate();
    expect(first.preference?.chosen).toBeCloseTo(0, 5);
    expect(first.preference?.margins).toBeCloseTo(0, 5);
    expect(first.loss).toBeCloseTo(Math.log(2), 5);
    const result = await trainer.run();
    expect(result.lastEval?.preference?.accuracies).toBe(1);
    expect(result.lastEval?.preference?.margins).toBeGreaterThan(1);
    expect(result.lastEval?.loss).toBeLessThan(0.3);
    // the reference is the model it started from: recomputing it now differs from the stored one
    const stored = referenceLogProbs(Transformer.create(tinyConfig({ vocabSize: tok.vocabSize }), 9), data.preference.val, 6, 4, false);
    const now = referenceLogProbs(model, data.preference.val, 6, 4, false);
    expect(Math.abs((now[0] as number) - (stored[0] as number))).toBeGreaterThan(0.1);
  });

  it('trains a llama-architecture model (GQA, RoPE) the same way', async () => {
    const llama = tinyLlamaConfig(tok.vocabSize);
    const model = Transformer.create(llama, 6);
    const trainer = new Trainer(model, tok, config(model, 30), {
      train: new Int32Array(0),
      val: new Int32Array(0),
      preference: { train: pairs(16), val: pairs(8) },
    });
    const result = await trainer.run();
    expect(result.lastEval?.preference?.accuracies).toBe(1);
    expect(result.lastEval?.preference?.margins).toBeGreaterThan(0.5);
  });

  it('with LoRA, takes the base (its adapter at zero) as the reference, and trains the adapter only', async () => {
    const base = Transformer.create(tinyConfig({ vocabSize: tok.vocabSize }), 3);
    scaleParams(base, 3);
    const peft: PeftConfig = { type: 'lora', rank: 2, alpha: 4, dropout: 0, targets: ['attn.c_attn', 'mlp.c_fc'] };
    const lora = Transformer.create({ ...base.config, peft }, 8, base.weights());
    const val = pairs(8);
    const fromBase = referenceLogProbs(base, val, 6, 4, false);
    const fromLora = referenceLogProbs(lora, val, 6, 4, false);
    for (const [i, v] of fromBase.entries()) expect(fromLora[i]).toBeCloseTo(v, 5);
    const before = base.param('h.0.attn.c_attn.weight').dataSync().slice();
    const trainer = new Trainer(lora, tok, config(lora, 10), { train: new Int32Array(0), val: new Int32Array(0), preference: { train: pairs(12), val } });
    const result = await trainer.run();
    expect(result.lastEval?.preference?.margins).toBeGreaterThan(0);
    expect([...lora.param('h.0.attn.c_attn.weight').dataSync()]).toEqual([...before]);
  });

  it('resumes from a checkpoint with the reference of its start: the same losses as a run without a break', async () => {
    const make = () => Transformer.create(tinyConfig({ vocabSize: tok.vocabSize }), 4);
    const data = () => ({ train: new Int32Array(0), val: new Int32Array(0), preference: { train: pairs(12), val: pairs(4) } });
    const straight = new Trainer(make(), tok, config(make(), 8), data());
    const all: number[] = [];
    await straight.run({ onStep: (m) => void all.push(m.loss) });
    const first = new Trainer(make(), tok, config(make(), 8), data());
    const part: number[] = [];
    for (let i = 0; i < 4; i++) part.push(first.trainStep().loss);
    const bytes = first.checkpoint();
    const resumed = Trainer.fromCheckpoint(decodeCheckpoint(bytes), data());
    await resumed.run({ onStep: (m) => void part.push(m.loss) });
    expect(part).toHaveLength(8);
    for (const [i, l] of part.entries()) expect(l).toBeCloseTo(all[i] as number, 5);
  });
});
