// Sample packing: examples packed in one row read exactly the logits they read alone (GPT and the
// llama architecture, each example's positions from 0, attention never crossing an example), so
// their losses are the unpacked ones; the packer's layout on a hand-made case; a packed run trains.
import { CharTokenizer } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { Transformer } from './model';
import { type PackedExample, packRows, streamExamples } from './packing';
import { tokenLogProbs } from './preference';
import { randomTokens, scaleParams, tinyConfig, tinyLlamaConfig, useBackend } from './test-helpers';
import { defaultTrainConfig, Trainer } from './train';

beforeAll(useBackend);

const LLAMA = tinyLlamaConfig(23);

/** Log-probabilities of each row's targets, [B * T]. */
function logProbs(
  model: Transformer,
  b: { B: number; T: number; x: Int32Array; y: Int32Array; packing?: ReturnType<typeof packRows>['packing'] },
): Float32Array {
  return tf.tidy(() => {
    const logits = model.forwardFlat(tf.tensor2d(b.x, [b.B, b.T], 'int32'), { packing: b.packing });
    return tokenLogProbs(logits, tf.tensor1d(b.y, 'int32')).dataSync() as Float32Array;
  });
}

describe.each([
  ['gpt', tinyConfig({ vocabSize: 23, blockSize: 16 })],
  ['llama architecture (GQA 3:1)', LLAMA],
])('packed examples on a %s model', (_name, config) => {
  it('read the logits they read alone: every target log-probability within 1e-5', () => {
    const model = Transformer.create(config, 4);
    scaleParams(model, 3);
    const lengths = [5, 3, 7, 4, 2, 6];
    let seed = 10;
    const examples: PackedExample[] = lengths.map((n) => ({ tokens: randomTokens(n, config.vocabSize, seed++) }));
    const T = 12;
    const packed = packRows(examples, [0, 1, 2, 3, 4, 5], 3, T);
    expect(packed.examples).toBe(6);
    const together = logProbs(model, packed);
    let worst = 0;
    let checked = 0;
    for (let id = 0; id < examples.length; id++) {
      const alone = packRows(examples, [id], 1, T, 1); // one example, padding after it
      const single = logProbs(model, { ...alone, packing: undefined }); // a plain causal row: the unpacked reference
      const n = (examples[id]?.tokens.length as number) - 1;
      const at = packed.packing.segments.indexOf(id);
      for (let i = 0; i < n; i++) {
        worst = Math.max(worst, Math.abs((together[at + i] as number) - (single[i] as number)));
        checked++;
      }
    }
    expect(checked).toBe(lengths.reduce((a, n) => a + n - 1, 0));
    expect(worst).toBeLessThan(1e-5);
    // and the mask matters: without it the later examples of a row read the earlier ones
    const leaky = logProbs(model, { ...packed, packing: undefined });
    const second = packed.packing.segments.indexOf(1);
    expect(Math.abs((leaky[second] as number) - (together[second] as number))).toBeGreaterThan(1e-3);
    model.dispose();
  });

  // the packed loss is the sum of the examples' losses, so its gradient is the sum of theirs: this
  // checks the backward pass of packed attention (the flash kernel's keyStart on the native backend,
  // the block-diagonal mask elsewhere), with activation checkpointing too (keyStart an int32 constant)
  for (const checkpointActivations of [false, true])
    it(`give the gradients of the examples alone, summed (activation checkpointing ${checkpointActivations ? 'on' : 'off'})`, () => {
      const model = Transformer.create(config, 5);
      scaleParams(model, 2);
      const lengths = [5, 3, 7, 4, 2, 6];
      let seed = 30;
      const examples: PackedExample[] = lengths.map((n) => ({ tokens: randomTokens(n, config.vocabSize, seed++) }));
      const T = 12;
      const params = [...model.params.values()];
      const gradsOf = (b: ReturnType<typeof packRows>, packing: boolean) => {
        const { grads } = tf.variableGrads(() => {
          const idx = tf.tensor2d(b.x, [b.B, b.T], 'int32');
          const logits = model.forwardFlat(idx, { packing: packing ? b.packing : undefined, training: true, checkpointActivations });
          const lp = tokenLogProbs(logits, tf.tensor1d(b.y, 'int32'));
          return tf.sum(tf.mul(lp, tf.tensor1d(b.w ?? new Float32Array(b.B * b.T).fill(1)))) as tf.Scalar;
        }, params);
        const out = params.map((v) => Float32Array.from((grads[v.name] as tf.Tensor).dataSync()));
        tf.dispose(Object.values(grads));
        return out;
      };
      const packed = packRows(examples, [0, 1, 2, 3, 4, 5], 3, T);
      const together = gradsOf(packed, true);
      const sum = params.map((v) => new Float32Array(v.size));
      for (let id = 0; id < examples.length; id++) {
        const alone = gradsOf(packRows(examples, [id], 1, T, 1), false);
        for (const [i, g] of alone.entries()) {
          const acc = sum[i] as Float32Array;
          for (let j = 0; j < g.length; j++) acc[j] = (acc[j] as number) + (g[j] as number);
        }
      }
      let worst = 0;
      let scale = 0;
      for (const [i, g] of together.entries()) {
        const want = sum[i] as Float32Array;
        for (let j = 0; j < g.length; j++) {
          worst = Math.max(worst, Math.abs((g[j] as number) - (want[j] as number)));
          scale = Math.max(scale, Math.abs(g[j] as number));
        }
      }
      expect(scale).toBeGreaterThan(1e-2);
      expect(worst / scale).toBeLessThan(2e-5);
      model.dispose();
    });
});

describe('the packer', () => {
  it('fills rows in order, restarts positions per example, keeps loss weights and pads the rest', () => {
    const examples: PackedExample[] = [
      { tokens: Int32Array.from([1, 2, 3]), weights: Float32Array.from([0, 0, 1]) },
      { tokens: Int32Array.from([4, 5, 6, 7]) },
      { tokens: Int32Array.from([8, 9]) },
    ];
    const b = packRows(examples, [0, 1, 2], 2, 5);
    // row 0: example 0 (2 positions), example 1 (3 positions); row 1: example 2 (1 position), padding
    expect([...b.x]).toEqual([1, 2, 4, 5, 6, 8, 0, 0, 0, 0]);
    expect([...b.y]).toEqual([2, 3, 5, 6, 7, 9, 0, 0, 0, 0]);
    expect([...(b.w ?? [])]).toEqual([0, 1, 1, 1, 1, 1, 0, 0, 0, 0]);
    expect([...b.packing.segments]).toEqual([0, 0, 1, 1, 1, 2, -1, -1, -1, -1]);
    expect([...b.packing.positions]).toEqual([0, 1, 0, 1, 2, 0, 0, 0, 0, 0]);
  });

  it('cuts a document longer than a row into pieces that overlap by one token', () => {
    const tokens = Int32Array.from({ length: 10 }, (_, i) => i);
    const pieces = streamExamples(tokens, [0, 7], 4);
    expect(pieces.map((p) => [...p.tokens])).toEqual([
      [0, 1, 2, 3, 4],
      [4, 5, 6],
      [7, 8, 9],
    ]);
  });

  it('a packed run of short examples trains: the loss falls', async () => {
    const tok = new CharTokenizer([...'abcdefgh.']);
    const docs = Array.from({ length: 40 }, (_, i) => 'abcdefgh'.slice(i % 4, (i % 4) + 3 + (i % 3)) + '.');
    const ids = docs.flatMap((d) => [...tok.encode(d)]);
    const starts: number[] = [];
    for (let i = 0, at = 0; i < docs.length; at += (docs[i] as string).length, i++) starts.push(at);
    const model = Transformer.create(tinyConfig({ vocabSize: tok.vocabSize, blockSize: 16 }), 2);
    const data = { train: Int32Array.from(ids), val: Int32Array.from(ids), trainDocStarts: starts, valDocStarts: starts };
    const cfg = defaultTrainConfig(model.config, {
      packing: true,
      maxSteps: 30,
      batchSize: 4,
      seqLen: 16,
      evalInterval: 0,
      evalBatches: 2,
      checkpointInterval: 0,
      schedule: { kind: 'constant', lr: 1e-2, minLr: 1e-2, warmupSteps: 0, decaySteps: 30 },
    });
    const trainer = new Trainer(model, tok, cfg, data);
    const before = trainer.evaluate().loss;
    const result = await trainer.run();
    expect(result.lastEval?.loss).toBeLessThan(before * 0.6);
  });
});
