// GRPO: the loss against its closed form on hand-picked numbers, its gradient through a model
// against finite differences (ratios away from 1, so that the clip and the KL term both act),
// group advantages by hand, group sampling (stop tokens, stop text, the budget), and a trainer that
// learns what a grader rewards.
import { CharTokenizer } from '@crucible/model-files';
import type { GrpoConfig } from '@crucible/training-config';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { groupAdvantages, grpoTerms, meanPooledEmbeddings, type ReinforcementData, rolloutBatch, rolloutLogProbs, sampleGroup } from './grpo';
import { Transformer } from './model';
import { Rng } from './rng';
import { expectGradientsMatch, scaleParams, tinyConfig, tinyLlamaConfig, useBackend } from './test-helpers';
import { defaultTrainConfig, Trainer } from './train';

beforeAll(useBackend);

const cfg = (over: Partial<GrpoConfig> = {}): GrpoConfig => ({
  groupSize: 2,
  klBeta: 0.1,
  clipEpsilon: 0.2,
  temperature: 1,
  maxCompletionTokens: 3,
  evalSamples: 1,
  ...over,
});

describe('the GRPO loss', () => {
  it('equals the clipped surrogate plus beta x KL (k3), averaged per answer then over answers, on a hand-computed case', () => {
    // two answers of 2 and 1 tokens (the third position is padding)
    const lp = [
      [-1, -2, 0],
      [-0.5, 0, 0],
    ];
    const old = [
      [-1.5, -2, 0],
      [-0.4, 0, 0],
    ];
    const ref = [
      [-1.2, -1.8, 0],
      [-0.7, 0, 0],
    ];
    const m = [
      [1, 1, 0],
      [1, 0, 0],
    ];
    const A = [1, -2];
    const beta = 0.1;
    const eps = 0.2;
    // by hand, token by token
    const perAnswer = lp.map((row, r) => {
      let sum = 0;
      let n = 0;
      row.forEach((l, t) => {
        if (!m[r]?.[t]) return;
        const rho = Math.exp(l - (old[r]?.[t] as number));
        const a = A[r] as number;
        const clipped = Math.min(Math.max(rho, 1 - eps), 1 + eps);
        const d = (ref[r]?.[t] as number) - l;
        sum += -Math.min(rho * a, clipped * a) + beta * (Math.exp(d) - d - 1);
        n++;
      });
      return sum / n;
    });
    const expected = (perAnswer[0] as number) / 2 + (perAnswer[1] as number) / 2;
    const t = grpoTerms(
      tf.tensor2d(lp),
      Float32Array.from(old.flat()),
      Float32Array.from(ref.flat()),
      Float32Array.from(A),
      Float32Array.from(m.flat()),
      cfg({ klBeta: beta }),
    );
    expect(t.loss.dataSync()[0]).toBeCloseTo(expected, 5);
    // the first answer's first token: rho = e^0.5 = 1.65 is clipped to 1.2 (A > 0 takes the min)
    const klTokens = [[-0.2, 0.2], [-0.2]].flat();
    const klMean = klTokens.reduce((a, d) => a + Math.exp(d) - d - 1, 0) / 3;
    expect(t.kl.dataSync()[0]).toBeCloseTo(klMean, 5);
  });

  it('through a model: the gradient matches finite differences (ratios away from 1, KL on)', () => {
    const model = Transformer.create(tinyConfig({ tiedEmbeddings: false }), 5);
    scaleParams(model, 3);
    const batch = rolloutBatch([Int32Array.from([1, 2]), Int32Array.from([6])], [[3, 4], [5], [7, 8, 9], [2]], 6);
    const now = rolloutLogProbs(model, batch).dataSync() as Float32Array;
    // the answers as if sampled by a slightly different model, and a reference further away
    // (ratios of e^0.3, 1 and e^-0.3: clipped or not by 0.1, and far from the clip's kinks)
    const old = now.map((v, i) => (batch.m[i] ? v + 0.3 * ((i % 3) - 1) : 0));
    const ref = now.map((v, i) => (batch.m[i] ? v - 0.3 * Math.cos(i) : 0));
    const advantages = Float32Array.from([0.9, -0.9, 1.3, -0.4]);
    const c = cfg({ klBeta: 0.3, clipEpsilon: 0.1 });
    const loss = () => grpoTerms(rolloutLogProbs(model, batch), old, ref, advantages, batch.m, c).loss;
    expectGradientsMatch(model, loss, ['wte.weight', 'h.0.attn.c_attn.weight', 'h.1.mlp.c_proj.weight', 'lm_head.weight']);
  });

  it('normalises advantages within each group (unbiased std + 1e-4; a group of equal scores teaches nothing)', () => {
    const { advantages, stds } = groupAdvantages([1, 0, 0.5, 0.5, 0, 2, 4], 2);
    const s = Math.sqrt(0.5);
    expect(stds.slice(0, 3)).toEqual([s, 0, Math.sqrt(2)]);
    expect(advantages[0]).toBeCloseTo(0.5 / (s + 1e-4), 5);
    expect(advantages[1]).toBeCloseTo(-0.5 / (s + 1e-4), 5);
    expect([advantages[2], advantages[3]]).toEqual([0, 0]);
    expect(advantages[4]).toBeCloseTo(-1 / (Math.sqrt(2) + 1e-4), 5);
    // a last group of one: no spread, no advantage
    expect(advantages[6]).toBe(0);
  });

  it('lays rows out as prompt + answer, loss on the answer tokens only', () => {
    const b = rolloutBatch([Int32Array.from([1, 2, 3])], [[4, 5], [6]], 4);
    expect([...b.x.subarray(0, 4)]).toEqual([1, 2, 3, 4]);
    expect([...b.y.subarray(0, 4)]).toEqual([2, 3, 4, 5]);
    expect([...b.m.subarray(0, 4)]).toEqual([0, 0, 1, 1]);
    expect([...b.y.subarray(4, 8)]).toEqual([2, 3, 6, 0]);
    expect([...b.m.subarray(4, 8)]).toEqual([0, 0, 1, 0]);
    expect(b.tokens).toBe(5 + 4);
  });
});

describe('sampling a group', () => {
  const tok = new CharTokenizer([...'ab?xy<|>imend_']);
  const model = () => Transformer.create(tinyConfig({ vocabSize: tok.vocabSize, blockSize: 12 }), 2);

  it('ends an answer at a stop token (kept in its tokens, not in its text) or at the budget, reproducibly', () => {
    const m = model();
    const prompt = Int32Array.from(tok.encode('a?'));
    const all = Array.from({ length: tok.vocabSize }, (_, i) => i);
    const one = sampleGroup(m, tok, prompt, { count: 3, maxNewTokens: 5, temperature: 1, stopTokens: all, rng: new Rng(1) });
    for (const r of one) {
      expect(r.tokens).toHaveLength(1);
      expect(r.text).toBe('');
    }
    const long = sampleGroup(m, tok, prompt, { count: 4, maxNewTokens: 5, temperature: 1, stopTokens: [], rng: new Rng(1) });
    for (const r of long) expect(r.tokens).toHaveLength(5);
    const again = sampleGroup(m, tok, prompt, { count: 4, maxNewTokens: 5, temperature: 1, stopTokens: [], rng: new Rng(1) });
    expect(again.map((r) => r.text)).toEqual(long.map((r) => r.text));
    // each answer's log-probability is the sum of its tokens' under the model (temperature 1)
    const b = rolloutBatch([prompt], [long[0]?.tokens as number[]], 12);
    const lp = rolloutLogProbs(m, b).dataSync();
    expect(long[0]?.logprob).toBeCloseTo(
      [...lp].reduce((a, v) => a + v, 0),
      4,
    );
    // the budget is capped by the context: a prompt of 10 leaves 11 - 10 + ... at most T - 1 tokens
    const capped = sampleGroup(m, tok, Int32Array.from(tok.encode('ab?ab?ab?a')), {
      count: 1,
      maxNewTokens: 50,
      temperature: 1,
      stopTokens: [],
      rng: new Rng(2),
    });
    expect(capped[0]?.tokens).toHaveLength(11);
  });

  it('ends an answer at a stop text, which its text leaves out', () => {
    const m = model();
    // greedy from a model trained on nothing repeats itself; a one-character stop text always appears
    const r = sampleGroup(m, tok, Int32Array.from(tok.encode('a?')), {
      count: 2,
      maxNewTokens: 8,
      temperature: 0.01,
      stopTokens: [],
      stopText: tok.decode([5]),
      rng: new Rng(3),
    });
    for (const x of r) if (x.tokens.length < 8) expect(tok.decode(x.tokens).endsWith(tok.decode([5]))).toBe(true);
    for (const x of r) expect(x.text.includes(tok.decode([5]))).toBe(false);
  });
});

describe('embeddings for the cosine metric', () => {
  it('are the mean of the final hidden states over the text’s tokens', () => {
    const tok = new CharTokenizer([...'abc ']);
    const model = Transformer.create(tinyConfig({ vocabSize: tok.vocabSize }), 4);
    const [e] = meanPooledEmbeddings(model, tok, ['ab c']);
    const ids = tok.encode('ab c');
    const h = model.hidden(tf.tensor2d(ids, [1, ids.length], 'int32')).dataSync();
    const C = model.config.dModel;
    for (let c = 0; c < C; c++) {
      let sum = 0;
      for (let t = 0; t < ids.length; t++) sum += h[t * C + c] as number;
      expect(e?.[c]).toBeCloseTo(sum / ids.length, 5);
    }
    expect(meanPooledEmbeddings(model, tok, [''])[0]?.every((v) => v === 0)).toBe(true);
  });
});

describe('a grpo trainer', () => {
  // prompts "a?" and "b?"; the grader gives 1 to an answer that starts with the prompt's letter
  const tok = new CharTokenizer([...'ab?xy']);
  const enc = (s: string) => Int32Array.from(tok.encode(s));
  const eot = tok.special('eot') as number;
  const prompts = (n: number) => Array.from({ length: n }, (_, i) => enc(i % 2 ? 'a?' : 'b?'));
  const data = (reference?: Transformer): ReinforcementData => {
    const train = prompts(8);
    const val = prompts(4);
    return {
      train,
      val,
      grade: (set, i, answer) => (answer.startsWith(tok.decode([...((set === 'train' ? train : val)[i]?.subarray(0, 1) ?? [])])) ? 1 : 0),
      ...(reference ? { reference } : {}),
      stopTokens: [eot],
    };
  };
  const config = (model: Transformer, maxSteps: number, klBeta: number, lr = 1e-2) =>
    defaultTrainConfig(model.config, {
      objective: 'grpo',
      grpo: cfg({ groupSize: 8, klBeta, maxCompletionTokens: 2, evalSamples: 4 }),
      maxSteps,
      batchSize: 4,
      seqLen: 6,
      evalInterval: 0,
      evalBatches: 1,
      logInterval: 1,
      checkpointInterval: 0,
      schedule: { kind: 'constant', lr, minLr: lr, warmupSteps: 0, decaySteps: maxSteps },
    });

  it('raises the validation reward of what the grader rewards, with KL 0 at the start and > 0 once it moved', async () => {
    // (wide enough for the prompt's letter to reach the answer quickly: 8 dimensions learn it too, slowly)
    const d = 32;
    const model = Transformer.create(tinyConfig({ vocabSize: tok.vocabSize, dModel: d }), 9);
    const reference = Transformer.create(tinyConfig({ vocabSize: tok.vocabSize, dModel: d }), 9);
    const trainer = new Trainer(model, tok, config(model, 40, 0.04), { train: new Int32Array(0), val: new Int32Array(0), reinforcement: data(reference) });
    const before = trainer.evaluate();
    const steps: Array<{ kl: number; reward: number }> = [];
    const result = await trainer.run({ onStep: (m) => void steps.push({ kl: m.reinforcement?.kl ?? -1, reward: m.reinforcement?.reward ?? -1 }) });
    expect(steps[0]?.kl).toBeCloseTo(0, 5);
    expect(steps.at(-1)?.kl).toBeGreaterThan(0);
    expect(before.reinforcement?.reward).toBeLessThan(0.5);
    expect(result.lastEval?.reinforcement?.reward).toBeGreaterThan(0.9);
    expect(result.lastEval?.loss).toBeCloseTo(-(result.lastEval?.reinforcement?.reward as number), 6);
  });

  it('trains a llama-architecture model without a reference (kl_beta 0)', async () => {
    const model = Transformer.create(tinyLlamaConfig(tok.vocabSize), 6);
    const trainer = new Trainer(model, tok, config(model, 30, 0, 3e-2), { train: new Int32Array(0), val: new Int32Array(0), reinforcement: data() });
    const before = trainer.evaluate();
    const result = await trainer.run();
    expect(result.lastEval?.reinforcement?.reward).toBeGreaterThan((before.reinforcement?.reward as number) + 0.3);
  });

  it('refuses a KL penalty without a reference', () => {
    const model = Transformer.create(tinyConfig({ vocabSize: tok.vocabSize }), 9);
    expect(() => new Trainer(model, tok, config(model, 3, 0.1), { train: new Int32Array(0), val: new Int32Array(0), reinforcement: data() })).toThrow(
      /needs the reference model/,
    );
  });
});
