import { CharTokenizer } from '@crucible/model-files';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { modelConfig } from './config';
import { BestTracker } from './early-stopping';
import { scoreTokens, summarize } from './evaluate';
import { Transformer } from './model';
import { randomTokens, tinyConfig, useBackend } from './test-helpers';
import { defaultTrainConfig, Trainer } from './train';

beforeAll(useBackend);

/** -log p(y | x) for each position of one window, by a log-sum-exp written out in float64. */
function windowNll(model: Transformer, x: number[], y: number[]): { nll: number[]; hit: boolean[] } {
  const logits = tf.tidy(() => model.forward(tf.tensor2d(x, [1, x.length], 'int32')).arraySync() as number[][][])[0] as number[][];
  const nll: number[] = [];
  const hit: boolean[] = [];
  logits.forEach((row, j) => {
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
    nll.push(lse - (row[y[j] as number] as number));
    hit.push(row.indexOf(max) === y[j]);
  });
  return { nll, hit };
}

describe('scoreTokens', () => {
  // chunkedHeadBytes 5 rows x 11 x 4: the head over chunks of 5 rows, which split the 12-row batches unevenly
  it.each([
    ['whole logits', undefined],
    ['the head over chunks of 5 rows', 5 * 11 * 4],
  ])('mean loss over every next-token position; perplexity is exp of it; answer loss over weighted positions (%s)', async (_what, chunkedHeadBytes) => {
    const model = Transformer.create(tinyConfig(), 4); // block size 6, vocab 11
    const tokens = randomTokens(23, 11, 9);
    const weights = Float32Array.from(tokens, (_, i) => (i % 3 === 0 ? 1 : 0));
    const r = await scoreTokens(model, tokens, weights, { batchSize: 2, seqLen: 6, chunkedHeadBytes });
    // independent: windows of 6 inputs starting at 0, 6, 12, 18 (the last one shorter), each
    // predicting its next tokens; 22 positions in all
    let sum = 0;
    let wsum = 0;
    let wn = 0;
    let hits = 0;
    for (let s = 0; s + 1 < tokens.length; s += 6) {
      const n = Math.min(6, tokens.length - 1 - s);
      const { nll, hit } = windowNll(model, [...tokens.slice(s, s + n)], [...tokens.slice(s + 1, s + n + 1)]);
      nll.forEach((v, j) => {
        sum += v;
        hits += hit[j] ? 1 : 0;
        if (weights[s + 1 + j] === 1) {
          wsum += v;
          wn++;
        }
      });
    }
    const all = summarize(r.all);
    expect(all.tokens).toBe(22);
    expect(all.loss).toBeCloseTo(sum / 22, 5);
    expect(all.perplexity).toBeCloseTo(Math.exp(sum / 22), 4);
    expect(all.accuracy).toBeCloseTo(hits / 22, 10);
    const ans = summarize(r.weighted as NonNullable<typeof r.weighted>);
    expect(ans.tokens).toBe(wn);
    expect(ans.loss).toBeCloseTo(wsum / wn, 5);
    model.dispose();
  });

  it('masked models score only the masked positions, the same ones for a seed', async () => {
    const tok = CharTokenizer.train('abcdefghij', ['<|endoftext|>', '<|pad|>', '<|mask|>']);
    const cfg = modelConfig({ arch: 'bert', nLayer: 1, nHead: 2, dModel: 8, blockSize: 16 }, tok.vocabSize);
    const model = Transformer.create(cfg, 2);
    const tokens = Int32Array.from(tok.encode('abcdefghij'.repeat(20)));
    const masking = { probability: 0.15, maskId: tok.special('mask') as number, vocabSize: tok.vocabSize, specialIds: new Set(tok.specialTokens.values()) };
    const a = await scoreTokens(model, tokens, undefined, { batchSize: 4, seqLen: 16, masking, seed: 3 });
    const b = await scoreTokens(model, tokens, undefined, { batchSize: 3, seqLen: 16, masking, seed: 3 });
    expect(a.all.tokens).toBeGreaterThan(15);
    expect(a.all.tokens).toBeLessThan(50); // about 15% of 200
    expect(b.all).toEqual(a.all);
    model.dispose();
  });
});

describe('early stopping', () => {
  it('follows a scripted validation curve: best step, patience, min_delta', () => {
    const t = new BestTracker({ patience: 2, minDelta: 0.05 });
    const curve: Array<[number, number]> = [
      [0, 4.0],
      [10, 3.0], // improves
      [20, 2.98], // better, but by less than min_delta: not an improvement
      [30, 2.9], // improves (3.0 - 2.9 > 0.05)
      [40, 2.88], // 1 without improvement
      [50, 2.95], // 2: stop
    ];
    const seen = curve.map(([step, loss]) => t.update(step, loss));
    expect(seen.map((s) => s.improved)).toEqual([true, true, false, true, false, false]);
    expect(seen.map((s) => s.stop)).toEqual([false, false, false, false, false, true]);
    expect(t.state).toEqual({ bestLoss: 2.9, bestStep: 30, since: 2 });
    expect(new BestTracker(null).update(0, 1).stop).toBe(false);
  });

  it('a run stops when its evaluation hook says so, and saves a checkpoint there', async () => {
    const text = 'to be or not to be, that is the question. '.repeat(40);
    const tok = CharTokenizer.train(text, ['<|endoftext|>']);
    const ids = Int32Array.from(tok.encode(text));
    const cfg = modelConfig({ arch: 'gpt', nLayer: 1, nHead: 2, dModel: 16, blockSize: 8 }, tok.vocabSize);
    const trainer = new Trainer(
      Transformer.create(cfg, 1),
      tok,
      defaultTrainConfig(cfg, { maxSteps: 50, batchSize: 2, evalInterval: 5, evalBatches: 1, seed: 1 }),
      { train: ids.subarray(0, 1200), val: ids.subarray(1200) },
    );
    const losses = [3, 2, 2.5, 2.6]; // scripted: the third evaluation since the best stops at patience 2
    const tracker = new BestTracker({ patience: 2, minDelta: 0 });
    const checkpoints: number[] = [];
    let i = 0;
    const r = await trainer.run({
      onEval: (e) => (tracker.update(e.step, losses[i++] ?? 9).stop ? 'stop' : undefined),
      onCheckpoint: (step) => {
        checkpoints.push(step);
      },
    });
    expect(r).toMatchObject({ status: 'stopped_early', step: 15 });
    expect(tracker.state.bestStep).toBe(5);
    expect(checkpoints.at(-1)).toBe(15);
    trainer.model.dispose();
    trainer.dispose();
  });
});
