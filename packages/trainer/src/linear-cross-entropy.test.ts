// linearCrossEntropy (the head and the loss in chunks of rows, never the whole [N, V] logits)
// against the loss of the full logits, crossEntropy(linear(h, W^T)): the loss and the gradients of
// h and W, with loss weights (zeros among them), chunks that do not divide the rows, and a frozen
// head; then batchLoss's chunked path against its full one on gpt and llama models, with LoRA.
import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { variableGrads } from './backprop';
import { modelConfig } from './config';
import { Transformer } from './model';
import { crossEntropy, linear, linearCrossEntropy } from './ops';
import { rand, randomTokens, tinyLlamaConfig, useBackend } from './test-helpers';
import { batchLoss } from './train';

beforeAll(useBackend);

function worst(a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array): number {
  let err = 0;
  let scale = 1e-12;
  for (let i = 0; i < a.length; i++) {
    err = Math.max(err, Math.abs((a[i] as number) - (b[i] as number)));
    scale = Math.max(scale, Math.abs(b[i] as number));
  }
  return err / scale;
}

describe('linearCrossEntropy', () => {
  const [N, C, V] = [37, 12, 53];
  const h = tf.tensor2d(rand(N * C, 1, 2), [N, C]);
  const W = tf.tensor2d(rand(V * C, 2, 2), [V, C]);
  const targets = tf.tensor1d(randomTokens(N, V, 3), 'int32');
  const w = tf.tensor1d(Float32Array.from({ length: N }, (_, i) => (i % 5 === 0 ? 0 : 1 + (i % 3))));

  for (const weights of [undefined, w])
    for (const chunkRows of [1, 10, 37, 100])
      it(`equals the full logits' loss and gradients (${weights ? 'weighted' : 'unweighted'}, chunks of ${chunkRows} rows)`, () => {
        const full = tf.grads((x: tf.Tensor, y: tf.Tensor) => crossEntropy(linear(x, y, undefined, true) as tf.Tensor2D, targets, weights));
        const chunked = tf.grads((x: tf.Tensor, y: tf.Tensor) =>
          linearCrossEntropy(x as tf.Tensor2D, y as tf.Tensor2D, targets, weights, { headTrainable: true, chunkRows }),
        );
        const want = full([h, W]);
        const got = chunked([h, W]);
        const lossWant = crossEntropy(linear(h, W, undefined, true) as tf.Tensor2D, targets, weights).dataSync()[0] as number;
        const lossGot = linearCrossEntropy(h, W, targets, weights, { headTrainable: true, chunkRows }).dataSync()[0] as number;
        expect(Math.abs(lossGot - lossWant) / lossWant).toBeLessThan(1e-5);
        for (const i of [0, 1]) expect(worst((got[i] as tf.Tensor).dataSync(), (want[i] as tf.Tensor).dataSync()), `grad ${i}`).toBeLessThan(1e-5);
        tf.dispose([...want, ...got]);
      });

  it("computes no gradient for a frozen head, and h's is the same", () => {
    const full = tf.grad((x: tf.Tensor) => crossEntropy(linear(x, W, undefined, true) as tf.Tensor2D, targets, w))(h);
    const chunked = tf.grad((x: tf.Tensor) => linearCrossEntropy(x as tf.Tensor2D, W, targets, w, { headTrainable: false, chunkRows: 8 }))(h);
    expect(worst(chunked.dataSync(), full.dataSync())).toBeLessThan(1e-5);
    tf.dispose([full, chunked]);
  });
});

describe('batchLoss with the head in chunks', () => {
  const cases: Array<[string, () => Transformer]> = [
    ['gpt, tied head', () => Transformer.create(modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 16, blockSize: 8 }, 41), 3)],
    ['llama, tied head', () => Transformer.create(tinyLlamaConfig(41), 4)],
    [
      'gpt with LoRA (frozen head)',
      () =>
        Transformer.create(
          modelConfig({ arch: 'gpt', nLayer: 2, nHead: 2, dModel: 16, blockSize: 8 }, 41, {
            peft: { type: 'lora', rank: 2, alpha: 4, dropout: 0, targets: ['attn.c_attn', 'attn.c_proj'] },
          }),
          5,
        ),
    ],
  ];
  for (const [name, make] of cases)
    it(`${name}: the same loss and gradients as through the whole logits`, () => {
      const model = make();
      const B = 3;
      const T = 8;
      const batch = { B, T, x: randomTokens(B * T, 41, 7), y: randomTokens(B * T, 41, 8), w: Float32Array.from({ length: B * T }, (_, i) => (i % 4 ? 1 : 0)) };
      const vars = [...model.trainable().values()];
      const run = (bytes: number) => {
        const { value, grads } = variableGrads(() => batchLoss(model, batch, false, 0, false, bytes), vars);
        const out = { loss: value.dataSync()[0] as number, grads: vars.map((v) => (grads[v.name] as tf.Tensor).dataSync().slice()) };
        tf.dispose([value, ...Object.values(grads)]);
        return out;
      };
      const whole = run(Number.POSITIVE_INFINITY);
      const chunked = run(0);
      expect(Math.abs(chunked.loss - whole.loss) / whole.loss).toBeLessThan(1e-5);
      for (const [i, g] of chunked.grads.entries()) expect(worst(g, whole.grads[i] as Float32Array), vars[i]?.name).toBeLessThan(1e-4);
      model.dispose();
    });
});
