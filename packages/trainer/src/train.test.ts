import { CharTokenizer, trainTokenizer } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { decodeCheckpoint } from './checkpoint';
import { modelConfig } from './config';
import { Transformer } from './model';
import { globalNorm } from './optim';
import { useBackend } from './test-helpers';
import { defaultTrainConfig, type TrainConfig, Trainer } from './train';

beforeAll(useBackend);

const text = 'First Citizen:\nBefore we proceed any further, hear me speak.\nAll:\nSpeak, speak.\n'.repeat(30);
const tok = CharTokenizer.train(text, ['<|endoftext|>']);
const ids = Int32Array.from(tok.encode(text));
const data = { train: ids.subarray(0, 2000), val: ids.subarray(2000) };
const small = modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 32, blockSize: 16 }, tok.vocabSize, { dropout: 0.1 });

function trainer(over: Partial<TrainConfig> = {}, seed = 3) {
  const cfg = defaultTrainConfig(small, { maxSteps: 8, batchSize: 4, evalInterval: 4, evalBatches: 2, logInterval: 1, seed: 11, ...over });
  return new Trainer(Transformer.create(small, seed), tok, cfg, data);
}

describe('training loop', () => {
  it('evaluates over chunks of the head as over whole logits (loss, accuracy, tokens; chunks without weight skipped)', () => {
    const valWeights = Float32Array.from(data.val, (_, i) => (i < 40 || i % 5 === 0 ? 0 : 1)); // zero-weight runs: whole chunks count nothing
    for (const weighted of [false, true]) {
      const cfg = defaultTrainConfig(small, { maxSteps: 3, batchSize: 4, evalInterval: 0, evalBatches: 2, seed: 11 });
      const t = new Trainer(Transformer.create(small, 3), tok, cfg, weighted ? { ...data, valWeights } : data);
      for (let i = 0; i < 3; i++) t.trainStep();
      const whole = t.evaluate(Number.POSITIVE_INFINITY);
      const chunked = t.evaluate(7 * tok.vocabSize * 4); // 7 rows per chunk: 64-row batches split unevenly
      expect(chunked.tokens).toBe(whole.tokens);
      expect(whole.tokens).toBeGreaterThan(0);
      expect(Math.abs(chunked.loss - whole.loss), `weighted ${weighted}`).toBeLessThan(1e-5);
      expect(Math.abs(chunked.accuracy - whole.accuracy)).toBeLessThan(1e-9);
      t.optimizer.dispose();
      t.model.dispose();
    }
  });

  it('overfits a single batch to a loss under 0.05', () => {
    const cfg = modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 48, blockSize: 16 }, tok.vocabSize);
    const t = new Trainer(
      Transformer.create(cfg, 1),
      tok,
      defaultTrainConfig(cfg, {
        maxSteps: 400,
        batchSize: 2,
        evalInterval: 0,
        evalBatches: 1,
        schedule: { kind: 'constant', lr: 3e-3, minLr: 3e-3, warmupSteps: 10, decaySteps: 400 },
        optimizer: { kind: 'adamw', beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0 },
      }),
      { train: ids.subarray(0, 17), val: ids.subarray(0, 17) }, // exactly one window: the same batch every step
    );
    let loss = Number.POSITIVE_INFINITY;
    for (let i = 0; i < 400 && loss >= 0.05; i++) loss = t.trainStep().loss;
    expect(loss).toBeLessThan(0.05);
    t.model.dispose();
  });

  it('resuming from a checkpoint gives the same losses as an uninterrupted run (dropout on)', async () => {
    const full = trainer();
    const fullLosses: number[] = [];
    await full.run({ onStep: (m) => void fullLosses.push(m.loss) });

    const first = trainer();
    const firstLosses: number[] = [];
    let bytes: Uint8Array | undefined;
    const ctl = new AbortController();
    await first.run(
      {
        onStep: (m) => {
          firstLosses.push(m.loss);
          if (m.step === 5) {
            bytes = first.checkpoint();
            ctl.abort();
          }
        },
      },
      ctl.signal,
    );
    expect(firstLosses).toHaveLength(5);
    const resumed = Trainer.resume(bytes as Uint8Array, data);
    expect(resumed.step).toBe(5);
    const rest: number[] = [];
    const result = await resumed.run({ onStep: (m) => void rest.push(m.loss) });
    expect(result.status).toBe('completed');
    expect([...firstLosses, ...rest]).toEqual(fullLosses);
    expect(fullLosses[7]).toBeLessThan(fullLosses[0] as number);
  });

  it('does not leak tensors across steps', () => {
    const t = trainer({ gradAccumSteps: 2 });
    t.trainStep();
    t.evaluate();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 4; i++) t.trainStep();
    t.evaluate();
    t.checkpoint();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('gradient accumulation over 2 micro-batches of 2 equals one batch of 4', () => {
    const cfg = { ...small, dropout: 0 };
    const mk = (over: Partial<TrainConfig>) =>
      new Trainer(Transformer.create(cfg, 9), tok, defaultTrainConfig(cfg, { maxSteps: 2, evalBatches: 1, seed: 5, ...over }), {
        train: ids.subarray(0, 17), // a single window, so both runs see the same tokens
        val: ids.subarray(0, 17),
      });
    const a = mk({ batchSize: 4, gradAccumSteps: 1 }).trainStep();
    const b = mk({ batchSize: 2, gradAccumSteps: 2 }).trainStep();
    expect(b.loss).toBeCloseTo(a.loss, 5);
    expect(b.gradNorm).toBeCloseTo(a.gradNorm, 4);
  });

  it('clips by global norm but reports the norm before clipping', () => {
    const t = trainer({ maxGradNorm: 1e-3 });
    const m = t.trainStep();
    expect(m.gradNorm).toBeGreaterThan(1e-3);
    // after one step the first moment is (1 - beta1) * clipped gradient, whose global norm is max_grad_norm
    const mNorm = globalNorm(t.optimizer.m.values());
    expect(mNorm).toBeCloseTo((1 - t.config.optimizer.beta1) * 1e-3, 6);
    const u = trainer({ maxGradNorm: 0 });
    const mu = u.trainStep();
    expect(globalNorm(u.optimizer.m.values())).toBeCloseTo((1 - u.config.optimizer.beta1) * mu.gradNorm, 4);
  });

  it('evaluation reports loss, perplexity = exp(loss) and token accuracy', () => {
    const e = trainer().evaluate();
    expect(e.perplexity).toBeCloseTo(Math.exp(e.loss), 6);
    expect(e.accuracy).toBeGreaterThanOrEqual(0);
    expect(e.accuracy).toBeLessThanOrEqual(1);
    expect(e.tokens).toBe(2 * 4 * 16);
  });

  it('trains a BERT encoder with the masked-LM objective', async () => {
    const btok = trainTokenizer(text, { type: 'char' });
    const bids = Int32Array.from(btok.encode(text));
    const cfg = modelConfig({ arch: 'bert', nLayer: 1, nHead: 2, dModel: 32, blockSize: 16 }, btok.vocabSize);
    const t = new Trainer(
      Transformer.create(cfg, 2),
      btok,
      defaultTrainConfig(cfg, {
        maxSteps: 30,
        batchSize: 8,
        evalInterval: 0,
        evalBatches: 2,
        schedule: { kind: 'constant', lr: 3e-3, minLr: 3e-3, warmupSteps: 0, decaySteps: 30 },
      }),
      { train: bids.subarray(0, 2000), val: bids.subarray(2000) },
    );
    const e0 = t.evaluate();
    await t.run();
    const e1 = t.evaluate();
    expect(e0.tokens).toBeGreaterThan(0);
    expect(e0.tokens).toBeLessThan(2 * 8 * 16 * 0.3); // only ~15% of positions are scored
    expect(e1.loss).toBeLessThan(e0.loss);
  });

  it('checkpoints carry config, tokenizer, step and optimizer state', () => {
    const t = trainer();
    t.trainStep();
    const ck = decodeCheckpoint(t.checkpoint());
    expect(ck.state?.step).toBe(1);
    expect(ck.state?.optimizerT).toBe(1);
    expect(ck.train?.batchSize).toBe(4);
    expect(ck.tokenizer.encode('Speak')).toEqual(tok.encode('Speak'));
    expect(ck.optimizerState.has('m.wte.weight')).toBe(true);
    expect(ck.modelConfig).toEqual(small);
  });

  it('resumes a checkpoint with a new step count, checked like any config (not changed after the check)', () => {
    const t = trainer();
    t.trainStep();
    const bytes = t.checkpoint();
    const data = { train: ids.subarray(0, 900), val: ids.subarray(900) };
    const resumed = Trainer.fromCheckpoint(decodeCheckpoint(bytes), data, { maxSteps: 7 });
    expect(resumed.config.maxSteps).toBe(7);
    expect(resumed.step).toBe(1);
    expect(() => Trainer.fromCheckpoint(decodeCheckpoint(bytes), data, { maxSteps: 0 })).toThrow(/maxSteps must be an integer >= 1/);
  });
});
