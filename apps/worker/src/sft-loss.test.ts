// The supervised loss on a tiny example, computed by hand: the trainer's weighted loss over an
// encoded prompt/completion stream equals the mean cross-entropy of exactly the completion tokens
// (and their end-of-text), worked out here from the model's logits with plain arithmetic.

import { encodeDataset } from '@crucible/datasets';
import { BatchSource, batchLoss, CharTokenizer, initBackend, modelConfig, Transformer } from '@crucible/trainer';
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';

beforeAll(async () => {
  await initBackend((process.env.TFJS_BACKEND as 'wasm' | undefined) ?? 'auto');
});

describe('supervised loss masking', () => {
  it('equals a hand-computed cross-entropy over the completion tokens only', () => {
    const tok = CharTokenizer.train('abcdxyz?:', ['<|endoftext|>']);
    const eot = tok.special('eot') as number;
    // "ab?" -> "xy", then "cd?" -> "z": each completion ends with end-of-text, which also
    // separates the documents
    const s = encodeDataset('{"prompt": "ab?", "completion": "xy"}\n{"prompt": "cd?", "completion": "z"}', 'jsonl_prompt_completion', tok);
    const ids = [...'ab?xy']
      .map((c) => tok.encode(c)[0] as number)
      .concat(
        [eot],
        [...'cd?z'].map((c) => tok.encode(c)[0] as number),
        [eot],
      );
    expect([...s.tokens]).toEqual(ids);
    // by hand: loss on x, y, <eot> of the first document and z, <eot> of the second
    expect([...(s.weights ?? [])]).toEqual([0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1]);

    const T = 10; // one window: inputs tokens[0..10), targets tokens[1..11)
    const src = new BatchSource(s.tokens, 1, T, 'causal', 1, undefined, s.weights);
    const batch = src.next();
    const model = Transformer.create(modelConfig({ arch: 'gpt', nLayer: 1, nHead: 2, dModel: 8, blockSize: T }, tok.vocabSize), 3);
    for (const [, p] of model.params) if (p.rank === 2) p.assign(tf.mul(p, 20)); // logits far from uniform
    const ours = tf.tidy(() => batchLoss(model, batch, false).dataSync()[0] as number);

    const logits = tf.tidy(() => model.forward(tf.tensor2d(batch.x, [1, T], 'int32')).dataSync() as Float32Array);
    const V = tok.vocabSize;
    // target positions whose token is a completion token or its end-of-text: x y <eot> z <eot>
    const counted = [2, 3, 4, 8, 9]; // input position t predicts tokens[t + 1]
    expect(batch.y[2]).toBe(tok.encode('x')[0]);
    let sum = 0;
    for (const t of counted) {
      const row = Array.from(logits.subarray(t * V, (t + 1) * V));
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0));
      sum += lse - (row[batch.y[t] as number] as number);
    }
    expect(ours).toBeCloseTo(sum / counted.length, 5);
    // and the unweighted loss differs (the masking matters)
    const all = tf.tidy(() => batchLoss(model, { ...batch, w: undefined }, false).dataSync()[0] as number);
    expect(Math.abs(all - ours)).toBeGreaterThan(1e-3);
    model.dispose();
  });
});
