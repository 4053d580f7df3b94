// Masked-LM pretraining learns from context within a bounded number of steps: masked accuracy
// clearly beats the best context-free guess (worked out in this test from the same batches), and
// the prediction at a mask depends on the tokens around it. The corpus is small and made here:
// sentences of a few dozen English words, where a masked letter is given away by its neighbours
// but no single letter is right more than about a fifth of the time without them. (The plateau of
// bert-mini on Tiny Shakespeare, which the short-window default ends, is measured by
// `npm run bench:mlm`: BENCHMARKS.md.)
import { trainTokenizer } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelConfig } from './config';
import { type Batch, evalBatches, type MaskingConfig } from './data';
import { Transformer } from './model';
import { useBackend } from './test-helpers';
import { defaultTrainConfig, Trainer } from './train';

beforeAll(useBackend);

const WORDS = 'the a king queen lord lady speaks comes goes sees hears brave old young fair noble and but with from to of in my your his her'.split(' ');
let state = 42;
const next = () => {
  state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
  return state / 2 ** 32;
};
const text = Array.from({ length: 12_000 }, () => WORDS[Math.floor(next() * WORDS.length)]).join(' ');
const tok = trainTokenizer(text, { type: 'char' });
const ids = Int32Array.from(tok.encode(text));
const T = 16;
const STEPS = 400;
const C = 64;
const masking: MaskingConfig = {
  probability: 0.15,
  maskId: tok.special('mask') as number,
  vocabSize: tok.vocabSize,
  specialIds: new Set(tok.specialTokens.values()),
};

/** The best a predictor can do that sees only the token at the position itself (mask or not). */
function contextFreeAccuracy(batches: Batch[]): number {
  const counts = new Map<number, number>();
  for (const b of batches)
    b.w?.forEach((w, i) => {
      if (w > 0 && b.x[i] === masking.maskId) counts.set(b.y[i] as number, (counts.get(b.y[i] as number) ?? 0) + 1);
    });
  const best = [...counts].sort((a, c) => c[1] - a[1])[0]?.[0];
  let hits = 0;
  let n = 0;
  for (const b of batches)
    b.w?.forEach((w, i) => {
      if (w === 0) return;
      n++;
      const guess = b.x[i] === masking.maskId ? best : b.x[i]; // a kept or replaced token is guessed as itself
      if (guess === b.y[i]) hits++;
    });
  return hits / n;
}

function predictions(model: Transformer, b: Batch): Int32Array {
  return tf.tidy(() => tf.argMax(model.forward(tf.tensor2d(b.x, [b.B, b.T], 'int32')), -1).dataSync() as Int32Array);
}

describe('masked-LM pretraining', () => {
  it('starts on short windows, then grows them, keeping the tokens per step', () => {
    const mc = modelConfig({ arch: 'bert', nLayer: 1, nHead: 2, dModel: 8, blockSize: 128 }, tok.vocabSize);
    const cfg = defaultTrainConfig(mc, { maxSteps: 800, batchSize: 12 });
    expect(cfg.shortWindows).toEqual({ seqLen: 32, holdSteps: 200, steps: 400 });
    const model = Transformer.create(mc, 1);
    const t = new Trainer(model, tok, cfg, { train: ids, val: ids });
    expect(t.windowShape(0)).toEqual({ B: 48, T: 32 });
    expect(t.windowShape(199)).toEqual({ B: 48, T: 32 });
    expect(t.windowShape(300)).toEqual({ B: 19, T: 80 }); // halfway: 32 + 96 / 2 = 80 tokens, 12 x 128 / 80 = 19.2 rows
    expect(t.windowShape(400)).toBeUndefined(); // the full 12 x 128 from here on
    expect(defaultTrainConfig(mc, { maxSteps: 800, objective: 'mlm', seqLen: 32 }).shortWindows).toBeUndefined();
    t.dispose();
    model.dispose();
  });

  it(`beats the best context-free guess by a clear margin within ${STEPS} steps, from context`, async () => {
    const mc = modelConfig({ arch: 'bert', nLayer: 2, nHead: 4, dModel: C, blockSize: T }, tok.vocabSize);
    // the masked-LM defaults; only the size and the step budget are the test's
    const cfg = defaultTrainConfig(mc, { maxSteps: STEPS, batchSize: 64, evalInterval: 0, evalBatches: 8 });
    const split = Math.floor(ids.length * 0.9);
    const model = Transformer.create(mc, 7);
    const trainer = new Trainer(model, tok, cfg, { train: ids.subarray(0, split), val: ids.subarray(split) });
    await trainer.run();
    const batches = evalBatches(ids.subarray(split), 64, T, 8, 'mlm', 99, masking);
    let hits = 0;
    let n = 0;
    for (const b of batches) {
      const pred = predictions(model, b);
      b.w?.forEach((w, i) => {
        if (w === 0) return;
        n++;
        if (pred[i] === b.y[i]) hits++;
      });
    }
    const accuracy = hits / n;
    const baseline = contextFreeAccuracy(batches);
    expect(baseline).toBeGreaterThan(0.15); // spaces are frequent: the bar is not trivial
    expect(accuracy, `masked accuracy ${accuracy.toFixed(3)} vs context-free ${baseline.toFixed(3)}`).toBeGreaterThan(baseline + 0.08);

    // the same position, masked in 64 different windows: the prediction follows the context
    const p = T / 2;
    const windows = evalBatches(ids.subarray(split), 64, T, 1, 'mlm', 5, { ...masking, probability: 0 })[0] as Batch;
    const x = Int32Array.from(windows.x);
    for (let b = 0; b < 64; b++) x[b * T + p] = masking.maskId;
    const pred = predictions(model, { ...windows, x });
    const atP = new Set(Array.from({ length: 64 }, (_, b) => pred[b * T + p]));
    expect(atP.size).toBeGreaterThanOrEqual(5);
    trainer.dispose();
    model.dispose();
  });
});
